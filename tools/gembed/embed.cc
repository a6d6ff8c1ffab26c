#include "commands.h"

namespace gembed::cli {

Command MakeEmbedCommand(CLI::App& root) {
  CLI::App* app = root.add_subcommand("embed", "(not yet implemented)");
  return {app, [] {
            std::fprintf(stderr, "gembed embed: not implemented yet\n");
            return 1;
          }};
}

}  // namespace gembed::cli
