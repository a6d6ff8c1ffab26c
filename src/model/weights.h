// The EmbeddingGemma weight table: one list of tensors (ForEachTensor) that
// drives binding a GGUF file, validating it, generating synthetic models and
// listing. Views point into the mapped file (zero copy); nothing here owns
// bytes.
//
// Shapes are GGUF order (ne[0] innermost): a matrix acting on an n_in vector
// and producing n_out is [n_in, n_out], i.e. n_out rows of n_in values.
#pragma once

#include <array>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/tensor.h"
#include "model/config.h"

namespace gembed {

class GgufFile;

// What a tensor is for; decides allowed dtypes and synthetic initialisation.
enum class TensorRole {
  kEmbedding,  // token_embd: [n_embd, n_vocab], rows gathered by token id
  kMatrix,     // linear weight [n_in, n_out]: F32 / F16 / BF16 / Q8_0
  kNorm,       // RMSNorm gain [n], always F32, "1 + w" already folded in
};

struct TensorSpec {
  std::string name;        // GGUF name, e.g. "blk.3.attn_q.weight"
  int n_dims = 1;
  std::array<int64_t, 2> ne{1, 1};  // expected shape, GGUF order
  TensorRole role = TensorRole::kMatrix;
  bool required = true;    // false: the architecture allows it to be absent
  int layer = -1;          // block index, -1 for global tensors
};

// One transformer block. Shapes for the 300M model in comments.
struct LayerWeights {
  TensorView attn_norm;            // [n_embd]                    F32
  TensorView attn_q;               // [n_embd, n_head*head_dim]   768 x 768
  TensorView attn_k;               // [n_embd, n_head_kv*head_dim] 768 x 256
  TensorView attn_v;               // [n_embd, n_head_kv*head_dim] 768 x 256
  TensorView attn_q_norm;          // [head_dim]                  F32, shared by all q heads
  TensorView attn_k_norm;          // [head_dim]                  F32
  TensorView attn_output;          // [n_head*head_dim, n_embd]   768 x 768
  TensorView post_attention_norm;  // [n_embd]                    F32
  TensorView ffn_norm;             // [n_embd]                    F32
  TensorView ffn_gate;             // [n_embd, n_ff]              768 x 1152
  TensorView ffn_up;               // [n_embd, n_ff]              768 x 1152
  TensorView ffn_down;             // [n_ff, n_embd]              1152 x 768
  TensorView post_ffw_norm;        // [n_embd]                    F32
};

struct ModelWeights {
  TensorView token_embd;            // [n_embd, n_vocab]
  std::vector<LayerWeights> layers;  // n_layer
  TensorView output_norm;           // [n_embd] F32
  TensorView dense_2;               // [n_embd, dense_hidden]; data == nullptr when absent
  TensorView dense_3;               // [dense_hidden, n_embd]; data == nullptr when absent
};

// Visits every tensor of the architecture for this config, in the order
// llama.cpp's converter writes them, with the slot its view binds to.
// `weights.layers` is resized to config.n_layer first. Dense tensors are
// listed (as optional) only when config.has_dense().
using TensorVisitor = std::function<Status(const TensorSpec&, TensorView&)>;
Status ForEachTensor(const ModelConfig& config, ModelWeights& weights, const TensorVisitor& visit);

// The same list without slots (synth, listing).
std::vector<TensorSpec> TensorSpecs(const ModelConfig& config);

// Binds views into `file` (which must outlive the weights) and checks every
// tensor: presence, shape, dtype allowed for its role. Tensors the
// architecture allows but gembed does not run (fused attn_qkv, biases) are
// rejected with kUnsupported; blk.N. tensors must match block_count
// (CheckLayerTensors, kCorruptFile); other unknown tensors are logged and
// ignored.
Result<ModelWeights> BindWeights(const ModelConfig& config, const GgufFile& file);

// The layer index N of a tensor named "<prefix>N.<rest>" ("blk.3.attn_q.weight"
// with prefix "blk."), or nullopt when the name has another form. Indices too
// large for uint32 come back as some value >= 2^32.
std::optional<uint64_t> LayerIndexOf(std::string_view name, std::string_view prefix);

// The per-layer tensors of a file must match its declared layer count
// exactly: kCorruptFile when a tensor names a layer >= config.n_layer, or
// when a layer in [0, n_layer) has no tensor at all. `count_key` names the
// declaration in messages ("gemma-embedding.block_count").
Status CheckLayerTensors(const ModelConfig& config, const std::vector<std::string_view>& names,
                         std::string_view prefix, std::string_view count_key);

// The dtypes a tensor of this role may have in a file gembed runs.
bool DTypeAllowedForRole(TensorRole role, DType dtype);

}  // namespace gembed
