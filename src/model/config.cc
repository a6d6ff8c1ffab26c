#include "model/config.h"

#include <cmath>
#include <optional>

#include "base/log.h"
#include "io/gguf.h"

namespace gembed {
namespace {

// Generous sanity limits: they keep size arithmetic far from overflow and
// turn absurd values from a corrupt file into a clear error.
constexpr uint32_t kMaxLayers = 1024;
constexpr uint32_t kMaxWidth = 1u << 20;
constexpr uint32_t kMaxContext = 1u << 20;
constexpr uint32_t kDefaultSwaPeriod = 6;  // [GE] load_swa_pattern(ml, 6)

// A u32 key that llama.cpp also accepts as a per-layer array. gembed runs one
// width for all layers, so an array must hold n_layer equal values.
Result<std::optional<uint32_t>> GetPerLayerU32(const GgufFile& f, const std::string& key,
                                               uint32_t n_layer) {
  const GgufValue* v = f.Find(key);
  if (v == nullptr) return std::optional<uint32_t>();
  if (v->type != GgufType::kArray) {
    GEMBED_ASSIGN_OR_RETURN(uint32_t x, f.GetU32(key));
    return std::optional<uint32_t>(x);
  }
  std::vector<uint64_t> vals;
  for (uint64_t u : v->arr_uint) vals.push_back(u);
  for (int64_t i : v->arr_int) {
    if (i < 0) return CorruptFile("{}: negative value {}", key, i);
    vals.push_back(static_cast<uint64_t>(i));
  }
  if (vals.size() != n_layer) {
    return CorruptFile("{}: per-layer array has {} entries, block_count is {}", key, vals.size(),
                       n_layer);
  }
  for (uint64_t x : vals) {
    if (x != vals[0]) return Unsupported("{}: per-layer values differ (gembed needs one value)", key);
  }
  if (vals.empty() || vals[0] > UINT32_MAX) return CorruptFile("{}: bad per-layer array", key);
  return std::optional<uint32_t>(static_cast<uint32_t>(vals[0]));
}

Status CheckRange(const char* what, uint64_t v, uint64_t lo, uint64_t hi) {
  if (v < lo || v > hi) return Unsupported("{} = {} is outside the supported range [{}, {}]", what, v, lo, hi);
  return Status::Ok();
}

// llama.cpp's set_swa_pattern(n): layer il slides iff n == 0 || il % n < n - 1.
std::vector<bool> SwaFromPeriod(uint32_t period, uint32_t n_layer) {
  std::vector<bool> s(n_layer);
  for (uint32_t il = 0; il < n_layer; ++il) s[il] = period == 0 || il % period < period - 1;
  return s;
}

Result<std::vector<bool>> ReadSwaPattern(const GgufFile& f, uint32_t n_layer) {
  const std::string key = ArchKey("attention.sliding_window_pattern");
  const GgufValue* v = f.Find(key);
  if (v == nullptr) return SwaFromPeriod(kDefaultSwaPeriod, n_layer);
  if (v->type == GgufType::kArray) {
    if (v->array_type != GgufType::kBool) return CorruptFile("{}: expected a bool array", key);
    if (v->arr_bool.size() != n_layer) {
      return CorruptFile("{}: has {} entries, block_count is {}", key, v->arr_bool.size(), n_layer);
    }
    return std::vector<bool>(v->arr_bool.begin(), v->arr_bool.end());
  }
  GEMBED_ASSIGN_OR_RETURN(uint32_t period, f.GetU32(key));
  return SwaFromPeriod(period, n_layer);
}

}  // namespace

std::string ArchKey(const char* suffix) { return std::string(kGemmaEmbeddingArch) + "." + suffix; }

float ModelConfig::AttentionScale() const { return 1.0f / std::sqrt(static_cast<float>(head_dim)); }
float ModelConfig::EmbeddingScale() const { return std::sqrt(static_cast<float>(n_embd)); }

Status ModelConfig::Validate() const {
  GEMBED_RETURN_IF_ERROR(CheckRange("vocabulary size", n_vocab, 1, INT32_MAX));
  GEMBED_RETURN_IF_ERROR(CheckRange("context_length", context_length, 1, kMaxContext));
  GEMBED_RETURN_IF_ERROR(CheckRange("embedding_length", n_embd, 1, kMaxWidth));
  GEMBED_RETURN_IF_ERROR(CheckRange("block_count", n_layer, 1, kMaxLayers));
  GEMBED_RETURN_IF_ERROR(CheckRange("feed_forward_length", n_ff, 1, kMaxWidth));
  GEMBED_RETURN_IF_ERROR(CheckRange("attention.head_count", n_head, 1, 4096));
  GEMBED_RETURN_IF_ERROR(CheckRange("attention.head_count_kv", n_head_kv, 1, 4096));
  GEMBED_RETURN_IF_ERROR(CheckRange("attention.key_length", head_dim, 2, 65536));
  if (head_dim % 2 != 0) {
    return Unsupported("head dim {} is odd: NeoX RoPE rotates pairs (i, i + head_dim/2)", head_dim);
  }
  if (n_head % n_head_kv != 0) {
    return Unsupported("head_count {} is not a multiple of head_count_kv {}", n_head, n_head_kv);
  }
  if (static_cast<uint64_t>(n_head) * head_dim > kMaxWidth) {
    return Unsupported("head_count * key_length = {} is too large", uint64_t{n_head} * head_dim);
  }
  if (!(rms_eps > 0.0f) || !(rms_eps < 1.0f)) {
    return Unsupported("layer_norm_rms_epsilon = {} must be in (0, 1)", rms_eps);
  }
  if (!(rope_base > 1.0f) || !std::isfinite(rope_base) || !(rope_base_swa > 1.0f) ||
      !std::isfinite(rope_base_swa)) {
    return Unsupported("RoPE bases must be finite and > 1 (freq_base {}, freq_base_swa {})",
                       rope_base, rope_base_swa);
  }
  if (layer_is_sliding.size() != n_layer) {
    return Internal("sliding-window pattern has {} entries for {} layers", layer_is_sliding.size(), n_layer);
  }
  bool any_sliding = false;
  for (bool s : layer_is_sliding) any_sliding |= s;
  if (any_sliding && sliding_window < 2) {
    return Unsupported("attention.sliding_window = {} is too small (the radius is window/2)",
                       sliding_window);
  }
  if (pooling != PoolingType::kMean) {
    return Unsupported("pooling_type {} is not supported (only 1 = mean)", static_cast<uint32_t>(pooling));
  }
  if (dense_hidden > kMaxWidth) return Unsupported("Dense width {} is too large", dense_hidden);
  return Status::Ok();
}

void WriteArchKeys(const ModelConfig& c, GgufWriter& w) {
  w.SetString("general.architecture", kGemmaEmbeddingArch);
  w.SetU32(ArchKey("context_length"), c.context_length);
  w.SetU32(ArchKey("embedding_length"), c.n_embd);
  w.SetU32(ArchKey("block_count"), c.n_layer);
  w.SetU32(ArchKey("feed_forward_length"), c.n_ff);
  w.SetU32(ArchKey("attention.head_count"), c.n_head);
  w.SetF32(ArchKey("attention.layer_norm_rms_epsilon"), c.rms_eps);
  w.SetU32(ArchKey("attention.key_length"), c.head_dim);
  w.SetU32(ArchKey("attention.value_length"), c.head_dim);
  w.SetF32(ArchKey("rope.freq_base"), c.rope_base);
  w.SetF32(ArchKey("rope.freq_base_swa"), c.rope_base_swa);
  w.SetU32(ArchKey("attention.sliding_window"), c.sliding_window);
  if (c.layer_is_sliding != SwaFromPeriod(kDefaultSwaPeriod, c.n_layer)) {
    GgufValue v;
    v.type = GgufType::kArray;
    v.array_type = GgufType::kBool;
    v.arr_bool.assign(c.layer_is_sliding.begin(), c.layer_is_sliding.end());
    w.Set(ArchKey("attention.sliding_window_pattern"), std::move(v));
  }
  w.SetU32(ArchKey("attention.head_count_kv"), c.n_head_kv);
  w.SetU32(ArchKey("pooling_type"), static_cast<uint32_t>(c.pooling));
  if (c.has_dense()) {
    w.SetU32(ArchKey("dense_2_feat_in"), c.n_embd);
    w.SetU32(ArchKey("dense_2_feat_out"), c.dense_hidden);
    w.SetU32(ArchKey("dense_3_feat_in"), c.dense_hidden);
    w.SetU32(ArchKey("dense_3_feat_out"), c.n_embd);
  }
}

Result<ModelConfig> ConfigFromGguf(const GgufFile& f) {
  GEMBED_ASSIGN_OR_RETURN(std::string arch, f.GetString("general.architecture"));
  if (arch != kGemmaEmbeddingArch) {
    return Unsupported("general.architecture is '{}', expected '{}'", arch, kGemmaEmbeddingArch);
  }
  ModelConfig c;
  // Required keys. Each error names the key (the getters do).
  GEMBED_ASSIGN_OR_RETURN(c.context_length, f.GetU32(ArchKey("context_length")));
  GEMBED_ASSIGN_OR_RETURN(c.n_embd, f.GetU32(ArchKey("embedding_length")));
  GEMBED_ASSIGN_OR_RETURN(c.n_layer, f.GetU32(ArchKey("block_count")));
  GEMBED_RETURN_IF_ERROR(CheckRange("block_count", c.n_layer, 1, kMaxLayers));
  GEMBED_ASSIGN_OR_RETURN(c.rms_eps, f.GetF32(ArchKey("attention.layer_norm_rms_epsilon")));
  GEMBED_ASSIGN_OR_RETURN(c.sliding_window, f.GetU32(ArchKey("attention.sliding_window")));

  GEMBED_ASSIGN_OR_RETURN(auto n_ff, GetPerLayerU32(f, ArchKey("feed_forward_length"), c.n_layer));
  if (!n_ff) return NotFound("missing key {}", ArchKey("feed_forward_length"));
  c.n_ff = *n_ff;
  GEMBED_ASSIGN_OR_RETURN(auto n_head, GetPerLayerU32(f, ArchKey("attention.head_count"), c.n_layer));
  if (!n_head) return NotFound("missing key {}", ArchKey("attention.head_count"));
  c.n_head = *n_head;
  if (c.n_head == 0) return Unsupported("attention.head_count is 0");

  // Optional keys with llama.cpp's defaults.
  GEMBED_ASSIGN_OR_RETURN(auto n_head_kv, GetPerLayerU32(f, ArchKey("attention.head_count_kv"), c.n_layer));
  c.n_head_kv = n_head_kv.value_or(c.n_head);
  GEMBED_ASSIGN_OR_RETURN(auto key_length, f.GetU32Opt(ArchKey("attention.key_length")));
  GEMBED_ASSIGN_OR_RETURN(auto value_length, f.GetU32Opt(ArchKey("attention.value_length")));
  if (!key_length && c.n_embd % c.n_head != 0) {
    return Unsupported("attention.key_length is absent and embedding_length {} is not a multiple of head_count {}",
                       c.n_embd, c.n_head);
  }
  c.head_dim = key_length.value_or(c.n_embd / c.n_head);
  if (value_length && *value_length != c.head_dim) {
    return Unsupported("attention.value_length {} != key_length {} is not supported", *value_length, c.head_dim);
  }
  GEMBED_ASSIGN_OR_RETURN(auto rope_dims, f.GetU32Opt(ArchKey("rope.dimension_count")));
  if (rope_dims && *rope_dims != c.head_dim) {
    return Unsupported("rope.dimension_count {} != head dim {}: partial rotary is not supported", *rope_dims,
                       c.head_dim);
  }
  GEMBED_ASSIGN_OR_RETURN(auto rope_base, f.GetF32Opt(ArchKey("rope.freq_base")));
  if (!rope_base) {
    // llama.cpp's default; the real model needs 1e6 (MODEL-SPEC §2).
    Log(LogLevel::kWarning, "{} is absent: using 10000 for global layers, as llama.cpp does",
        ArchKey("rope.freq_base"));
  }
  c.rope_base = rope_base.value_or(10000.0f);
  GEMBED_ASSIGN_OR_RETURN(auto rope_base_swa, f.GetF32Opt(ArchKey("rope.freq_base_swa")));
  c.rope_base_swa = rope_base_swa.value_or(10000.0f);
  GEMBED_ASSIGN_OR_RETURN(auto rope_scale, f.GetF32Opt(ArchKey("rope.scaling.factor")));
  if (rope_scale && *rope_scale != 0.0f && *rope_scale != 1.0f) {
    return Unsupported("rope.scaling.factor {} is not supported", *rope_scale);
  }
  GEMBED_ASSIGN_OR_RETURN(c.layer_is_sliding, ReadSwaPattern(f, c.n_layer));
  GEMBED_ASSIGN_OR_RETURN(auto pooling, f.GetU32Opt(ArchKey("pooling_type")));
  c.pooling = static_cast<PoolingType>(pooling.value_or(static_cast<uint32_t>(PoolingType::kMean)));

  // Vocabulary size = token_embd rows.
  const GgufTensorInfo* embd = f.FindTensor("token_embd.weight");
  if (embd == nullptr) return NotFound("missing tensor token_embd.weight");
  if (embd->n_dims != 2 || embd->ne[1] < 1 || embd->ne[1] > INT32_MAX) {
    return CorruptFile("token_embd.weight must be 2-D [n_embd, n_vocab]");
  }
  c.n_vocab = static_cast<uint32_t>(embd->ne[1]);

  // Dense head: present iff its tensors are; the keys, when present, must agree.
  const GgufTensorInfo* d2 = f.FindTensor("dense_2.weight");
  const GgufTensorInfo* d3 = f.FindTensor("dense_3.weight");
  if ((d2 == nullptr) != (d3 == nullptr)) {
    return CorruptFile("{} is present without {}: the Dense head needs both", d2 ? "dense_2.weight" : "dense_3.weight",
                       d2 ? "dense_3.weight" : "dense_2.weight");
  }
  GEMBED_ASSIGN_OR_RETURN(auto d2_in, f.GetU32Opt(ArchKey("dense_2_feat_in")));
  GEMBED_ASSIGN_OR_RETURN(auto d2_out, f.GetU32Opt(ArchKey("dense_2_feat_out")));
  GEMBED_ASSIGN_OR_RETURN(auto d3_in, f.GetU32Opt(ArchKey("dense_3_feat_in")));
  GEMBED_ASSIGN_OR_RETURN(auto d3_out, f.GetU32Opt(ArchKey("dense_3_feat_out")));
  if (d2 != nullptr) {
    if (d2->n_dims != 2 || d2->ne[1] < 1 || d2->ne[1] > kMaxWidth) {
      return CorruptFile("dense_2.weight must be 2-D [n_embd, dense width]");
    }
    c.dense_hidden = static_cast<uint32_t>(d2->ne[1]);
    if (d2_in && *d2_in != c.n_embd) {
      return CorruptFile("dense_2_feat_in {} != embedding_length {}", *d2_in, c.n_embd);
    }
    if (d3_out && *d3_out != c.n_embd) {
      return CorruptFile("dense_3_feat_out {} != embedding_length {}", *d3_out, c.n_embd);
    }
    if (d2_out && *d2_out != c.dense_hidden) {
      return CorruptFile("dense_2_feat_out {} != dense_2.weight rows {}", *d2_out, c.dense_hidden);
    }
    if (d3_in && *d3_in != c.dense_hidden) {
      return CorruptFile("dense_3_feat_in {} != dense_2.weight rows {}", *d3_in, c.dense_hidden);
    }
  }
  GEMBED_RETURN_IF_ERROR(c.Validate());
  return c;
}

}  // namespace gembed
