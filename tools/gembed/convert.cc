#include "commands.h"

namespace gembed::cli {

Command MakeConvertCommand(CLI::App& root) {
  CLI::App* app = root.add_subcommand("convert", "(not yet implemented)");
  return {app, [] {
            std::fprintf(stderr, "gembed convert: not implemented yet\n");
            return 1;
          }};
}

}  // namespace gembed::cli
