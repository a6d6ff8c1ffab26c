// ModelConfig: EmbeddingGemma hyper-parameters, read from the GGUF keys
// `gemma-embedding.*` (MODEL-SPEC §1-§2) and validated once at load.
//
// Values llama.cpp takes from the architecture rather than the file (the
// sliding-window period 6, bidirectional attention, the attention scale
// 1/sqrt(head_dim), the embedding scale sqrt(n_embd), GELU-tanh) are derived
// here too, so nothing downstream hard-codes a number of the 300M model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace gembed {

class GgufFile;
class GgufWriter;

inline constexpr const char* kGemmaEmbeddingArch = "gemma-embedding";

// GGUF pooling_type values (gguf-py PoolingType); only kMean is supported.
enum class PoolingType : uint32_t { kNone = 0, kMean = 1, kCls = 2, kLast = 3, kRank = 4 };

struct ModelConfig {
  uint32_t n_vocab = 0;         // token_embd rows (262,144 for the real model)
  uint32_t context_length = 0;  // max tokens per sequence, BOS/EOS included (2048)
  uint32_t n_embd = 0;          // hidden size (768)
  uint32_t n_layer = 0;         // transformer blocks (24)
  uint32_t n_ff = 0;            // GeGLU inner width (1152)
  uint32_t n_head = 0;          // query heads (3)
  uint32_t n_head_kv = 0;       // key/value heads (1; GQA group n_head / n_head_kv)
  uint32_t head_dim = 0;        // key_length == value_length (256); all of it rotates
  float rms_eps = 1e-6f;        // RMSNorm epsilon
  float rope_base = 1e6f;       // RoPE base of global layers
  float rope_base_swa = 1e4f;   // RoPE base of sliding-window layers
  uint32_t sliding_window = 0;  // full window width as stored (512): ±sliding_window/2 per side
  // Per layer: true = sliding-window attention, false = global attention.
  // Default period 6: layers il % 6 == 5 are global.
  std::vector<bool> layer_is_sliding;
  PoolingType pooling = PoolingType::kMean;
  // Sentence-transformers Dense head (dense_2: n_embd -> dense_hidden,
  // dense_3: dense_hidden -> n_embd); 0 when the file has no Dense tensors.
  uint32_t dense_hidden = 0;

  bool has_dense() const { return dense_hidden != 0; }
  uint32_t q_width() const { return n_head * head_dim; }    // attn_q output width
  uint32_t kv_width() const { return n_head_kv * head_dim; }  // attn_k / attn_v output width
  bool IsSliding(uint32_t layer) const { return layer_is_sliding[layer]; }
  // Tokens p, j attend to each other on a sliding layer iff |p - j| <= window_radius().
  uint32_t window_radius() const { return sliding_window / 2; }
  float RopeBase(uint32_t layer) const { return IsSliding(layer) ? rope_base_swa : rope_base; }
  float AttentionScale() const;  // 1/sqrt(head_dim), applied to Q
  float EmbeddingScale() const;  // sqrtf(n_embd), applied to token embeddings
  // Output dimension of the model (n_embd: the Dense head maps back to it).
  uint32_t output_dim() const { return n_embd; }

  // Checks internal consistency (not the tensors: see weights.h).
  Status Validate() const;
};

// Reads and validates the config. The tensor table is consulted for the
// vocabulary size (token_embd rows) and, when the dense_* keys are absent,
// the Dense width. Errors: kUnsupported for a different architecture or an
// unsupported value, kNotFound for a missing required key, kCorruptFile for
// a key of the wrong type or a value that cannot be right.
Result<ModelConfig> ConfigFromGguf(const GgufFile& file);

// Writes the gemma-embedding.* keys of `config` (the converter's set, incl.
// rope.freq_base_swa and, with a Dense head, the dense_*_feat_* keys). The
// sliding-window pattern is written only when it is not the default period 6.
void WriteArchKeys(const ModelConfig& config, GgufWriter& writer);

// The key name for this architecture: ArchKey("block_count") = "gemma-embedding.block_count".
std::string ArchKey(const char* suffix);

}  // namespace gembed
