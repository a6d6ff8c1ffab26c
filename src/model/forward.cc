#include "model/forward.h"

#include <algorithm>

namespace gembed {
namespace {

// Byte offsets of the scratch tensors inside the arena (each 64-byte aligned).
struct ArenaLayout {
  size_t x, h, q, k, v, attn, proj, gate, up, pooled, dense, total;
};

size_t Align64(size_t n) { return (n + 63) / 64 * 64; }

ArenaLayout Layout(const ModelConfig& c, int64_t t, int64_t s) {
  ArenaLayout l{};
  size_t off = 0;
  auto take = [&off](int64_t floats) {
    const size_t at = off;
    off += Align64(static_cast<size_t>(floats) * sizeof(float));
    return at;
  };
  l.x = take(t * c.n_embd);
  l.h = take(t * c.n_embd);
  l.q = take(t * c.q_width());
  l.k = take(t * c.kv_width());
  l.v = take(t * c.kv_width());
  l.attn = take(t * c.q_width());
  l.proj = take(t * c.n_embd);
  l.gate = take(t * c.n_ff);
  l.up = take(t * c.n_ff);
  l.pooled = take(s * c.n_embd);
  l.dense = take(s * std::max<int64_t>(c.dense_hidden, 1));
  l.total = off;
  return l;
}

}  // namespace

Result<std::unique_ptr<Model>> Model::Create(const ModelConfig& config, const ModelWeights& weights) {
  std::unique_ptr<Model> m(new Model(config, weights));
  m->layers_.resize(config.n_layer);
  for (uint32_t il = 0; il < config.n_layer; ++il) {
    const LayerWeights& w = weights.layers[il];
    PackedLayer& p = m->layers_[il];
    const std::pair<PackedMatrix*, const TensorView*> mats[] = {
        {&p.attn_q, &w.attn_q},       {&p.attn_k, &w.attn_k}, {&p.attn_v, &w.attn_v},
        {&p.attn_output, &w.attn_output}, {&p.ffn_gate, &w.ffn_gate}, {&p.ffn_up, &w.ffn_up},
        {&p.ffn_down, &w.ffn_down}};
    for (const auto& [dst, src] : mats) {
      auto packed = PackMatrix(*src);
      if (!packed.ok()) return packed.status().WithContext(fmt::format("packing layer {}", il));
      *dst = std::move(*packed);
    }
  }
  if (config.has_dense()) {
    GEMBED_ASSIGN_OR_RETURN(m->dense_2_, PackMatrix(weights.dense_2));
    GEMBED_ASSIGN_OR_RETURN(m->dense_3_, PackMatrix(weights.dense_3));
  }
  return m;
}

size_t Model::packed_bytes() const {
  size_t n = dense_2_.packed_bytes() + dense_3_.packed_bytes();
  for (const PackedLayer& p : layers_) {
    for (const PackedMatrix* w :
         {&p.attn_q, &p.attn_k, &p.attn_v, &p.attn_output, &p.ffn_gate, &p.ffn_up, &p.ffn_down}) {
      n += w->packed_bytes();
    }
  }
  return n;
}

Status Model::Reserve(int64_t max_tokens, int64_t max_sequences) {
  max_tokens = std::max(max_tokens, arena_tokens_);
  max_sequences = std::max(max_sequences, arena_sequences_);
  if (max_tokens == arena_tokens_ && max_sequences == arena_sequences_) return Status::Ok();
  if (!arena_.Reserve(Layout(config_, max_tokens, max_sequences).total)) {
    arena_tokens_ = arena_sequences_ = 0;
    return MakeStatus(StatusCode::kResourceExhausted, "cannot allocate scratch for {} tokens", max_tokens);
  }
  positions_.reserve(static_cast<size_t>(max_tokens));
  arena_tokens_ = max_tokens;
  arena_sequences_ = max_sequences;
  return Status::Ok();
}

Status Model::Forward(Ops& ops, std::span<const int32_t> token_ids, std::span<const int32_t> cu_seqlens,
                      float* out, const ForwardObserver& observer) {
  const ModelConfig& c = config_;
  const int64_t T = static_cast<int64_t>(token_ids.size());
  const int64_t S = static_cast<int64_t>(cu_seqlens.size()) - 1;
  const int64_t E = c.n_embd, F = c.n_ff, H = c.n_head, HKV = c.n_head_kv, D = c.head_dim;
  const float eps = c.rms_eps;

  // Positions restart at 0 in every sequence; lengths are checked here, the
  // rest of cu_seqlens by the ops.
  if (S < 1 || cu_seqlens[0] != 0 || cu_seqlens[S] != T) {
    return InvalidArgument("cu_seqlens does not describe the {} tokens of the batch", T);
  }
  GEMBED_RETURN_IF_ERROR(Reserve(T, S));
  positions_.clear();
  for (int64_t s = 0; s < S; ++s) {
    const int64_t len = cu_seqlens[s + 1] - cu_seqlens[s];
    if (len < 1 || len > c.context_length) {
      return InvalidArgument("sequence {} has {} tokens; 1..{} are allowed", s, len, c.context_length);
    }
    for (int32_t p = 0; p < len; ++p) positions_.push_back(p);
  }
  auto dump = [&](const char* name, int layer, const float* data, int64_t rows, int64_t cols) {
    if (observer) observer(name, layer, data, rows, cols);
  };
  auto gain = [](const TensorView& v) { return static_cast<const float*>(v.data); };

  const ArenaLayout L = Layout(c, T, S);
  auto buf = [this](size_t off) { return reinterpret_cast<float*>(arena_.data() + off); };
  float* x = buf(L.x);        // [T x E]  residual stream, fp32 throughout
  float* h = buf(L.h);        // [T x E]  normed input of the attention / FFN
  float* q = buf(L.q);        // [T x H x D]
  float* k = buf(L.k);        // [T x HKV x D]
  float* v = buf(L.v);        // [T x HKV x D]
  float* attn = buf(L.attn);  // [T x H x D]  attention output, heads concatenated
  float* proj = buf(L.proj);  // [T x E]  attn_output / ffn_down result
  float* gate = buf(L.gate);  // [T x F]  ffn_gate, then gelu(gate) * up
  float* up = buf(L.up);      // [T x F]

  // 1. x = E[t] * sqrt(n_embd)
  GEMBED_RETURN_IF_ERROR(ops.EmbeddingLookup(weights_.token_embd, token_ids, c.EmbeddingScale(), x));
  dump("inp_embd", -1, x, T, E);

  for (uint32_t il = 0; il < c.n_layer; ++il) {
    const LayerWeights& w = weights_.layers[il];
    const PackedLayer& p = layers_[il];
    const int l = static_cast<int>(il);

    // 2.1 h = RMSNorm(x) * g_attn_norm
    ops.RmsNorm(x, T, E, gain(w.attn_norm), eps, h);
    dump("attn_norm", l, h, T, E);
    // 2.2 q = Wq h, k = Wk h, v = Wv h (h quantised once for all three)
    const MatMulOutput qkv[] = {{&p.attn_q, q}, {&p.attn_k, k}, {&p.attn_v, v}};
    ops.MatMulShared(h, T, qkv);
    dump("Vcur", l, v, T, HKV * D);
    // 2.3 per-head RMSNorm of q and k (one gain vector shared by the heads), before RoPE
    ops.HeadRmsNorm(q, T, H, D, gain(w.attn_q_norm), eps);
    ops.HeadRmsNorm(k, T, HKV, D, gain(w.attn_k_norm), eps);
    dump("Qcur_normed", l, q, T, H * D);
    dump("Kcur_normed", l, k, T, HKV * D);
    // 2.4 NeoX RoPE, base 10k on sliding layers / 1M on global layers
    const float base = c.RopeBase(il);
    GEMBED_RETURN_IF_ERROR(ops.RopeNeox(q, T, H, D, positions_, base));
    GEMBED_RETURN_IF_ERROR(ops.RopeNeox(k, T, HKV, D, positions_, base));
    dump("Qcur_rope", l, q, T, H * D);
    dump("Kcur_rope", l, k, T, HKV * D);
    // 2.5-2.6 bidirectional attention within each sequence, GQA, window
    // ±sliding_window/2 on sliding layers. The 1/sqrt(head_dim) query scale
    // is applied to the scores inside the op: the same product as scaling q
    // first (exactly so for head_dim 256 or 64, where the scale is 2^-4 / 2^-3).
    const int64_t window = c.IsSliding(il) ? static_cast<int64_t>(c.window_radius()) : -1;
    GEMBED_RETURN_IF_ERROR(
        ops.Attention(q, k, v, T, cu_seqlens, H, HKV, D, window, c.AttentionScale(), attn));
    dump("kqv_out", l, attn, T, H * D);
    ops.MatMul(p.attn_output, attn, T, proj);
    dump("attn_out", l, proj, T, E);
    // 2.7 x += RMSNorm(attn) * g_post_attention_norm (sandwich norm)
    ops.RmsNormAdd(proj, T, E, gain(w.post_attention_norm), eps, x);
    dump("ffn_inp", l, x, T, E);
    // 2.8 h = RMSNorm(x) * g_ffn_norm
    ops.RmsNorm(x, T, E, gain(w.ffn_norm), eps, h);
    dump("ffn_norm", l, h, T, E);
    // 2.9 GeGLU: Wdown (gelu_tanh(Wgate h) * (Wup h))
    const MatMulOutput gate_up[] = {{&p.ffn_gate, gate}, {&p.ffn_up, up}};
    ops.MatMulShared(h, T, gate_up);
    ops.GeGlu(gate, up, T * F, gate);
    dump("ffn_geglu", l, gate, T, F);
    ops.MatMul(p.ffn_down, gate, T, proj);
    dump("ffn_out", l, proj, T, E);
    // 2.10 x += RMSNorm(f) * g_post_ffw_norm
    ops.RmsNormAdd(proj, T, E, gain(w.post_ffw_norm), eps, x);
    dump("l_out", l, x, T, E);
  }

  // 3. final norm, in place
  ops.RmsNorm(x, T, E, gain(weights_.output_norm), eps, x);
  dump("result_norm", -1, x, T, E);
  // 4. mean over all tokens of each sequence (BOS, EOS and prompt included)
  float* pooled = c.has_dense() ? buf(L.pooled) : out;  // [S x E]
  GEMBED_RETURN_IF_ERROR(ops.MeanPool(x, E, cu_seqlens, pooled));
  dump("pooled", -1, pooled, S, E);
  // 5. Dense head: out = W3 (W2 pooled), no bias, no activation
  if (c.has_dense()) {
    float* mid = buf(L.dense);  // [S x dense_hidden]
    ops.MatMul(dense_2_, pooled, S, mid);
    dump("dense_2", -1, mid, S, c.dense_hidden);
    ops.MatMul(dense_3_, mid, S, out);
    dump("dense_3", -1, out, S, E);
  }
  // 6. unit length
  ops.L2Normalize(out, S, E);
  dump("embedding", -1, out, S, E);
  return Status::Ok();
}

}  // namespace gembed
