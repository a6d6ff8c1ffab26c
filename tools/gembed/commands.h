// Each subcommand lives in its own file and registers itself on the root app.
// Make*Command adds the subcommand's options to `root` and returns the
// function main() calls when that subcommand was chosen; it returns the exit
// status (0 success, 1 bad input or failure, 2 usage error).
#pragma once

#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdint>
#include <functional>
#include <string>

#include "base/thread_pool.h"

namespace gembed::cli {

// CLI11 check for every --threads option: the bound of ValidateThreadCount
// (base/thread_pool.h), reported as a usage error before any work:
//   "--threads: 50000 threads is too many: at most 8 (...)"
inline CLI::Validator ThreadCountValidator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        int64_t n = 0;
        const char* end = value.data() + value.size();
        const auto [ptr, ec] = std::from_chars(value.data(), end, n);
        if (ec == std::errc::result_out_of_range && ptr == end && value[0] != '-') {
          return "'" + value + "' threads is too many: at most " + std::to_string(MaxThreadCount());
        }
        if (ec != std::errc() || ptr != end) return {};  // not a number: CLI11's conversion reports it
        const Status st = ValidateThreadCount(n);
        return st.ok() ? std::string() : st.message();
      },
      "", "thread count");
}

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
Command MakeQuantizeCommand(CLI::App& root);  // compress.cc: q8_0 / q4_0 / q4_1 / mixed GGUFs
Command MakePruneCommand(CLI::App& root);     // compress.cc: FFN width, layer drop, block sparsity

}  // namespace gembed::cli
