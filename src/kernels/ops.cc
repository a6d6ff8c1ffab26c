#include "kernels/ops.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "base/check.h"

namespace gembed {
namespace {

// Positions with cached RoPE cos/sin (the model's context length).
constexpr int64_t kRopeCachedPositions = 2048;
// Score-tile rows per attention work item (queries x heads sharing a KV
// head): 96 = 32 queries x 3 heads for EmbeddingGemma.
constexpr int64_t kAttnItemRows = 96;
// Below this many multiply-adds a loop runs on the calling thread only: waking
// the pool costs more than the work.
constexpr int64_t kMinParallelWork = 1 << 15;
// Attention K^T packs up to this many floats run on the calling thread.
constexpr int64_t kSerialPackFloats = 1 << 16;

// Parallel loops go straight to the pool's templates: no std::function, no
// allocation per call. Chunks are claimed dynamically; every output element is
// computed inside one chunk in a fixed order, so results never depend on the
// thread count or on which thread ran a chunk.
template <typename F>
void ParallelRun(ThreadPool& pool, int64_t n, int64_t grain, F& body) {
  pool.ParallelFor(n, grain, body);
}

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Grain (items per thread chunk) such that a chunk carries at least
// kMinParallelWork units when one item costs `cost_per_item`.
int64_t GrainFor(int64_t cost_per_item) {
  return std::max<int64_t>(1, kMinParallelWork / std::max<int64_t>(1, cost_per_item));
}

Status ValidateSeqlens(std::span<const int32_t> cu_seqlens, int64_t t) {
  if (cu_seqlens.empty()) return InvalidArgument("cu_seqlens is empty");
  if (cu_seqlens[0] != 0) return InvalidArgument("cu_seqlens[0] is {}, expected 0", cu_seqlens[0]);
  for (size_t i = 1; i < cu_seqlens.size(); ++i)
    if (cu_seqlens[i] < cu_seqlens[i - 1])
      return InvalidArgument("cu_seqlens decreases at index {} ({} < {})", i, cu_seqlens[i],
                             cu_seqlens[i - 1]);
  if (t >= 0 && cu_seqlens.back() != t)
    return InvalidArgument("cu_seqlens ends at {} but the batch has {} tokens", cu_seqlens.back(),
                           t);
  return Status::Ok();
}

}  // namespace

Ops::Ops(const KernelTable& table, ThreadPool& pool)
    : table_(&table),
      pool_(&pool),
      gemm_q8_small_(table.gemm_q8),
      gemm_q8_large_(table.gemm_q8),
      thread_scratch_(static_cast<size_t>(pool.size())) {}

void Ops::SetGemmQ8(GemmQ8Fn small, GemmQ8Fn large, int64_t small_m_max) {
  gemm_q8_small_ = small ? small : table_->gemm_q8;
  gemm_q8_large_ = large ? large : table_->gemm_q8;
  gemm_q8_small_m_max_ = small_m_max;
}

// ---------------------------------------------------------------------------
// Embedding lookup

Status Ops::EmbeddingLookup(const TensorView& emb, std::span<const int32_t> ids, float scale,
                            float* out) {
  const DType dt = emb.dtype;
  if (dt != DType::kF32 && dt != DType::kF16 && dt != DType::kBF16 && dt != DType::kQ8_0 && dt != DType::kQ4_0 &&
      dt != DType::kQ4_1)
    return Unsupported("embedding table dtype {} (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)",
                       DTypeName(dt));
  const int64_t d = emb.ne[0], rows = emb.rows();
  const std::optional<uint64_t> row_bytes = DTypeRowBytes(dt, static_cast<uint64_t>(d));
  if (d <= 0 || !row_bytes || emb.data == nullptr ||
      emb.nbytes != *row_bytes * static_cast<uint64_t>(rows))
    return InvalidArgument("embedding table view is inconsistent ({} x {} {}, {} bytes)", rows, d,
                           DTypeName(dt), emb.nbytes);
  for (size_t t = 0; t < ids.size(); ++t)
    if (ids[t] < 0 || ids[t] >= rows)
      return OutOfRange("token id {} at position {} is outside the vocabulary [0, {})", ids[t], t,
                        rows);
  const uint8_t* base = static_cast<const uint8_t*>(emb.data);
  const KernelTable& kt = *table_;
  auto body = [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      const uint8_t* row = base + static_cast<uint64_t>(ids[static_cast<size_t>(t)]) * *row_bytes;
      float* o = out + t * d;
      switch (dt) {
        case DType::kF32:
          kt.scale(reinterpret_cast<const float*>(row), d, scale, o);
          break;
        case DType::kF16:
          kt.f16_to_f32(reinterpret_cast<const uint16_t*>(row), d, scale, o);
          break;
        case DType::kBF16:
          kt.bf16_to_f32(reinterpret_cast<const uint16_t*>(row), d, scale, o);
          break;
        case DType::kQ4_0:
          kt.q4_0_to_f32(reinterpret_cast<const BlockQ4_0*>(row), d, scale, o);
          break;
        case DType::kQ4_1:
          kt.q4_1_to_f32(reinterpret_cast<const BlockQ4_1*>(row), d, scale, o);
          break;
        default:
          kt.q8_0_to_f32(reinterpret_cast<const BlockQ8_0*>(row), d, scale, o);
          break;
      }
    }
  };
  ParallelRun(*pool_, static_cast<int64_t>(ids.size()), GrainFor(d * 4), body);
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// MatMul

Ops::ActQ8 Ops::ReserveActivations(int64_t m, int64_t k) {
  const int64_t nb = k / kQ8BlockElems;
  const size_t qs_bytes = static_cast<size_t>(CeilDiv(m * k, 64) * 64);
  GEMBED_CHECK(act_q8_.Reserve(qs_bytes + static_cast<size_t>(m * nb) * 8));
  ActQ8 a;
  a.qs = reinterpret_cast<int8_t*>(act_q8_.data());
  a.d = reinterpret_cast<float*>(act_q8_.data() + qs_bytes);
  a.corr = reinterpret_cast<int32_t*>(a.d + m * nb);
  return a;
}

void Ops::MatMul(const PackedMatrix& w, const float* x, int64_t m, float* y) {
  const MatMulOutput out{&w, y};
  RunMatMuls(x, m, std::span<const MatMulOutput>(&out, 1));
}

void Ops::MatMulShared(const float* x, int64_t m, std::span<const MatMulOutput> outputs) {
  RunMatMuls(x, m, outputs);
}

// RunMatMuls quantises x once (if any weight is Q8) into the Ops' own
// buffer, then runs the prepared product.
void Ops::RunMatMuls(const float* x, int64_t m, std::span<const MatMulOutput> outputs) {
  if (m <= 0 || outputs.empty()) return;
  const int64_t k = outputs[0].w->k;
  bool any_q8 = false;
  for (const MatMulOutput& o : outputs) any_q8 |= o.w->wants_q8();
  RowsOut in;
  in.f32 = const_cast<float*>(x);  // read only: MatMulPrepared never writes its input
  if (any_q8) {
    const ActQ8 act = ReserveActivations(m, k);
    in.qs = act.qs;
    in.d = act.d;
    in.corr = act.corr;
    QuantizeTo(x, m, k, in);
  }
  MatMulPrepared(in, m, k, outputs);
}

// Threads take dynamic chunks of the concatenated 16-column panels of all
// outputs (an even number of panels each, the GEMM's 2-panel tile): every
// weight byte is read by one thread, and each chunk runs all m rows through
// the GEMM's row blocking (activation block in L2, weight strip in L1). An
// earlier row split (each thread all weights, its own rows) read the weights
// once per thread and balanced worse at m = 128 with 6-row tiles. Each output
// element is one fixed sequence of operations, so the split never changes a
// result.
void Ops::MatMulPrepared(const RowsOut& x, int64_t m, int64_t k, std::span<const MatMulOutput> outputs) {
  if (m <= 0 || outputs.empty()) return;
  int64_t total_panels = 0;
  for (const MatMulOutput& o : outputs) {
    GEMBED_DCHECK(o.w->k == k);
    GEMBED_DCHECK(o.w->wants_q8() ? x.has_q8() : x.f32 != nullptr);
    total_panels += o.w->panels;
  }
  const int64_t nb = k / kQ8BlockElems;
  const KernelTable& kt = *table_;
  const GemmQ8Fn gemm_q8 = m <= gemm_q8_small_m_max_ ? gemm_q8_small_ : gemm_q8_large_;

  // Rows [r0, r1) of every output, restricted to global panels [pb, pe).
  auto multiply = [&](int64_t r0, int64_t r1, int64_t pb, int64_t pe) {
    int64_t offset = 0;
    for (const MatMulOutput& o : outputs) {
      const PackedMatrix& w = *o.w;
      const int64_t lb = std::max<int64_t>(pb - offset, 0);
      const int64_t le = std::min<int64_t>(pe - offset, w.panels);
      offset += w.panels;
      if (lb >= le) continue;
      const int64_t col0 = lb * kPanelWidth;
      const int64_t ncols = std::min<int64_t>(le * kPanelWidth, w.n) - col0;
      float* y = o.y + r0 * w.n + col0;
      if (w.format == PackedFormat::kQ8Panels) {
        gemm_q8(r1 - r0, ncols, nb, x.qs + r0 * k, x.d + r0 * nb, x.corr + r0 * nb,
                   w.q8_qs() + lb * nb * kQ8PanelBlockBytes, w.q8_scales() + lb * nb * kPanelWidth,
                   y, w.n);
      } else if (w.format == PackedFormat::kQ4Panels) {
        const uint16_t* mins = w.q4_mins();
        kt.gemm_q4(r1 - r0, ncols, nb, x.qs + r0 * k, x.d + r0 * nb, x.corr + r0 * nb,
                   w.q4_qs() + lb * nb * kQ4PanelBlockBytes, w.q4_scales() + lb * nb * kPanelWidth,
                   mins != nullptr ? mins + lb * nb * kPanelWidth : nullptr, y, w.n);
      } else if (w.format == PackedFormat::kQ8SparsePanels) {
        kt.gemm_q8_sparse(r1 - r0, ncols, nb, x.qs + r0 * k, x.d + r0 * nb, x.corr + r0 * nb, w.sparse_qs(),
                          w.sparse_scales(), w.panel_ptr.data() + lb, w.blk.data(), y, w.n);
      } else {
        kt.gemm_f32(r1 - r0, ncols, k, x.f32 + r0 * k, k, w.f32_panels() + lb * kPanelWidth * k,
                    kPanelWidth, kPanelWidth * k, y, w.n);
      }
    }
  };

  const int threads = pool_->size();
  if (threads == 1 || m * k * total_panels * kPanelWidth < kMinParallelWork) {
    multiply(0, m, 0, total_panels);
    return;
  }
  const int64_t chunks = std::min<int64_t>(CeilDiv(total_panels, 2), threads * ThreadPool::kChunksPerThread);
  // Even panel boundaries (the last chunk ends at total_panels).
  auto bound = [&](int64_t c) { return c >= chunks ? total_panels : total_panels * c / chunks / 2 * 2; };
  pool_->ParallelChunks(chunks, [&](int64_t c, int) {
    const int64_t pb = bound(c), pe = bound(c + 1);
    if (pb < pe) multiply(0, m, pb, pe);
  });
}

// ---------------------------------------------------------------------------
// Norms and element-wise ops

void Ops::RmsNorm(const float* x, int64_t m, int64_t d, const float* gamma, float eps, float* out) {
  const KernelTable& kt = *table_;
  auto body = [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) kt.rmsnorm_row(x + i * d, d, gamma, eps, out + i * d);
  };
  ParallelRun(*pool_, m, GrainFor(d * 4), body);
}

void Ops::RmsNormAdd(const float* y, int64_t m, int64_t d, const float* gamma, float eps, float* x) {
  const KernelTable& kt = *table_;
  auto body = [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) kt.rmsnorm_add_row(y + i * d, d, gamma, eps, x + i * d);
  };
  ParallelRun(*pool_, m, GrainFor(d * 4), body);
}

void Ops::HeadRmsNorm(float* x, int64_t m, int64_t heads, int64_t dh, const float* gamma,
                      float eps) {
  RmsNorm(x, m * heads, dh, gamma, eps, x);
}

void Ops::GeGlu(const float* gate, const float* up, int64_t n, float* out) {
  const KernelTable& kt = *table_;
  auto body = [&](int64_t b, int64_t e, int) { kt.geglu(gate + b, up + b, e - b, out + b); };
  ParallelRun(*pool_, n, GrainFor(16), body);
}

void Ops::Add(const float* a, const float* b, int64_t n, float* out) {
  const KernelTable& kt = *table_;
  auto body = [&](int64_t s, int64_t e, int) { kt.add(a + s, b + s, e - s, out + s); };
  ParallelRun(*pool_, n, kMinParallelWork, body);
}

void Ops::Scale(float* x, int64_t n, float s) {
  const KernelTable& kt = *table_;
  auto body = [&](int64_t b, int64_t e, int) { kt.scale(x + b, e - b, s, x + b); };
  ParallelRun(*pool_, n, kMinParallelWork, body);
}

void Ops::L2Normalize(float* x, int64_t rows, int64_t d) {
  const KernelTable& kt = *table_;
  auto body = [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) kt.l2_normalize_row(x + i * d, d);
  };
  ParallelRun(*pool_, rows, GrainFor(d * 4), body);
}

Status Ops::MeanPool(const float* x, int64_t d, std::span<const int32_t> cu_seqlens, float* out) {
  GEMBED_RETURN_IF_ERROR(ValidateSeqlens(cu_seqlens, -1));
  const int64_t n_seqs = static_cast<int64_t>(cu_seqlens.size()) - 1;
  const int64_t t_total = cu_seqlens.back();
  for (AlignedBuffer& s : thread_scratch_)
    GEMBED_CHECK(s.Reserve(static_cast<size_t>(d) * sizeof(double)));
  // Threads split the feature columns; each column is summed in token order
  // in double, so the split does not change the result.
  auto body = [&](int64_t c0, int64_t c1, int th) {
    double* acc = thread_scratch_[static_cast<size_t>(th)].as<double>();
    for (int64_t s = 0; s < n_seqs; ++s) {
      const int64_t begin = cu_seqlens[static_cast<size_t>(s)];
      const int64_t end = cu_seqlens[static_cast<size_t>(s) + 1];
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] = 0.0;
      for (int64_t t = begin; t < end; ++t) {
        const float* row = x + t * d;
        for (int64_t c = c0; c < c1; ++c) acc[c - c0] += row[c];
      }
      const double inv = end > begin ? 1.0 / static_cast<double>(end - begin) : 0.0;
      for (int64_t c = c0; c < c1; ++c) out[s * d + c] = static_cast<float>(acc[c - c0] * inv);
    }
  };
  ParallelRun(*pool_, d, std::max<int64_t>(16, GrainFor(std::max<int64_t>(1, t_total))), body);
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Fused row ops: each row's fp32 result goes to out.f32 (or a per-thread L1
// row buffer) and is quantised from there, in one parallel pass.

void Ops::ReserveRowScratch(int64_t floats) {
  if (row_scratch_.size() != static_cast<size_t>(pool_->size()))
    row_scratch_.resize(static_cast<size_t>(pool_->size()));
  for (AlignedBuffer& b : row_scratch_) GEMBED_CHECK(b.Reserve(static_cast<size_t>(floats) * sizeof(float)));
}

void Ops::RmsNormTo(const float* x, int64_t m, int64_t d, const float* gamma, float eps,
                    const RowsOut& out) {
  const KernelTable& kt = *table_;
  const int64_t nb = d / kQ8BlockElems;
  if (out.f32 == nullptr) ReserveRowScratch(d);
  auto body = [&](int64_t b, int64_t e, int th) {
    for (int64_t i = b; i < e; ++i) {
      float* row = out.f32 != nullptr ? out.f32 + i * d : RowScratch(th);
      kt.rmsnorm_row(x + i * d, d, gamma, eps, row);
      if (out.has_q8()) kt.quantize_row_q8(row, d, out.qs + i * d, out.d + i * nb, out.corr + i * nb);
    }
  };
  ParallelRun(*pool_, m, GrainFor(d * 8), body);
}

void Ops::AddRmsNormTo(const float* y, float* x, int64_t m, int64_t d, const float* gamma_add,
                       const float* gamma_next, float eps, const RowsOut& out) {
  const KernelTable& kt = *table_;
  const int64_t nb = d / kQ8BlockElems;
  if (gamma_next != nullptr && out.f32 == nullptr) ReserveRowScratch(d);
  auto body = [&](int64_t b, int64_t e, int th) {
    for (int64_t i = b; i < e; ++i) {
      kt.rmsnorm_add_row(y + i * d, d, gamma_add, eps, x + i * d);
      if (gamma_next == nullptr) continue;
      float* row = out.f32 != nullptr ? out.f32 + i * d : RowScratch(th);
      kt.rmsnorm_row(x + i * d, d, gamma_next, eps, row);
      if (out.has_q8()) kt.quantize_row_q8(row, d, out.qs + i * d, out.d + i * nb, out.corr + i * nb);
    }
  };
  ParallelRun(*pool_, m, GrainFor(d * 12), body);
}

void Ops::GeGluTo(const float* gate, const float* up, int64_t m, int64_t n, const RowsOut& out) {
  const KernelTable& kt = *table_;
  const int64_t nb = n / kQ8BlockElems;
  if (out.f32 == nullptr) ReserveRowScratch(n);
  auto body = [&](int64_t b, int64_t e, int th) {
    for (int64_t i = b; i < e; ++i) {
      float* row = out.f32 != nullptr ? out.f32 + i * n : RowScratch(th);
      kt.geglu(gate + i * n, up + i * n, n, row);
      if (out.has_q8()) kt.quantize_row_q8(row, n, out.qs + i * n, out.d + i * nb, out.corr + i * nb);
    }
  };
  ParallelRun(*pool_, m, GrainFor(n * 16), body);
}

void Ops::QuantizeTo(const float* x, int64_t m, int64_t k, const RowsOut& out) {
  if (!out.has_q8()) return;
  const KernelTable& kt = *table_;
  const int64_t nb = k / kQ8BlockElems;
  auto body = [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i)
      kt.quantize_row_q8(x + i * k, k, out.qs + i * k, out.d + i * nb, out.corr + i * nb);
  };
  ParallelRun(*pool_, m, GrainFor(k * 4), body);
}

// ---------------------------------------------------------------------------
// RoPE

namespace {
// NeoX RoPE angles of position p: cs[i] = cos(p * base^(-2i/dh)), sn[i] =
// sin(...), i < dh/2, in double precision rounded once to float. The one
// definition of the angles: the cached table and positions beyond it.
void RopeAngles(double base, int64_t dh, int64_t p, float* cs, float* sn) {
  for (int64_t i = 0; i < dh / 2; ++i) {
    const double theta =
        static_cast<double>(p) * std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(dh));
    cs[i] = static_cast<float>(std::cos(theta));
    sn[i] = static_cast<float>(std::sin(theta));
  }
}

// The positions of a RoPE call: one per token, none negative.
Status CheckRopeArgs(const char* op, std::span<const int32_t> positions, int64_t m, int64_t dh) {
  if (static_cast<int64_t>(positions.size()) != m)
    return InvalidArgument("{}: {} positions for {} tokens", op, positions.size(), m);
  if (dh <= 0 || dh % 2 != 0) return InvalidArgument("{}: head dim {} is not even", op, dh);
  for (size_t i = 0; i < positions.size(); ++i)
    if (positions[i] < 0) return InvalidArgument("{}: negative position {} at {}", op, positions[i], i);
  return Status::Ok();
}
}  // namespace

const Ops::RopeTable& Ops::GetRopeTable(float base, int64_t dh) {
  for (const RopeTable& t : rope_tables_)
    if (t.base == static_cast<double>(base) && t.dh == dh) return t;
  RopeTable t;
  t.base = base;
  t.dh = dh;
  const int64_t half = dh / 2;
  t.cos.resize(static_cast<size_t>(kRopeCachedPositions * half));
  t.sin.resize(t.cos.size());
  for (int64_t p = 0; p < kRopeCachedPositions; ++p) RopeAngles(t.base, dh, p, &t.cos[p * half], &t.sin[p * half]);
  rope_tables_.push_back(std::move(t));
  return rope_tables_.back();
}

const Ops::RopeTable& Ops::PrepareRope(float base, int64_t dh) {
  for (AlignedBuffer& s : thread_scratch_) GEMBED_CHECK(s.Reserve(static_cast<size_t>(dh) * sizeof(float)));
  return GetRopeTable(base, dh);
}

void Ops::RopeTable::At(int64_t p, float* tmp, const float** cs, const float** sn) const {
  const int64_t half = dh / 2;
  if (p < kRopeCachedPositions) {
    *cs = cos.data() + p * half;
    *sn = sin.data() + p * half;
  } else {  // beyond the cache: the same angles, computed here
    RopeAngles(base, dh, p, tmp, tmp + half);
    *cs = tmp;
    *sn = tmp + half;
  }
}

Status Ops::RopeNeox(float* x, int64_t m, int64_t heads, int64_t dh,
                     std::span<const int32_t> positions, float base) {
  GEMBED_RETURN_IF_ERROR(CheckRopeArgs("RopeNeox", positions, m, dh));
  const RopeTable& rt = PrepareRope(base, dh);
  const KernelTable& kt = *table_;
  auto body = [&](int64_t b, int64_t e, int th) {
    float* tmp = thread_scratch_[static_cast<size_t>(th)].as<float>();
    for (int64_t t = b; t < e; ++t) {
      const float* cs;
      const float* sn;
      rt.At(positions[static_cast<size_t>(t)], tmp, &cs, &sn);
      kt.rope_neox_row(x + t * heads * dh, heads, dh, cs, sn);
    }
  };
  ParallelRun(*pool_, m, GrainFor(heads * dh * 2), body);
  return Status::Ok();
}

Status Ops::QkNormRope(float* q, float* k, int64_t m, int64_t hq, int64_t hkv, int64_t dh,
                       const float* gq, const float* gk, float eps, std::span<const int32_t> positions,
                       float base) {
  GEMBED_RETURN_IF_ERROR(CheckRopeArgs("QkNormRope", positions, m, dh));
  const RopeTable& rt = PrepareRope(base, dh);
  const KernelTable& kt = *table_;
  auto body = [&](int64_t b, int64_t e, int th) {
    float* tmp = thread_scratch_[static_cast<size_t>(th)].as<float>();
    for (int64_t t = b; t < e; ++t) {
      float* qt = q + t * hq * dh;
      float* kt_row = k + t * hkv * dh;
      for (int64_t h = 0; h < hq; ++h) kt.rmsnorm_row(qt + h * dh, dh, gq, eps, qt + h * dh);
      for (int64_t h = 0; h < hkv; ++h) kt.rmsnorm_row(kt_row + h * dh, dh, gk, eps, kt_row + h * dh);
      const float* cs;
      const float* sn;
      rt.At(positions[static_cast<size_t>(t)], tmp, &cs, &sn);
      kt.rope_neox_row(qt, hq, dh, cs, sn);
      kt.rope_neox_row(kt_row, hkv, dh, cs, sn);
    }
  };
  ParallelRun(*pool_, m, GrainFor((hq + hkv) * dh * 6), body);
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Attention
//
// Phase 1 packs K^T of every (kv head, sequence) into 16-key panels
// [head_dim][16] (zero-padded past the sequence end), so Q.K^T is a gemm_f32
// against panels, and V into 16-column panels [T][16] for P.V. Phase 2 hands out (sequence, head row group, query block)
// items dynamically; each item computes its score tile S [rows x keys] over
// the key range its window can reach (panel-aligned), the masked softmax row
// by row, and O = P.V reading V rows in place, then divides by the row sums.
//
// Row groups: with one KV head (EmbeddingGemma: 3 query heads share it), the
// q rows of all heads of a token are adjacent ([T x heads x dh]), so the rows
// (query i, head j) of a block form ONE matrix with row stride dh: a single
// item multiplies heads x queries rows against the shared K^T / V, reading
// each key once for all heads. With several KV heads an item is one head.
// Items write disjoint output rows and do not depend on which thread runs
// them, so results do not depend on the thread count.

Status Ops::Attention(const float* q, const float* k, const float* v, int64_t t,
                      std::span<const int32_t> cu_seqlens, int64_t n_heads, int64_t n_kv_heads,
                      int64_t head_dim, int64_t window, float scale, float* out,
                      const RowsOut* out_q8) {
  GEMBED_RETURN_IF_ERROR(ValidateSeqlens(cu_seqlens, t));
  if (n_heads <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0 || head_dim <= 0)
    return InvalidArgument("Attention: bad head configuration {} q heads / {} kv heads / dim {}",
                           n_heads, n_kv_heads, head_dim);
  const int64_t n_seqs = static_cast<int64_t>(cu_seqlens.size()) - 1;
  if (n_seqs == 0 || t == 0) return Status::Ok();
  const int64_t group = n_heads / n_kv_heads;
  const int64_t q_stride = n_heads * head_dim, kv_stride = n_kv_heads * head_dim;
  // Heads per item (R) and the row stride inside an item's q / out matrix.
  const int64_t rows_per_query = n_kv_heads == 1 ? n_heads : 1;
  const int64_t row_stride = n_kv_heads == 1 ? head_dim : q_stride;
  const int64_t head_groups = n_heads / rows_per_query;
  // Queries per item (a multiple of 8, the fp32 GEMM's row tile).
  const int64_t q_block = std::max<int64_t>(8, kAttnItemRows / rows_per_query / 8 * 8);
  const int64_t max_rows = q_block * rows_per_query;

  // Panel and item prefix sums (reused vectors: no steady-state allocation).
  seq_panel_base_.resize(static_cast<size_t>(n_seqs) + 1);
  seq_item_base_.resize(static_cast<size_t>(n_seqs) + 1);
  seq_panel_base_[0] = 0;
  seq_item_base_[0] = 0;
  int64_t max_len = 0;
  for (int64_t s = 0; s < n_seqs; ++s) {
    const int64_t len = cu_seqlens[static_cast<size_t>(s) + 1] - cu_seqlens[static_cast<size_t>(s)];
    max_len = std::max(max_len, len);
    seq_panel_base_[static_cast<size_t>(s) + 1] = seq_panel_base_[static_cast<size_t>(s)] + CeilDiv(len, kPanelWidth);
    seq_item_base_[static_cast<size_t>(s) + 1] =
        seq_item_base_[static_cast<size_t>(s)] + head_groups * CeilDiv(len, q_block);
  }
  // A window as wide as the longest sequence masks nothing: treat it as
  // global (this also keeps p + window from overflowing for huge windows).
  if (window >= max_len) window = -1;
  const int64_t total_panels = seq_panel_base_.back();
  const int64_t total_items = seq_item_base_.back();
  const size_t panel_floats = static_cast<size_t>(kPanelWidth * head_dim);
  GEMBED_CHECK(kt_panels_.Reserve(static_cast<size_t>(n_kv_heads * total_panels) * panel_floats * sizeof(float)));
  float* kt_all = kt_panels_.as<float>();
  // V in 16-column panels, token-major: vp[(g * v_panels + c) * t + key][16].
  // P.V then reads 64 contiguous bytes per key and panel; reading V rows in
  // place strided by the row width (1 KiB) mapped every key of a panel to
  // the same few L1 sets and missed L1 on nearly every load.
  const int64_t v_panels = CeilDiv(head_dim, kPanelWidth);
  GEMBED_CHECK(v_panels_.Reserve(static_cast<size_t>(n_kv_heads * v_panels * t * kPanelWidth) * sizeof(float)));
  float* vp_all = v_panels_.as<float>();

  // Phase 1: K^T panels. Unit = (kv head, global panel).
  auto pack = [&](int64_t ub, int64_t ue, int) {
    for (int64_t u = ub; u < ue; ++u) {
      const int64_t g = u / total_panels, gp = u % total_panels;
      const int64_t s = std::upper_bound(seq_panel_base_.begin(), seq_panel_base_.end(), gp) -
                        seq_panel_base_.begin() - 1;
      const int64_t begin = cu_seqlens[static_cast<size_t>(s)];
      const int64_t end = cu_seqlens[static_cast<size_t>(s) + 1];
      const int64_t key0 = begin + (gp - seq_panel_base_[static_cast<size_t>(s)]) * kPanelWidth;
      float* dst = kt_all + static_cast<size_t>(g * total_panels + gp) * panel_floats;
      for (int64_t jj = 0; jj < kPanelWidth; ++jj) {
        const int64_t key = key0 + jj;
        if (key >= end) {
          for (int64_t c = 0; c < head_dim; ++c) dst[c * kPanelWidth + jj] = 0.0f;
          continue;
        }
        const float* src = k + key * kv_stride + g * head_dim;
        for (int64_t c = 0; c < head_dim; ++c) dst[c * kPanelWidth + jj] = src[c];
        const float* vsrc = v + key * kv_stride + g * head_dim;
        for (int64_t c = 0; c < v_panels; ++c) {
          float* vdst = vp_all + ((g * v_panels + c) * t + key) * kPanelWidth;
          const int64_t cols = std::min<int64_t>(kPanelWidth, head_dim - c * kPanelWidth);
          std::memcpy(vdst, vsrc + c * kPanelWidth, static_cast<size_t>(cols) * sizeof(float));
          for (int64_t j = cols; j < kPanelWidth; ++j) vdst[j] = 0.0f;
        }
      }
    }
  };
  // Packing is a copy: for short batches it costs less than a round trip
  // through the pool, so it runs on the caller.
  const int64_t pack_units = n_kv_heads * total_panels;
  if (pack_units * kPanelWidth * head_dim <= kSerialPackFloats) {
    pack(0, pack_units, 0);
  } else {
    ParallelRun(*pool_, pack_units, GrainFor(head_dim * kPanelWidth), pack);
  }

  // Phase 2: score tiles.
  const int64_t max_keys = window < 0 ? max_len
                                      : std::min<int64_t>(max_len, q_block + 2 * window + kPanelWidth);
  const size_t scratch_floats = static_cast<size_t>(max_rows * (max_keys + kPanelWidth) + max_rows);
  for (AlignedBuffer& sb : thread_scratch_) GEMBED_CHECK(sb.Reserve(scratch_floats * sizeof(float)));
  const KernelTable& kt = *table_;
  const bool want_q8 = out_q8 != nullptr && out_q8->has_q8();
  const bool quantise_in_items = want_q8 && rows_per_query == n_heads;
  auto work = [&](int64_t item, int th) {
    float* scores = thread_scratch_[static_cast<size_t>(th)].as<float>();
    float* inv_sum = scores + max_rows * (max_keys + kPanelWidth);
    const int64_t s = std::upper_bound(seq_item_base_.begin(), seq_item_base_.end(), item) -
                      seq_item_base_.begin() - 1;
    const int64_t begin = cu_seqlens[static_cast<size_t>(s)];
    const int64_t len = cu_seqlens[static_cast<size_t>(s) + 1] - begin;
    const int64_t local = item - seq_item_base_[static_cast<size_t>(s)];
    const int64_t n_qblocks = CeilDiv(len, q_block);
    const int64_t hg = local / n_qblocks, qb = local % n_qblocks;
    const int64_t h0 = hg * rows_per_query;  // first query head of the item
    const int64_t g = h0 / group;             // its kv head
    const int64_t q0 = qb * q_block;          // positions within the sequence
    const int64_t q1 = std::min(len, q0 + q_block);
    int64_t k_lo = 0, k_hi = len;
    if (window >= 0) {
      k_lo = std::max<int64_t>(0, q0 - window);
      k_hi = std::min<int64_t>(len, q1 - 1 + window + 1);
    }
    k_lo = k_lo / kPanelWidth * kPanelWidth;  // panel-aligned start
    const int64_t nk = k_hi - k_lo;
    const int64_t rows = (q1 - q0) * rows_per_query;
    const float* kt_panels =
        kt_all + static_cast<size_t>(g * total_panels + seq_panel_base_[static_cast<size_t>(s)] +
                                     k_lo / kPanelWidth) *
                     panel_floats;
    // S [rows x nk] = Q_item . K^T; row r is query q0 + r / R, head h0 + r % R.
    kt.gemm_f32(rows, nk, head_dim, q + (begin + q0) * q_stride + h0 * head_dim, row_stride, kt_panels,
                kPanelWidth, kPanelWidth * head_dim, scores, nk);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t p = q0 + r / rows_per_query;
      int64_t lo = 0, hi = nk;
      if (window >= 0) {
        lo = std::max<int64_t>(k_lo, p - window) - k_lo;
        hi = std::min<int64_t>(k_hi, p + window + 1) - k_lo;
      }
      const float sum = kt.softmax_row(scores + r * nk, nk, lo, hi, scale);
      inv_sum[r] = 1.0f / sum;
    }
    // O [rows x head_dim] = P . V against the V panels (keys k_lo.. of this sequence).
    float* o = out + (begin + q0) * q_stride + h0 * head_dim;
    kt.gemm_f32(rows, head_dim, nk, scores, nk, vp_all + (g * v_panels * t + begin + k_lo) * kPanelWidth,
                kPanelWidth, t * kPanelWidth, o, row_stride);
    for (int64_t r = 0; r < rows; ++r) kt.scale(o + r * row_stride, head_dim, inv_sum[r], o + r * row_stride);
    if (quantise_in_items) {  // the item wrote whole token rows: hand them over as Q8
      const int64_t nbq = q_stride / kQ8BlockElems;
      for (int64_t tok = begin + q0; tok < begin + q1; ++tok)
        kt.quantize_row_q8(out + tok * q_stride, q_stride, out_q8->qs + tok * q_stride, out_q8->d + tok * nbq,
                           out_q8->corr + tok * nbq);
    }
  };
  if (total_items == 1 || t * max_keys * head_dim * rows_per_query < kMinParallelWork) {
    for (int64_t item = 0; item < total_items; ++item) work(item, 0);
  } else {
    pool_->ParallelChunks(total_items, work);
  }
  if (want_q8 && !quantise_in_items) QuantizeTo(out, t, q_stride, *out_q8);
  return Status::Ok();
}

}  // namespace gembed
