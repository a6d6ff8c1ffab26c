// Each subcommand lives in its own file and registers itself on the root app.
// Make*Command adds the subcommand's options to `root` and returns the
// function main() calls when that subcommand was chosen; it returns the exit
// status (0 success, 1 bad input or failure, 2 usage error).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace gembed::cli {

struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command MakeInspectCommand(CLI::App& root);   // inspect.cc
Command MakeTokenizeCommand(CLI::App& root);  // tokenize.cc
Command MakeSynthCommand(CLI::App& root);     // synth.cc: synthetic EmbeddingGemma GGUFs
Command MakeEmbedCommand(CLI::App& root);     // embed.cc
Command MakeBenchCommand(CLI::App& root);     // bench.cc: latency/throughput grid
Command MakeConvertCommand(CLI::App& root);   // convert.cc: HF folder -> GGUF
Command MakeServeCommand(CLI::App& root);     // serve.cc: OpenAI/TEI-compatible HTTP service

}  // namespace gembed::cli
