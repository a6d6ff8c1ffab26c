#include "commands.h"

namespace gembed::cli {

Command MakeSynthCommand(CLI::App& root) {
  CLI::App* app = root.add_subcommand("synth", "(not yet implemented)");
  return {app, [] {
            std::fprintf(stderr, "gembed synth: not implemented yet\n");
            return 1;
          }};
}

}  // namespace gembed::cli
