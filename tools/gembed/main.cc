// gembed: text embeddings with EmbeddingGemma. One binary, one subcommand per file.
#include <cstdio>
#include <vector>

#include "base/guard.h"
#include "commands.h"

int main(int argc, char** argv) {
  // Library code reports errors as Status; whatever still throws (out of
  // memory, no more threads, a bug) ends as "gembed: error: ..." with exit
  // status 1 instead of an abort (base/guard.h).
  return gembed::RunGuarded("gembed", [&]() -> int {
    CLI::App app{"gembed: EmbeddingGemma text embeddings"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "gembed 0.1.0");

    std::vector<gembed::cli::Command> commands = {
        gembed::cli::MakeInspectCommand(app),
        gembed::cli::MakeTokenizeCommand(app),
        gembed::cli::MakeSynthCommand(app),
        gembed::cli::MakeEmbedCommand(app),
        gembed::cli::MakeBenchCommand(app),
        gembed::cli::MakeConvertCommand(app),
        gembed::cli::MakeServeCommand(app),
        gembed::cli::MakeQuantizeCommand(app),
        gembed::cli::MakePruneCommand(app),
    };

    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      const int rc = app.exit(e);
      return rc == 0 ? 0 : 2;
    }
    for (auto& c : commands) {
      if (c.app->parsed()) return c.run();
    }
    return 2;
  });
}
