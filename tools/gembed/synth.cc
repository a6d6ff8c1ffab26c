// gembed synth: writes a synthetic EmbeddingGemma GGUF (random weights, real
// vocabulary). The generator lives in model/synthetic.h; this file only maps
// flags to SyntheticOptions.
#include <cstdio>
#include <string>

#include "base/dtype.h"
#include "commands.h"
#include "model/synthetic.h"

namespace gembed::cli {

Command MakeSynthCommand(CLI::App& root) {
  CLI::App* app = root.add_subcommand(
      "synth", "Write a synthetic EmbeddingGemma GGUF (seeded random weights, real vocabulary)");
  struct Args {
    std::string out, tokenizer, type = "f32";
    uint64_t seed = 0;
    bool tiny = false, dense = true, vocab_only = false;
    uint32_t layers = 0, embd = 0, ff = 0, heads = 0, kv_heads = 0, head_dim = 0;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  app->add_option("-o,--output", a->out, "Output .gguf path")->required();
  app->add_option("--tokenizer", a->tokenizer, "HF tokenizer.json of the vocabulary (Gemma3)")->required();
  app->add_option("--type", a->type, "Weight type of matrices and token_embd: f32|f16|bf16|q8_0|q4_0|q4_1")
      ->capture_default_str();
  app->add_option("--seed", a->seed, "PRNG seed (same seed = same float weights for every --type)")
      ->capture_default_str();
  app->add_flag("--tiny", a->tiny, "Tiny test model: 6 layers, n_embd 128, n_ff 256, 2 heads x 64, 1 KV head");
  app->add_option("--layers", a->layers, "Transformer blocks (>= 6; default 24, tiny 6)");
  app->add_option("--embd", a->embd, "Hidden size (default 768, tiny 128)");
  app->add_option("--ff", a->ff, "FFN inner size (default 1152, tiny 256)");
  app->add_option("--heads", a->heads, "Query heads (default 3, tiny 2)");
  app->add_option("--kv-heads", a->kv_heads, "Key/value heads (default 1; must divide --heads)");
  app->add_option("--head-dim", a->head_dim, "Head dimension (default 256, tiny 64)");
  app->add_flag("--dense,!--no-dense", a->dense, "Write the Dense head dense_2/dense_3 (default: yes)");
  app->add_flag("--vocab-only", a->vocab_only, "Write metadata and vocabulary only, no tensors");
  app->add_option("--threads", a->threads, "Generation threads (default: all cores)")->check(ThreadCountValidator());

  return {app, [a] {
            SyntheticOptions o = a->tiny ? SyntheticOptions::Tiny() : SyntheticOptions();
            const auto dtype = DTypeFromName(a->type);
            if (!dtype) {
              std::fprintf(stderr, "gembed synth: unknown --type '%s' (f32, f16, bf16, q8_0, q4_0, q4_1)\n", a->type.c_str());
              return 1;
            }
            o.dtype = *dtype;
            o.seed = a->seed;
            if (a->layers) o.n_layer = a->layers;
            if (a->embd) o.n_embd = a->embd;
            if (a->ff) o.n_ff = a->ff;
            if (a->heads) o.n_head = a->heads;
            if (a->kv_heads) o.n_head_kv = a->kv_heads;
            if (a->head_dim) o.head_dim = a->head_dim;
            o.dense = a->dense;
            o.vocab_only = a->vocab_only;
            o.threads = a->threads;
            const Status st = WriteSyntheticModel(a->out, a->tokenizer, o);
            if (!st.ok()) {
              std::fprintf(stderr, "gembed synth: %s\n", st.ToString().c_str());
              return 1;
            }
            return 0;
          }};
}

}  // namespace gembed::cli
