// Tests for the performance paths added on top of the basic Ops: the
// high-precision packing (Q8_0 widened to fp32 panels), parallel packing,
// the fused row ops (norm / residual / GeGLU straight into the next
// MatMul's Q8 input), MatMulPrepared and QkNormRope. Each fused path must be
// bit-identical to the unfused sequence of existing ops on every ISA level
// the host supports, and to itself across thread counts; the widened Q8_0
// product must equal the product with the exactly dequantised fp32 weight.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/half.h"
#include "base/thread_pool.h"
#include "kernels/aligned_buffer.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"
#include "kernels/reference.h"

namespace gembed {
namespace {

std::vector<float> Normal(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng) * scale;
  return v;
}

bool SameBits(const float* a, const float* b, size_t n, std::string* where) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t x, y;
    std::memcpy(&x, a + i, 4);
    std::memcpy(&y, b + i, 4);
    if (x != y) {
      *where = "element " + std::to_string(i) + ": " + std::to_string(a[i]) + " vs " + std::to_string(b[i]);
      return false;
    }
  }
  return true;
}

// A Q8_0 matrix [n x k] and the F32 matrix of its exact values d * q.
struct Q8Pair {
  int64_t k, n;
  std::vector<BlockQ8_0> blocks;
  std::vector<float> dequant;
  TensorView q8_view() const {
    TensorView v;
    v.dtype = DType::kQ8_0;
    v.n_dims = 2;
    v.ne = {k, n, 1, 1};
    v.data = blocks.data();
    v.nbytes = blocks.size() * sizeof(BlockQ8_0);
    return v;
  }
  TensorView f32_view() const {
    TensorView v;
    v.dtype = DType::kF32;
    v.n_dims = 2;
    v.ne = {k, n, 1, 1};
    v.data = dequant.data();
    v.nbytes = dequant.size() * sizeof(float);
    return v;
  }
};

Q8Pair MakeQ8(int64_t k, int64_t n, uint64_t seed) {
  Q8Pair p{k, n, std::vector<BlockQ8_0>(static_cast<size_t>(k * n / 32)), std::vector<float>(static_cast<size_t>(k * n))};
  std::vector<float> f = Normal(static_cast<size_t>(k * n), seed);
  if (!f.empty()) f[0] = -1e3f;  // a block whose quantised extreme is -127
  for (int64_t r = 0; r < n; ++r) reference::QuantizeRowQ8_0(f.data() + r * k, k, p.blocks.data() + r * (k / 32));
  for (size_t b = 0; b < p.blocks.size(); ++b)
    for (int t = 0; t < 32; ++t) p.dequant[b * 32 + t] = F16ToF32(p.blocks[b].d) * static_cast<float>(p.blocks[b].qs[t]);
  return p;
}

class FusedTest : public ::testing::TestWithParam<Isa> {
 protected:
  const KernelTable& table() const { return GetKernelTable(GetParam()); }
};

std::string ParamName(const ::testing::TestParamInfo<Isa>& info) { return std::string(IsaName(info.param)); }

// ---- packing -------------------------------------------------------------------

TEST(PackWiden, WidenedQ8EqualsPackedDequantisedF32) {
  for (auto [k, n] : std::vector<std::pair<int64_t, int64_t>>{{32, 1}, {64, 17}, {768, 256}, {1152, 33}}) {
    const Q8Pair w = MakeQ8(k, n, static_cast<uint64_t>(k * 31 + n));
    PackOptions widen;
    widen.widen_q8 = true;
    Result<PackedMatrix> a = PackMatrix(w.q8_view(), widen);
    Result<PackedMatrix> b = PackMatrix(w.f32_view());
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->format, PackedFormat::kF32Panels);
    EXPECT_EQ(a->source_dtype, DType::kQ8_0);
    ASSERT_EQ(a->packed_bytes(), b->packed_bytes());
    EXPECT_EQ(std::memcmp(a->bytes(), b->bytes(), a->packed_bytes()), 0) << k << "x" << n;
    // Without the option Q8_0 keeps its int8 panels.
    Result<PackedMatrix> c = PackMatrix(w.q8_view());
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->format, PackedFormat::kQ8Panels);
  }
}

TEST(PackWiden, ParallelPackingIsByteIdentical) {
  const Q8Pair w = MakeQ8(768, 1152 + 5, 9);
  ThreadPool p2(2), p3(3);
  for (bool widen : {false, true}) {
    PackOptions o;
    o.widen_q8 = widen;
    Result<PackedMatrix> serial = PackMatrix(w.q8_view(), o);
    ASSERT_TRUE(serial.ok());
    for (ThreadPool* pool : {&p2, &p3}) {
      Result<PackedMatrix> par = PackMatrix(w.q8_view(), o, pool);
      ASSERT_TRUE(par.ok());
      ASSERT_EQ(par->packed_bytes(), serial->packed_bytes());
      EXPECT_EQ(std::memcmp(par->bytes(), serial->bytes(), serial->packed_bytes()), 0)
          << "widen " << widen << " threads " << pool->size();
    }
  }
  Result<PackedMatrix> fs = PackMatrix(w.f32_view()), fp = PackMatrix(w.f32_view(), {}, &p3);
  ASSERT_TRUE(fs.ok() && fp.ok());
  EXPECT_EQ(std::memcmp(fs->bytes(), fp->bytes(), fs->packed_bytes()), 0);
}

// Packing into caller storage (a model's weight arena) gives the same bytes
// as an owned packing, of exactly PackedSize bytes.
TEST(PackWiden, PackIntoStorageEqualsOwned) {
  const Q8Pair w = MakeQ8(1152, 100, 4);
  for (bool widen : {false, true}) {
    PackOptions o;
    o.widen_q8 = widen;
    Result<PackedMatrix> owned = PackMatrix(w.q8_view(), o);
    ASSERT_TRUE(owned.ok());
    const size_t size = PackedSize(w.q8_view(), o);
    ASSERT_EQ(size, owned->packed_bytes());
    AlignedBuffer arena;
    ASSERT_TRUE(arena.Reserve(size + 64));
    std::memset(arena.data(), 0xEE, arena.size());
    Result<PackedMatrix> in = PackMatrix(w.q8_view(), o, nullptr, arena.data());
    ASSERT_TRUE(in.ok());
    EXPECT_EQ(in->bytes(), arena.data());
    EXPECT_EQ(in->owned.size(), 0u);
    EXPECT_EQ(std::memcmp(in->bytes(), owned->bytes(), size), 0);
    EXPECT_EQ(arena.data()[size], 0xEE) << "wrote past PackedSize";
  }
  TensorView bad;
  EXPECT_EQ(PackedSize(bad), 0u);
}

// The high-precision product: widened Q8_0 x fp32 activations equals the
// fp32 product with the dequantised weight bit for bit, on every ISA, and is
// within fp32 rounding of the exact (float64) product.
TEST_P(FusedTest, WidenedQ8MatMulEqualsF32AndFloat64) {
  ThreadPool pool(2);
  Ops ops(table(), pool);
  PackOptions widen;
  widen.widen_q8 = true;
  for (auto [k, n] : std::vector<std::pair<int64_t, int64_t>>{{64, 17}, {768, 256}, {1152, 768}}) {
    const Q8Pair w = MakeQ8(k, n, static_cast<uint64_t>(k + n));
    Result<PackedMatrix> pw = PackMatrix(w.q8_view(), widen), pf = PackMatrix(w.f32_view());
    ASSERT_TRUE(pw.ok() && pf.ok());
    for (int64_t m : {1, 5, 70}) {
      const std::vector<float> x = Normal(static_cast<size_t>(m * k), static_cast<uint64_t>(m * 7 + k));
      std::vector<float> y1(static_cast<size_t>(m * n)), y2(y1.size());
      ops.MatMul(*pw, x.data(), m, y1.data());
      ops.MatMul(*pf, x.data(), m, y2.data());
      std::string where;
      ASSERT_TRUE(SameBits(y1.data(), y2.data(), y1.size(), &where)) << k << "x" << n << " m " << m << " " << where;
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double exact = 0, mag = 0;
          for (int64_t kk = 0; kk < k; ++kk) {
            const double t = static_cast<double>(x[static_cast<size_t>(i * k + kk)]) * w.dequant[static_cast<size_t>(j * k + kk)];
            exact += t;
            mag += std::fabs(t);
          }
          ASSERT_LE(std::fabs(y1[static_cast<size_t>(i * n + j)] - exact), (k + 2) * std::ldexp(1.0, -24) * mag + 1e-30)
              << "row " << i << " col " << j;
        }
      }
    }
  }
}

// ---- fused row ops -----------------------------------------------------------------

struct Q8Buf {
  std::vector<int8_t> qs;
  std::vector<float> d;
  std::vector<int32_t> corr;
  Q8Buf(int64_t m, int64_t k)
      : qs(static_cast<size_t>(m * k)), d(static_cast<size_t>(m * k / 32)), corr(static_cast<size_t>(m * k / 32)) {}
  RowsOut rows(float* f32 = nullptr) {
    RowsOut r;
    r.f32 = f32;
    r.qs = qs.data();
    r.d = d.data();
    r.corr = corr.data();
    return r;
  }
  bool operator==(const Q8Buf& o) const {
    return qs == o.qs && corr == o.corr && std::memcmp(d.data(), o.d.data(), d.size() * 4) == 0;
  }
};

// The Q8 form of fp32 rows as the unfused path makes it (quantize_row_q8).
Q8Buf QuantizeRows(const KernelTable& kt, const std::vector<float>& x, int64_t m, int64_t k) {
  Q8Buf q(m, k);
  for (int64_t i = 0; i < m; ++i)
    kt.quantize_row_q8(x.data() + i * k, k, q.qs.data() + i * k, q.d.data() + i * (k / 32), q.corr.data() + i * (k / 32));
  return q;
}

TEST_P(FusedTest, RowOpsEqualUnfusedSequence) {
  const KernelTable& kt = table();
  const float eps = 1e-6f;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    Ops ops(kt, pool);
    for (int64_t m : {1, 3, 40, 300}) {
      for (int64_t d : {32, 768, 1152}) {
        const std::string what = "threads " + std::to_string(threads) + " m " + std::to_string(m) + " d " + std::to_string(d);
        const std::vector<float> x0 = Normal(static_cast<size_t>(m * d), static_cast<uint64_t>(m + d), 3.0f);
        const std::vector<float> y = Normal(static_cast<size_t>(m * d), static_cast<uint64_t>(m + 2 * d), 50.0f);
        const std::vector<float> g1 = Normal(static_cast<size_t>(d), 5), g2 = Normal(static_cast<size_t>(d), 6);
        std::string where;

        // RmsNormTo: f32 and q8 forms, and q8 alone.
        std::vector<float> want(x0.size());
        ops.RmsNorm(x0.data(), m, d, g1.data(), eps, want.data());
        const Q8Buf want_q = QuantizeRows(kt, want, m, d);
        std::vector<float> got(x0.size());
        Q8Buf got_q(m, d), got_q_only(m, d);
        ops.RmsNormTo(x0.data(), m, d, g1.data(), eps, got_q.rows(got.data()));
        ops.RmsNormTo(x0.data(), m, d, g1.data(), eps, got_q_only.rows());
        ASSERT_TRUE(SameBits(got.data(), want.data(), got.size(), &where)) << "RmsNormTo " << what << " " << where;
        EXPECT_TRUE(got_q == want_q) << "RmsNormTo q8 " << what;
        EXPECT_TRUE(got_q_only == want_q) << "RmsNormTo q8 only " << what;

        // AddRmsNormTo = RmsNormAdd then RmsNorm (+ quantise).
        std::vector<float> xa = x0, xb = x0, xc = x0;
        ops.RmsNormAdd(y.data(), m, d, g1.data(), eps, xa.data());
        std::vector<float> h(x0.size());
        ops.RmsNorm(xa.data(), m, d, g2.data(), eps, h.data());
        const Q8Buf h_q = QuantizeRows(kt, h, m, d);
        std::vector<float> got_h(x0.size());
        Q8Buf got_hq(m, d), got_hq_only(m, d);
        ops.AddRmsNormTo(y.data(), xb.data(), m, d, g1.data(), g2.data(), eps, got_hq.rows(got_h.data()));
        ops.AddRmsNormTo(y.data(), xc.data(), m, d, g1.data(), g2.data(), eps, got_hq_only.rows());
        ASSERT_TRUE(SameBits(xb.data(), xa.data(), xa.size(), &where)) << "AddRmsNormTo x " << what << " " << where;
        ASSERT_TRUE(SameBits(xc.data(), xa.data(), xa.size(), &where)) << "AddRmsNormTo x (q8 only) " << what;
        ASSERT_TRUE(SameBits(got_h.data(), h.data(), h.size(), &where)) << "AddRmsNormTo h " << what << " " << where;
        EXPECT_TRUE(got_hq == h_q) << "AddRmsNormTo q8 " << what;
        EXPECT_TRUE(got_hq_only == h_q) << "AddRmsNormTo q8 only " << what;
        // Without a next gain it is RmsNormAdd alone; in-place final norm.
        std::vector<float> xd = x0;
        ops.AddRmsNormTo(y.data(), xd.data(), m, d, g1.data(), nullptr, eps, RowsOut{});
        ASSERT_TRUE(SameBits(xd.data(), xa.data(), xa.size(), &where)) << "AddRmsNormTo no next " << what;
        std::vector<float> xe = x0;
        RowsOut in_place;
        in_place.f32 = xe.data();
        ops.AddRmsNormTo(y.data(), xe.data(), m, d, g1.data(), g2.data(), eps, in_place);
        ASSERT_TRUE(SameBits(xe.data(), h.data(), h.size(), &where)) << "AddRmsNormTo in place " << what;

        // GeGluTo = GeGlu (+ quantise), in place over gate too.
        std::vector<float> gg(x0.size());
        ops.GeGlu(x0.data(), y.data(), m * d, gg.data());
        const Q8Buf gg_q = QuantizeRows(kt, gg, m, d);
        std::vector<float> gate = x0;
        Q8Buf got_gq(m, d), got_gq_only(m, d);
        ops.GeGluTo(x0.data(), y.data(), m, d, got_gq_only.rows());
        ops.GeGluTo(gate.data(), y.data(), m, d, got_gq.rows(gate.data()));
        ASSERT_TRUE(SameBits(gate.data(), gg.data(), gg.size(), &where)) << "GeGluTo " << what << " " << where;
        EXPECT_TRUE(got_gq == gg_q) << "GeGluTo q8 " << what;
        EXPECT_TRUE(got_gq_only == gg_q) << "GeGluTo q8 only " << what;

        // QuantizeTo.
        Q8Buf qt(m, d);
        ops.QuantizeTo(x0.data(), m, d, qt.rows());
        EXPECT_TRUE(qt == QuantizeRows(kt, x0, m, d)) << "QuantizeTo " << what;
      }
    }
  }
}

// MatMulPrepared from fused-op outputs == MatMulShared on the fp32 rows,
// for Q8 and fp32 weights, row and panel splits, any thread count.
TEST_P(FusedTest, MatMulPreparedEqualsMatMulShared) {
  const KernelTable& kt = table();
  const Q8Pair wa = MakeQ8(768, 768, 1), wb = MakeQ8(768, 256, 2), wc = MakeQ8(768, 40, 3);
  Result<PackedMatrix> a = PackMatrix(wa.q8_view()), b = PackMatrix(wb.q8_view()), c = PackMatrix(wc.q8_view());
  Result<PackedMatrix> af = PackMatrix(wa.f32_view()), bf = PackMatrix(wb.f32_view());
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && af.ok() && bf.ok());
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    Ops ops(kt, pool);
    for (int64_t m : {1, 4, 12, 63, 64, 200}) {
      const std::vector<float> x = Normal(static_cast<size_t>(m * 768), static_cast<uint64_t>(m));
      Q8Buf q = QuantizeRows(kt, x, m, 768);
      RowsOut in = q.rows(const_cast<float*>(x.data()));
      std::vector<float> ya(static_cast<size_t>(m * 768)), yb(static_cast<size_t>(m * 256)), yc(static_cast<size_t>(m * 40));
      std::vector<float> za(ya.size()), zb(yb.size()), zc(yc.size());
      const MatMulOutput outs[] = {{&*a, ya.data()}, {&*b, yb.data()}, {&*c, yc.data()}};
      const MatMulOutput refs[] = {{&*a, za.data()}, {&*b, zb.data()}, {&*c, zc.data()}};
      ops.MatMulPrepared(in, m, 768, outs);
      ops.MatMulShared(x.data(), m, refs);
      std::string where;
      const std::string what = "threads " + std::to_string(threads) + " m " + std::to_string(m);
      ASSERT_TRUE(SameBits(ya.data(), za.data(), ya.size(), &where)) << what << " q " << where;
      ASSERT_TRUE(SameBits(yb.data(), zb.data(), yb.size(), &where)) << what << " k " << where;
      ASSERT_TRUE(SameBits(yc.data(), zc.data(), yc.size(), &where)) << what << " 40 " << where;
      // fp32 weights read the f32 rows.
      const MatMulOutput fouts[] = {{&*af, ya.data()}, {&*bf, yb.data()}};
      const MatMulOutput frefs[] = {{&*af, za.data()}, {&*bf, zb.data()}};
      RowsOut fin;
      fin.f32 = const_cast<float*>(x.data());
      ops.MatMulPrepared(fin, m, 768, fouts);
      ops.MatMulShared(x.data(), m, frefs);
      ASSERT_TRUE(SameBits(ya.data(), za.data(), ya.size(), &where)) << what << " f32 " << where;
      ASSERT_TRUE(SameBits(yb.data(), zb.data(), yb.size(), &where)) << what << " f32 " << where;
    }
  }
}

TEST_P(FusedTest, QkNormRopeEqualsHeadNormThenRope) {
  const KernelTable& kt = table();
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    Ops ops(kt, pool);
    for (auto [hq, hkv, dh] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{3, 1, 256}, {4, 2, 64}, {1, 1, 2}}) {
      for (const std::vector<int32_t>& pos : std::vector<std::vector<int32_t>>{
               {0}, {0, 1, 2, 3, 4, 5, 6}, {2047, 2048, 2049, 5000, 0}}) {
        const int64_t m = static_cast<int64_t>(pos.size());
        const std::vector<float> q0 = Normal(static_cast<size_t>(m * hq * dh), static_cast<uint64_t>(m + hq), 4.0f);
        const std::vector<float> k0 = Normal(static_cast<size_t>(m * hkv * dh), static_cast<uint64_t>(m + hkv + 9));
        const std::vector<float> gq = Normal(static_cast<size_t>(dh), 1), gk = Normal(static_cast<size_t>(dh), 2);
        for (float base : {10000.0f, 1000000.0f}) {
          std::vector<float> qa = q0, ka = k0, qb = q0, kb = k0;
          ops.HeadRmsNorm(qa.data(), m, hq, dh, gq.data(), 1e-6f);
          ops.HeadRmsNorm(ka.data(), m, hkv, dh, gk.data(), 1e-6f);
          ASSERT_TRUE(ops.RopeNeox(qa.data(), m, hq, dh, pos, base).ok());
          ASSERT_TRUE(ops.RopeNeox(ka.data(), m, hkv, dh, pos, base).ok());
          ASSERT_TRUE(ops.QkNormRope(qb.data(), kb.data(), m, hq, hkv, dh, gq.data(), gk.data(), 1e-6f, pos, base).ok());
          std::string where;
          ASSERT_TRUE(SameBits(qa.data(), qb.data(), qa.size(), &where)) << "q " << where;
          ASSERT_TRUE(SameBits(ka.data(), kb.data(), ka.size(), &where)) << "k " << where;
        }
      }
    }
    std::vector<float> q(8), k(8), g(4, 1.0f);
    const std::vector<int32_t> bad = {0, -1};
    EXPECT_EQ(ops.QkNormRope(q.data(), k.data(), 2, 1, 1, 4, g.data(), g.data(), 1e-6f, bad, 1e4f).code(),
              StatusCode::kInvalidArgument);
    const std::vector<int32_t> one = {0};
    EXPECT_EQ(ops.QkNormRope(q.data(), k.data(), 2, 1, 1, 4, g.data(), g.data(), 1e-6f, one, 1e4f).code(),
              StatusCode::kInvalidArgument);
  }
}

// Attention with several sequences, windows and GQA 3:1 is bit-identical
// for 1, 2 and 3 threads (items are claimed dynamically).
TEST_P(FusedTest, AttentionIsThreadCountInvariant) {
  const std::vector<int32_t> cu = {0, 1, 40, 340, 700};
  const int64_t t = cu.back(), hq = 3, dh = 256;
  const std::vector<float> q = Normal(static_cast<size_t>(t * hq * dh), 1), k = Normal(static_cast<size_t>(t * dh), 2),
                           v = Normal(static_cast<size_t>(t * dh), 3);
  for (int64_t window : {-1, 256, 7}) {
    std::vector<float> first;
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      Ops ops(table(), pool);
      std::vector<float> out(q.size());
      ASSERT_TRUE(ops.Attention(q.data(), k.data(), v.data(), t, cu, hq, 1, dh, window, 0.0625f, out.data()).ok());
      if (first.empty()) {
        first = out;
        continue;
      }
      std::string where;
      ASSERT_TRUE(SameBits(out.data(), first.data(), out.size(), &where)) << "window " << window << " threads " << threads << " " << where;
    }
  }
}

// Attention's optional Q8 output equals quantising its fp32 output
// afterwards, both when items cover whole rows (one KV head) and when a pass
// after the items does it (several KV heads).
TEST_P(FusedTest, AttentionQ8OutputEqualsQuantizeAfter) {
  const KernelTable& kt = table();
  for (auto [hq, hkv, dh] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{3, 1, 256}, {4, 2, 64}}) {
    const std::vector<int32_t> cu = {0, 3, 50, 120};
    const int64_t t = cu.back();
    const std::vector<float> q = Normal(static_cast<size_t>(t * hq * dh), 4), k = Normal(static_cast<size_t>(t * hkv * dh), 5),
                             v = Normal(static_cast<size_t>(t * hkv * dh), 6);
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      Ops ops(kt, pool);
      for (int64_t window : {-1, 5}) {
        std::vector<float> a(q.size()), b(q.size());
        ASSERT_TRUE(ops.Attention(q.data(), k.data(), v.data(), t, cu, hq, hkv, dh, window, 0.0625f, a.data()).ok());
        Q8Buf got(t, hq * dh);
        RowsOut o = got.rows(b.data());
        ASSERT_TRUE(ops.Attention(q.data(), k.data(), v.data(), t, cu, hq, hkv, dh, window, 0.0625f, b.data(), &o).ok());
        std::string where;
        ASSERT_TRUE(SameBits(a.data(), b.data(), a.size(), &where)) << where;
        EXPECT_TRUE(got == QuantizeRows(kt, a, t, hq * dh)) << "hkv " << hkv << " window " << window;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllSupportedIsas, FusedTest, ::testing::ValuesIn(SupportedIsas()), ParamName);

}  // namespace
}  // namespace gembed
