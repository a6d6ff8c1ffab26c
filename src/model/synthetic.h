// Synthetic EmbeddingGemma GGUFs: the real architecture, keys, tensor names,
// shapes and dtypes of llama.cpp's converter, with seeded random weights.
// Real weights cannot be downloaded here; these files let the engine, the
// NumPy oracle and llama.cpp be compared on identical inputs.
//
// Reproducibility: every tensor's float values depend only on (seed, tensor
// name, shape), never on --type or thread count, so an F32 file and a Q8_0
// file of the same seed hold the same underlying weights.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"
#include "model/config.h"
#include "model/weights.h"

namespace gembed {

class GgufWriter;
class ThreadPool;

struct SyntheticOptions {
  DType dtype = DType::kF32;  // matrices and token_embd; norms are always F32
  uint64_t seed = 0;
  uint32_t n_layer = 24;
  uint32_t n_embd = 768;
  uint32_t n_ff = 1152;
  uint32_t n_head = 3;
  uint32_t n_head_kv = 1;
  uint32_t head_dim = 256;
  uint32_t context_length = 2048;
  uint32_t sliding_window = 512;
  bool dense = true;          // write dense_2 / dense_3 (sentence-transformers head)
  uint32_t dense_hidden = 0;  // 0: 4 * n_embd (3072 for the 300M model)
  bool vocab_only = false;    // metadata + vocabulary, no tensors
  int threads = 0;            // generation threads; <= 0: hardware concurrency

  // The tiny test model: 6 layers (one global, as llama.cpp requires),
  // n_embd 128, n_ff 256, 2 query heads sharing 1 KV head of width 64.
  static SyntheticOptions Tiny();
};

// The config a synthetic file with these options will load as.
ModelConfig SyntheticConfig(const SyntheticOptions& options, uint32_t n_vocab);

// Deterministic float values of one tensor, row by row (rows = ne[1]):
// embedding ~ N(0, 0.03^2); matrix ~ N(0, 1/fan_in) with fan_in = ne[0];
// norm gains ~ 1 + N(0, 0.1^2) (the converter's "+1" already folded in).
// `out` gets ne[0] * ne[1] floats. Rows are generated in parallel on `pool`
// (nullptr: the calling thread); the values do not depend on it.
void SyntheticTensorValues(uint64_t seed, const TensorSpec& spec, std::vector<float>& out,
                           ThreadPool* pool = nullptr);

// Converts float rows to `dtype` bytes (F32, F16, BF16; Q8_0, Q4_0, Q4_1 with ggml's reference rules).
Result<std::vector<uint8_t>> EncodeTensor(const float* values, int64_t n_cols, int64_t n_rows, DType dtype);

// Writes a synthetic model to `path`. `tokenizer_json` is the HF
// tokenizer.json whose vocabulary is written into tokenizer.ggml.* keys;
// its size fixes n_vocab (262,144 for Gemma3).
Status WriteSyntheticModel(const std::string& path, const std::string& tokenizer_json,
                           const SyntheticOptions& options);

// llama.cpp's general.file_type for a dtype (0 F32, 1 F16, 2 Q4_0, 3 Q4_1, 7 Q8_0, 32 BF16).
uint32_t LlamaFileType(DType dtype);

}  // namespace gembed
