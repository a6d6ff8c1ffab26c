#include "commands.h"

namespace gembed::cli {

Command MakeInspectCommand(CLI::App& root) {
  CLI::App* app = root.add_subcommand("inspect", "(not yet implemented)");
  return {app, [] {
            std::fprintf(stderr, "gembed inspect: not implemented yet\n");
            return 1;
          }};
}

}  // namespace gembed::cli
