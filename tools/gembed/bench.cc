#include "commands.h"

namespace gembed::cli {

Command MakeBenchCommand(CLI::App& root) {
  CLI::App* app = root.add_subcommand("bench", "(not yet implemented)");
  return {app, [] {
            std::fprintf(stderr, "gembed bench: not implemented yet\n");
            return 1;
          }};
}

}  // namespace gembed::cli
