#include "commands.h"

namespace gembed::cli {

Command MakeTokenizeCommand(CLI::App& root) {
  CLI::App* app = root.add_subcommand("tokenize", "(not yet implemented)");
  return {app, [] {
            std::fprintf(stderr, "gembed tokenize: not implemented yet\n");
            return 1;
          }};
}

}  // namespace gembed::cli
