// gembed convert: a Hugging Face sentence-transformers folder of
// EmbeddingGemma -> a GGUF that gembed and llama.cpp load. The converter is
// model/hf_convert.h; this file maps flags and reports.
#include <chrono>
#include <cstdio>
#include <string>

#include "base/dtype.h"
#include "commands.h"
#include "model/hf_convert.h"

namespace gembed::cli {

Command MakeConvertCommand(CLI::App& root) {
  CLI::App* app = root.add_subcommand(
      "convert", "Convert a Hugging Face EmbeddingGemma folder (sentence-transformers layout) to GGUF");
  struct Args {
    std::string folder, out, type = "f32", name;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  app->add_option("folder", a->folder, "Model folder (config.json, model.safetensors, tokenizer.json, ...)")
      ->required();
  app->add_option("-o,--output", a->out, "Output .gguf path")->required();
  app->add_option("--type", a->type, "Type of 2-D weights (token_embd, matrices, Dense): f32|f16|bf16|q8_0; "
                                     "norms stay f32")
      ->capture_default_str();
  app->add_option("--name", a->name, "general.name (default: the folder's name)");
  app->add_option("--threads", a->threads, "Encoding threads (default: all cores)")->check(ThreadCountValidator());

  return {app, [a] {
            const auto dtype = DTypeFromName(a->type);
            if (!dtype || (*dtype != DType::kF32 && *dtype != DType::kF16 && *dtype != DType::kBF16 &&
                           *dtype != DType::kQ8_0)) {
              std::fprintf(stderr, "gembed convert: unknown --type '%s' (f32, f16, bf16, q8_0)\n", a->type.c_str());
              return 2;
            }
            HfConvertOptions o;
            o.type = *dtype;
            o.threads = a->threads;
            o.name = a->name;
            const auto t0 = std::chrono::steady_clock::now();
            auto stats = ConvertHfFolderToGguf(a->folder, a->out, o);
            if (!stats.ok()) {
              std::fprintf(stderr, "gembed convert: %s\n", stats.status().ToString().c_str());
              return 1;
            }
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::fprintf(stderr, "gembed convert: wrote %s: %d tensors, %.1f MiB of tensor data (%s) in %.1f s\n",
                         a->out.c_str(), stats->tensors, stats->tensor_bytes / 1048576.0, a->type.c_str(), s);
            return 0;
          }};
}

}  // namespace gembed::cli
