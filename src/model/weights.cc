#include "model/weights.h"

#include <fmt/format.h>

#include <optional>
#include <set>
#include <string_view>

#include "base/log.h"
#include "io/gguf.h"

namespace gembed {
namespace {

TensorSpec Spec(std::string name, std::initializer_list<int64_t> ne, TensorRole role, int layer,
                bool required = true) {
  TensorSpec s;
  s.name = std::move(name);
  s.n_dims = static_cast<int>(ne.size());
  int i = 0;
  for (int64_t n : ne) s.ne[i++] = n;
  s.role = role;
  s.required = required;
  s.layer = layer;
  return s;
}

std::string ShapeString(const std::array<int64_t, kMaxDims>& ne, int n_dims) {
  std::string s = "[";
  for (int i = 0; i < n_dims; ++i) s += fmt::format("{}{}", i ? ", " : "", ne[i]);
  return s + "]";
}

}  // namespace

std::optional<uint64_t> LayerIndexOf(std::string_view name, std::string_view prefix) {
  if (name.substr(0, prefix.size()) != prefix) return std::nullopt;
  size_t i = prefix.size();
  uint64_t n = 0;
  const size_t digits_begin = i;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') {
    // Saturate: any index past uint32 is "too large" all the same.
    n = n > (uint64_t{1} << 40) ? n : n * 10 + static_cast<uint64_t>(name[i] - '0');
    ++i;
  }
  if (i == digits_begin || i >= name.size() || name[i] != '.') return std::nullopt;
  return n;
}

Status CheckLayerTensors(const ModelConfig& config, const std::vector<std::string_view>& names,
                         std::string_view prefix, std::string_view count_key) {
  std::vector<bool> seen(config.n_layer, false);
  for (std::string_view n : names) {
    const std::optional<uint64_t> il = LayerIndexOf(n, prefix);
    if (!il) continue;
    if (*il >= config.n_layer) {
      return CorruptFile("tensor {} belongs to layer {}, but {} is {}: the file has more layers than it declares",
                         n, *il, count_key, config.n_layer);
    }
    seen[static_cast<size_t>(*il)] = true;
  }
  for (uint32_t il = 0; il < config.n_layer; ++il) {
    if (!seen[il]) {
      return CorruptFile("{} is {} but the file has no tensors for layer {} ({}{}.*): it declares more layers "
                         "than it has",
                         count_key, config.n_layer, il, prefix, il);
    }
  }
  return Status::Ok();
}

bool DTypeAllowedForRole(TensorRole role, DType dtype) {
  switch (role) {
    case TensorRole::kNorm:
      return dtype == DType::kF32;
    case TensorRole::kEmbedding:
    case TensorRole::kMatrix:
      return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16 ||
             dtype == DType::kQ8_0 || dtype == DType::kQ4_0 || dtype == DType::kQ4_1;
  }
  return false;
}

Status ForEachTensor(const ModelConfig& c, ModelWeights& w, const TensorVisitor& visit) {
  using R = TensorRole;
  const int64_t embd = c.n_embd, ff = c.n_ff, q = c.q_width(), kv = c.kv_width(), hd = c.head_dim;
  w.layers.resize(c.n_layer);
  GEMBED_RETURN_IF_ERROR(visit(Spec("token_embd.weight", {embd, c.n_vocab}, R::kEmbedding, -1), w.token_embd));
  for (uint32_t il = 0; il < c.n_layer; ++il) {
    LayerWeights& l = w.layers[il];
    const int i = static_cast<int>(il);
    auto name = [il](const char* t) { return fmt::format("blk.{}.{}.weight", il, t); };
    // Order of llama.cpp's converter output (HF state-dict order per block).
    GEMBED_RETURN_IF_ERROR(visit(Spec(name("attn_norm"), {embd}, R::kNorm, i), l.attn_norm));
    GEMBED_RETURN_IF_ERROR(visit(Spec(name("attn_q"), {embd, q}, R::kMatrix, i), l.attn_q));
    GEMBED_RETURN_IF_ERROR(visit(Spec(name("attn_k"), {embd, kv}, R::kMatrix, i), l.attn_k));
    GEMBED_RETURN_IF_ERROR(visit(Spec(name("attn_v"), {embd, kv}, R::kMatrix, i), l.attn_v));
    GEMBED_RETURN_IF_ERROR(visit(Spec(name("attn_q_norm"), {hd}, R::kNorm, i), l.attn_q_norm));
    GEMBED_RETURN_IF_ERROR(visit(Spec(name("attn_k_norm"), {hd}, R::kNorm, i), l.attn_k_norm));
    GEMBED_RETURN_IF_ERROR(visit(Spec(name("attn_output"), {q, embd}, R::kMatrix, i), l.attn_output));
    GEMBED_RETURN_IF_ERROR(
        visit(Spec(name("post_attention_norm"), {embd}, R::kNorm, i), l.post_attention_norm));
    GEMBED_RETURN_IF_ERROR(visit(Spec(name("ffn_norm"), {embd}, R::kNorm, i), l.ffn_norm));
    GEMBED_RETURN_IF_ERROR(visit(Spec(name("ffn_gate"), {embd, ff}, R::kMatrix, i), l.ffn_gate));
    GEMBED_RETURN_IF_ERROR(visit(Spec(name("ffn_up"), {embd, ff}, R::kMatrix, i), l.ffn_up));
    GEMBED_RETURN_IF_ERROR(visit(Spec(name("ffn_down"), {ff, embd}, R::kMatrix, i), l.ffn_down));
    GEMBED_RETURN_IF_ERROR(visit(Spec(name("post_ffw_norm"), {embd}, R::kNorm, i), l.post_ffw_norm));
  }
  GEMBED_RETURN_IF_ERROR(visit(Spec("output_norm.weight", {embd}, R::kNorm, -1), w.output_norm));
  if (c.has_dense()) {
    const int64_t dh = c.dense_hidden;
    GEMBED_RETURN_IF_ERROR(visit(Spec("dense_2.weight", {embd, dh}, R::kMatrix, -1, false), w.dense_2));
    GEMBED_RETURN_IF_ERROR(visit(Spec("dense_3.weight", {dh, embd}, R::kMatrix, -1, false), w.dense_3));
  }
  return Status::Ok();
}

std::vector<TensorSpec> TensorSpecs(const ModelConfig& config) {
  std::vector<TensorSpec> specs;
  ModelWeights scratch;
  Status st = ForEachTensor(config, scratch, [&](const TensorSpec& s, TensorView&) {
    specs.push_back(s);
    return Status::Ok();
  });
  (void)st;  // the visitor never fails
  return specs;
}

Result<ModelWeights> BindWeights(const ModelConfig& config, const GgufFile& file) {
  // block_count must match the blk.N. tensors exactly: a file with fewer
  // declared layers than tensors would otherwise run without the extra ones
  // (llama.cpp refuses it: "wrong number of tensors").
  std::vector<std::string_view> names;
  names.reserve(file.tensors().size());
  for (const GgufTensorInfo& t : file.tensors()) names.push_back(t.name);
  GEMBED_RETURN_IF_ERROR(CheckLayerTensors(config, names, "blk.", ArchKey("block_count")));
  ModelWeights w;
  std::set<std::string, std::less<>> known;
  Status st = ForEachTensor(config, w, [&](const TensorSpec& s, TensorView& slot) -> Status {
    known.insert(s.name);
    const GgufTensorInfo* info = file.FindTensor(s.name);
    if (info == nullptr) {
      if (s.required) return NotFound("missing tensor {}", s.name);
      return Status::Ok();
    }
    std::array<int64_t, kMaxDims> want{1, 1, 1, 1};
    for (int d = 0; d < s.n_dims; ++d) want[d] = s.ne[d];
    if (info->ne != want) {
      return CorruptFile("tensor {} has shape {}, expected {} from the config", s.name,
                         ShapeString(info->ne, std::max(info->n_dims, 1)), ShapeString(want, s.n_dims));
    }
    if (!DTypeAllowedForRole(s.role, info->dtype)) {
      return Unsupported("tensor {} has dtype {}, which gembed does not run for this tensor (allowed: {})",
                         s.name, DTypeName(info->dtype),
                         s.role == TensorRole::kNorm ? "F32" : "F32, F16, BF16, Q8_0, Q4_0, Q4_1");
    }
    slot = file.View(*info);
    return Status::Ok();
  });
  GEMBED_RETURN_IF_ERROR(st);

  // Layouts the loader of llama.cpp also accepts but gembed does not run.
  for (const GgufTensorInfo& t : file.tensors()) {
    if (known.count(t.name)) continue;
    const std::string& n = t.name;
    if (n.find("attn_qkv") != std::string::npos) {
      return Unsupported("tensor {}: fused QKV weights are not supported (convert with separate q/k/v)", n);
    }
    if (n.size() > 5 && n.compare(n.size() - 5, 5, ".bias") == 0) {
      return Unsupported("tensor {}: biases are not supported by this architecture in gembed", n);
    }
    if (n == "output.weight") continue;  // LM head, unused for embeddings
    Log(LogLevel::kWarning, "ignoring unknown tensor {}", n);
  }
  return w;
}

}  // namespace gembed
