#include "model/forward.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace gembed {
namespace {

// Byte offsets of the scratch tensors inside the arena (each 64-byte aligned).
struct ArenaLayout {
  size_t x, h, q, k, v, attn, proj, gate, up, act_qs, act_d, act_corr, pooled, dense, total;
};

size_t Align64(size_t n) { return (n + 63) / 64 * 64; }

// Drops the whole pages inside [data, data + bytes) of a read-only file
// mapping from the resident set (see ModelOptions::release_packed_sources).
// Best effort: a failing madvise only leaves the pages resident.
void ReleasePages(const void* data, uint64_t bytes) {
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) / page * page;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

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
  // Q8_0 activations of the widest matrix input (n_embd, q width or n_ff).
  const int64_t kmax = std::max<int64_t>({c.n_embd, c.q_width(), c.n_ff});
  l.act_qs = take(t * kmax / 4 + 1);  // int8: kmax bytes per row
  l.act_d = take(t * (kmax / kQ8BlockElems + 1));
  l.act_corr = take(t * (kmax / kQ8BlockElems + 1));
  l.pooled = take(s * c.n_embd);
  l.dense = take(s * std::max<int64_t>(c.dense_hidden, 1));
  l.total = off;
  return l;
}


using Clock = std::chrono::steady_clock;

// Adds the wall time of its scope to a profile entry (no clock reads when
// profiling is off).
class OpTimer {
 public:
  OpTimer(ForwardProfile* profile, const std::string& op) : profile_(profile), op_(&op) {
    if (profile_) t0_ = Clock::now();
  }
  ~OpTimer() {
    if (profile_) profile_->Add(*op_, std::chrono::duration<double>(Clock::now() - t0_).count());
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  ForwardProfile* profile_;
  const std::string* op_;
  Clock::time_point t0_;
};

// Indices into Model::op_names_.
enum OpName {
  kOpEmbed, kOpNormQ, kOpQkv, kOpQkRope, kOpAttnSliding, kOpAttnGlobal, kOpAttnOut,
  kOpAddNormQ, kOpGateUp, kOpGeGluQ, kOpDown, kOpFinalNorm, kOpPool, kOpDense, kOpL2, kOpCount
};

}  // namespace

void ForwardProfile::Add(const std::string& op, double seconds) {
  for (Entry& e : entries_) {
    if (e.op == op) {
      ++e.calls;
      e.seconds += seconds;
      return;
    }
  }
  entries_.push_back(Entry{op, 1, seconds});
}

void ForwardProfile::AddPass(int64_t tokens, int64_t sequences, double seconds) {
  ++passes_;
  tokens_ += tokens;
  sequences_ += sequences;
  pass_seconds_ += seconds;
}

void ForwardProfile::Clear() {
  entries_.clear();
  passes_ = tokens_ = sequences_ = 0;
  pass_seconds_ = 0;
}

std::string ForwardProfile::Format() const {
  std::string s = fmt::format("forward passes: {}, {} sequences, {} tokens, {:.3f} ms total ({:.3f} ms per pass)\n",
                              passes_, sequences_, tokens_, pass_seconds_ * 1e3,
                              passes_ ? pass_seconds_ * 1e3 / static_cast<double>(passes_) : 0.0);
  s += fmt::format("{:<46} {:>8} {:>11} {:>11} {:>7}\n", "op", "calls", "total ms", "ms/pass", "%");
  std::vector<Entry> sorted = entries_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) { return a.seconds > b.seconds; });
  double covered = 0;
  for (const Entry& e : sorted) {
    covered += e.seconds;
    s += fmt::format("{:<46} {:>8} {:>11.3f} {:>11.3f} {:>6.1f}%\n", e.op, e.calls, e.seconds * 1e3,
                     passes_ ? e.seconds * 1e3 / static_cast<double>(passes_) : 0.0,
                     pass_seconds_ > 0 ? 100.0 * e.seconds / pass_seconds_ : 0.0);
  }
  const double rest = pass_seconds_ - covered;
  s += fmt::format("{:<46} {:>8} {:>11.3f} {:>11.3f} {:>6.1f}%\n", "(between ops)", "", rest * 1e3,
                   passes_ ? rest * 1e3 / static_cast<double>(passes_) : 0.0,
                   pass_seconds_ > 0 ? 100.0 * rest / pass_seconds_ : 0.0);
  return s;
}

std::string_view PrecisionName(Precision p) { return p == Precision::kHigh ? "high" : "fast"; }

std::optional<Precision> PrecisionFromName(std::string_view name) {
  if (name == "fast") return Precision::kFast;
  if (name == "high") return Precision::kHigh;
  return std::nullopt;
}

Result<std::unique_ptr<Model>> Model::Create(const ModelConfig& config, const ModelWeights& weights,
                                             const ModelOptions& options) {
  std::unique_ptr<Model> m(new Model(config, weights));
  m->precision_ = options.precision;
  PackOptions pack;
  pack.widen_q8 = options.precision == Precision::kHigh;
  // Every matrix is packed into ONE arena (one allocation, contiguous in the
  // order a forward pass reads them). Transparent huge pages for it were
  // tried: 2-3% faster 12-token passes, but first-touch compaction made the
  // packing time vary from 40 to 190 ms, so start-up stays on 4 KiB pages.
  m->layers_.resize(config.n_layer);
  std::vector<std::pair<PackedMatrix*, const TensorView*>> mats;
  for (uint32_t il = 0; il < config.n_layer; ++il) {
    const LayerWeights& w = weights.layers[il];
    PackedLayer& p = m->layers_[il];
    for (const auto& pair : {std::pair<PackedMatrix*, const TensorView*>{&p.attn_q, &w.attn_q},
                             {&p.attn_k, &w.attn_k},
                             {&p.attn_v, &w.attn_v},
                             {&p.attn_output, &w.attn_output},
                             {&p.ffn_gate, &w.ffn_gate},
                             {&p.ffn_up, &w.ffn_up},
                             {&p.ffn_down, &w.ffn_down}}) {
      mats.push_back(pair);
    }
  }
  if (config.has_dense()) {
    mats.push_back({&m->dense_2_, &weights.dense_2});
    mats.push_back({&m->dense_3_, &weights.dense_3});
  }
  auto align64 = [](size_t n) { return (n + 63) / 64 * 64; };
  size_t total = 0;
  for (const auto& [dst, src] : mats) total += align64(PackedSize(*src, pack));
  if (total > 0 && !m->weight_arena_.Reserve(total)) {
    return MakeStatus(StatusCode::kResourceExhausted, "cannot allocate {} bytes for the packed weights", total);
  }
  size_t offset = 0;
  for (size_t i = 0; i < mats.size(); ++i) {
    const auto& [dst, src] = mats[i];
    const size_t size = PackedSize(*src, pack);
    // A view PackedSize rejects is packed on its own, so PackMatrix reports why.
    auto packed = PackMatrix(*src, pack, options.pool, size > 0 ? m->weight_arena_.data() + offset : nullptr);
    if (!packed.ok()) {
      const int layer = i / 7 < config.n_layer ? static_cast<int>(i / 7) : -1;
      return packed.status().WithContext(layer >= 0 ? fmt::format("packing layer {}", layer) : "packing the dense head");
    }
    if (options.release_packed_sources) ReleasePages(src->data, src->nbytes);
    *dst = std::move(*packed);
    offset += align64(size);
  }
  for (const PackedLayer& p : m->layers_) {
    const std::pair<Group, const PackedMatrix*> mats[] = {
        {kQkv, &p.attn_q},       {kQkv, &p.attn_k},      {kQkv, &p.attn_v}, {kAttnOut, &p.attn_output},
        {kGateUp, &p.ffn_gate}, {kGateUp, &p.ffn_up}, {kDown, &p.ffn_down}};
    for (const auto& [g, w] : mats) {
      (w->wants_q8() ? m->needs_[g].q8 : m->needs_[g].f32) = true;
    }
  }
  const ModelConfig& c = config;
  const char* kind = options.precision == Precision::kHigh ? "f32" : "q8";
  std::string* n = m->op_names_;
  n[kOpEmbed] = "embedding lookup";
  n[kOpNormQ] = "rmsnorm -> matmul input (layer 0)";
  n[kOpQkv] = fmt::format("matmul {} q/k/v {}->{}+{}+{}", kind, c.n_embd, c.q_width(), c.kv_width(), c.kv_width());
  n[kOpQkRope] = "q/k head norm + rope";
  n[kOpAttnSliding] = fmt::format("attention sliding (+-{}) (+ quantise)", c.window_radius());
  n[kOpAttnGlobal] = "attention global (+ quantise)";
  n[kOpAttnOut] = fmt::format("matmul {} attn_output {}->{}", kind, c.q_width(), c.n_embd);
  n[kOpAddNormQ] = "residual norm+add, rmsnorm -> matmul input";
  n[kOpGateUp] = fmt::format("matmul {} gate/up {}->2x{}", kind, c.n_embd, c.n_ff);
  n[kOpGeGluQ] = "geglu -> matmul input";
  n[kOpDown] = fmt::format("matmul {} ffn_down {}->{}", kind, c.n_ff, c.n_embd);
  n[kOpFinalNorm] = "final norm";
  n[kOpPool] = "mean pooling";
  n[kOpDense] = fmt::format("dense head {}->{}->{}", c.n_embd, c.dense_hidden, c.n_embd);
  n[kOpL2] = "l2 normalise";
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

int64_t Model::layer_macs_per_token() const {
  int64_t n = 0;
  for (const PackedLayer& p : layers_) {
    for (const PackedMatrix* w :
         {&p.attn_q, &p.attn_k, &p.attn_v, &p.attn_output, &p.ffn_gate, &p.ffn_up, &p.ffn_down}) {
      n += w->k * w->n;
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
  const Clock::time_point pass_start = profile_ ? Clock::now() : Clock::time_point{};
  const ModelConfig& c = config_;
  const int64_t T = static_cast<int64_t>(token_ids.size());
  const int64_t S = static_cast<int64_t>(cu_seqlens.size()) - 1;
  const int64_t E = c.n_embd, F = c.n_ff, H = c.n_head, HKV = c.n_head_kv, D = c.head_dim;
  const int64_t QW = c.q_width();
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
  const bool observe = static_cast<bool>(observer);
  auto dump = [&](const char* name, int layer, const float* data, int64_t rows, int64_t cols) {
    if (observe) observer(name, layer, data, rows, cols);
  };
  auto gain = [](const TensorView& v) { return static_cast<const float*>(v.data); };
  const std::string* names = op_names_;
  ForwardProfile* prof = profile_;

  const ArenaLayout L = Layout(c, T, S);
  auto buf = [this](size_t off) { return reinterpret_cast<float*>(arena_.data() + off); };
  float* x = buf(L.x);        // [T x E]  residual stream, fp32 throughout
  float* h = buf(L.h);        // [T x E]  fp32 normed input of attention / FFN (F32 weights, observer)
  float* q = buf(L.q);        // [T x H x D]
  float* k = buf(L.k);        // [T x HKV x D]
  float* v = buf(L.v);        // [T x HKV x D]
  float* attn = buf(L.attn);  // [T x H x D]  attention output, heads concatenated
  float* proj = buf(L.proj);  // [T x E]  attn_output / ffn_down result
  float* gate = buf(L.gate);  // [T x F]  ffn_gate, then gelu(gate) * up (fp32 form)
  float* up = buf(L.up);      // [T x F]
  // Q8_0 activations of the next matrix product (one buffer, reused in turn).
  int8_t* act_qs = reinterpret_cast<int8_t*>(arena_.data() + L.act_qs);
  float* act_d = buf(L.act_d);
  int32_t* act_corr = reinterpret_cast<int32_t*>(arena_.data() + L.act_corr);

  // The input of matrix-product group g, produced by a fused row op into
  // `f32_home` (when fp32 weights or an observer need it) and/or act_* (Q8).
  auto input_for = [&](Group g, float* f32_home) {
    RowsOut r;
    if (needs_[g].f32 || observe) r.f32 = f32_home;
    if (needs_[g].q8) {
      r.qs = act_qs;
      r.d = act_d;
      r.corr = act_corr;
    }
    return r;
  };

  // 1. x = E[t] * sqrt(n_embd)
  {
    OpTimer t(prof, names[kOpEmbed]);
    GEMBED_RETURN_IF_ERROR(ops.EmbeddingLookup(weights_.token_embd, token_ids, c.EmbeddingScale(), x));
  }
  dump("inp_embd", -1, x, T, E);

  // 2.1 of layer 0: h = RMSNorm(x) * g_attn_norm; later layers get theirs
  // from the previous layer's last fused op.
  RowsOut qkv_in = input_for(kQkv, h);
  if (c.n_layer > 0) {
    OpTimer t(prof, names[kOpNormQ]);
    ops.RmsNormTo(x, T, E, gain(weights_.layers[0].attn_norm), eps, qkv_in);
  }

  for (uint32_t il = 0; il < c.n_layer; ++il) {
    const LayerWeights& w = weights_.layers[il];
    const PackedLayer& p = layers_[il];
    const int l = static_cast<int>(il);
    const bool last = il + 1 == c.n_layer;
    dump("attn_norm", l, h, T, E);

    // 2.2 q = Wq h, k = Wk h, v = Wv h (one prepared input for all three)
    {
      OpTimer t(prof, names[kOpQkv]);
      const MatMulOutput qkv[] = {{&p.attn_q, q}, {&p.attn_k, k}, {&p.attn_v, v}};
      ops.MatMulPrepared(qkv_in, T, E, qkv);
    }
    dump("Vcur", l, v, T, HKV * D);
    // 2.3-2.4 per-head RMSNorm of q and k (one gain vector shared by the
    // heads), then NeoX RoPE (base 10k sliding / 1M global), one pass per token.
    {
      OpTimer t(prof, names[kOpQkRope]);
      if (observe) {  // unfused, to show the normed q/k before RoPE (same results)
        ops.HeadRmsNorm(q, T, H, D, gain(w.attn_q_norm), eps);
        ops.HeadRmsNorm(k, T, HKV, D, gain(w.attn_k_norm), eps);
        dump("Qcur_normed", l, q, T, H * D);
        dump("Kcur_normed", l, k, T, HKV * D);
        GEMBED_RETURN_IF_ERROR(ops.RopeNeox(q, T, H, D, positions_, c.RopeBase(il)));
        GEMBED_RETURN_IF_ERROR(ops.RopeNeox(k, T, HKV, D, positions_, c.RopeBase(il)));
      } else {
        GEMBED_RETURN_IF_ERROR(ops.QkNormRope(q, k, T, H, HKV, D, gain(w.attn_q_norm), gain(w.attn_k_norm),
                                              eps, positions_, c.RopeBase(il)));
      }
    }
    dump("Qcur_rope", l, q, T, H * D);
    dump("Kcur_rope", l, k, T, HKV * D);
    // 2.5-2.6 bidirectional attention within each sequence, GQA, window
    // ±sliding_window/2 on sliding layers. The 1/sqrt(head_dim) query scale
    // is applied to the scores inside the op: the same product as scaling q
    // first (exactly so for head_dim 256 or 64, where the scale is 2^-4 / 2^-3).
    // The output is fp32 (attn) and, for Q8 weights, quantised by the op.
    RowsOut o_in = input_for(kAttnOut, nullptr);
    o_in.f32 = attn;
    {
      const bool sliding = c.IsSliding(il);
      OpTimer t(prof, names[sliding ? kOpAttnSliding : kOpAttnGlobal]);
      const int64_t window = sliding ? static_cast<int64_t>(c.window_radius()) : -1;
      GEMBED_RETURN_IF_ERROR(
          ops.Attention(q, k, v, T, cu_seqlens, H, HKV, D, window, c.AttentionScale(), attn, &o_in));
    }
    dump("kqv_out", l, attn, T, H * D);
    {
      OpTimer t(prof, names[kOpAttnOut]);
      const MatMulOutput o[] = {{&p.attn_output, proj}};
      ops.MatMulPrepared(o_in, T, QW, o);
    }
    dump("attn_out", l, proj, T, E);
    // 2.7 x += RMSNorm(attn) * g_post_attention_norm (sandwich norm), and
    // 2.8 h = RMSNorm(x) * g_ffn_norm, in one pass.
    const RowsOut ffn_in = input_for(kGateUp, h);
    {
      OpTimer t(prof, names[kOpAddNormQ]);
      ops.AddRmsNormTo(proj, x, T, E, gain(w.post_attention_norm), gain(w.ffn_norm), eps, ffn_in);
    }
    dump("ffn_inp", l, x, T, E);
    dump("ffn_norm", l, h, T, E);
    // 2.9 GeGLU: Wdown (gelu_tanh(Wgate h) * (Wup h)); the product is written
    // (fp32 in place over gate, and/or Q8) as the down projection's input.
    {
      OpTimer t(prof, names[kOpGateUp]);
      const MatMulOutput gate_up[] = {{&p.ffn_gate, gate}, {&p.ffn_up, up}};
      ops.MatMulPrepared(ffn_in, T, E, gate_up);
    }
    const RowsOut down_in = input_for(kDown, gate);
    {
      OpTimer t(prof, names[kOpGeGluQ]);
      ops.GeGluTo(gate, up, T, F, down_in);
    }
    dump("ffn_geglu", l, gate, T, F);
    {
      OpTimer t(prof, names[kOpDown]);
      const MatMulOutput down[] = {{&p.ffn_down, proj}};
      ops.MatMulPrepared(down_in, T, F, down);
    }
    dump("ffn_out", l, proj, T, E);
    // 2.10 x += RMSNorm(f) * g_post_ffw_norm, fused with the next layer's
    // 2.1 (its attn_norm); the last layer's sum is kept for the final norm.
    {
      OpTimer t(prof, names[kOpAddNormQ]);
      if (last) {
        ops.AddRmsNormTo(proj, x, T, E, gain(w.post_ffw_norm), nullptr, eps, RowsOut{});
      } else {
        qkv_in = input_for(kQkv, h);
        ops.AddRmsNormTo(proj, x, T, E, gain(w.post_ffw_norm), gain(weights_.layers[il + 1].attn_norm), eps,
                         qkv_in);
      }
    }
    dump("l_out", l, x, T, E);
  }

  // 3. final norm, in place
  {
    OpTimer t(prof, names[kOpFinalNorm]);
    RowsOut in_place;
    in_place.f32 = x;
    ops.RmsNormTo(x, T, E, gain(weights_.output_norm), eps, in_place);
  }
  dump("result_norm", -1, x, T, E);
  // 4. mean over all tokens of each sequence (BOS, EOS and prompt included)
  float* pooled = c.has_dense() ? buf(L.pooled) : out;  // [S x E]
  {
    OpTimer t(prof, names[kOpPool]);
    GEMBED_RETURN_IF_ERROR(ops.MeanPool(x, E, cu_seqlens, pooled));
  }
  dump("pooled", -1, pooled, S, E);
  // 5. Dense head: out = W3 (W2 pooled), no bias, no activation
  if (c.has_dense()) {
    OpTimer t(prof, names[kOpDense]);
    float* mid = buf(L.dense);  // [S x dense_hidden]
    ops.MatMul(dense_2_, pooled, S, mid);
    dump("dense_2", -1, mid, S, c.dense_hidden);
    ops.MatMul(dense_3_, mid, S, out);
    dump("dense_3", -1, out, S, E);
  }
  // 6. unit length
  {
    OpTimer t(prof, names[kOpL2]);
    ops.L2Normalize(out, S, E);
  }
  dump("embedding", -1, out, S, E);
  if (prof) prof->AddPass(T, S, std::chrono::duration<double>(Clock::now() - pass_start).count());
  return Status::Ok();
}

}  // namespace gembed
