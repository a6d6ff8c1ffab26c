// The compressed-weight kernels (4-bit Q4_0 / Q4_1 GEMM, block-sparse Q8
// GEMM, Q4 embedding rows) on every supported ISA: bit-identical to the
// scalar references, and within a derived bound of a float64 evaluation of
// the same quantised operands. The quantisers follow ggml's rules, checked on
// hand-picked values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/half.h"
#include "base/thread_pool.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"
#include "kernels/reference.h"

namespace gembed {
namespace {

constexpr double kU = 1.0 / (1 << 24);

std::vector<float> Normal(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// A quantised weight [n x k] with its GGUF bytes and exact dequantised values.
struct QWeight {
  DType dt;
  int64_t k, n;
  std::vector<uint8_t> bytes;
  std::vector<double> values;
  TensorView view() const {
    TensorView v;
    v.dtype = dt;
    v.n_dims = 2;
    v.ne = {k, n, 1, 1};
    v.data = bytes.data();
    v.nbytes = bytes.size();
    return v;
  }
};

QWeight MakeQ(DType dt, int64_t k, int64_t n, uint64_t seed, double zero_tiles = 0.0) {
  std::vector<float> f = Normal(static_cast<size_t>(k * n), seed, 0.05f);
  if (zero_tiles > 0) {  // zero whole 16 x 32 tiles, seeded
    std::mt19937_64 rng(seed ^ 0x5151);
    std::uniform_real_distribution<double> u(0, 1);
    for (int64_t p = 0; p < (n + 15) / 16; ++p)
      for (int64_t b = 0; b < k / 32; ++b)
        if (u(rng) < zero_tiles)
          for (int64_t j = p * 16; j < std::min(n, p * 16 + 16); ++j)
            for (int64_t t = 0; t < 32; ++t) f[static_cast<size_t>(j * k + b * 32 + t)] = 0.0f;
  }
  QWeight w{dt, k, n, {}, std::vector<double>(f.size())};
  const int64_t nb = k / 32;
  if (dt == DType::kQ8_0) {
    std::vector<BlockQ8_0> blocks(static_cast<size_t>(n * nb));
    for (int64_t r = 0; r < n; ++r) reference::QuantizeRowQ8_0(f.data() + r * k, k, blocks.data() + r * nb);
    w.bytes.resize(blocks.size() * sizeof(BlockQ8_0));
    std::memcpy(w.bytes.data(), blocks.data(), w.bytes.size());
    for (size_t b = 0; b < blocks.size(); ++b)
      for (int t = 0; t < 32; ++t) w.values[b * 32 + t] = static_cast<double>(F16ToF32(blocks[b].d)) * blocks[b].qs[t];
  } else if (dt == DType::kQ4_0) {
    std::vector<BlockQ4_0> blocks(static_cast<size_t>(n * nb));
    for (int64_t r = 0; r < n; ++r) reference::QuantizeRowQ4_0(f.data() + r * k, k, blocks.data() + r * nb);
    w.bytes.resize(blocks.size() * sizeof(BlockQ4_0));
    std::memcpy(w.bytes.data(), blocks.data(), w.bytes.size());
    for (size_t b = 0; b < blocks.size(); ++b)
      for (int t = 0; t < 16; ++t) {
        const double d = F16ToF32(blocks[b].d);
        w.values[b * 32 + t] = d * ((blocks[b].qs[t] & 15) - 8);
        w.values[b * 32 + t + 16] = d * ((blocks[b].qs[t] >> 4) - 8);
      }
  } else {
    std::vector<BlockQ4_1> blocks(static_cast<size_t>(n * nb));
    for (int64_t r = 0; r < n; ++r) reference::QuantizeRowQ4_1(f.data() + r * k, k, blocks.data() + r * nb);
    w.bytes.resize(blocks.size() * sizeof(BlockQ4_1));
    std::memcpy(w.bytes.data(), blocks.data(), w.bytes.size());
    for (size_t b = 0; b < blocks.size(); ++b)
      for (int t = 0; t < 16; ++t) {
        const double d = F16ToF32(blocks[b].d), m = F16ToF32(blocks[b].m);
        w.values[b * 32 + t] = d * (blocks[b].qs[t] & 15) + m;
        w.values[b * 32 + t + 16] = d * (blocks[b].qs[t] >> 4) + m;
      }
  }
  return w;
}

bool BitwiseEqual(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], 4) != 0) {
      ADD_FAILURE() << what << ": element " << i << " " << a[i] << " != " << b[i];
      return false;
    }
  }
  return true;
}

// y = x . W^T in float64 from the quantised activations (Q8 rule) and the
// exact dequantised weights, with a bound of (terms + 3) ulp of the
// magnitude sum: what fp32 accumulation of exact block products may lose.
void Float64OfQuantised(const std::vector<float>& x, const QWeight& w, int64_t m, std::vector<double>* want,
                        std::vector<double>* tol) {
  const int64_t k = w.k, nb = k / 32;
  std::vector<int8_t> xq(static_cast<size_t>(m * k));
  std::vector<float> xd(static_cast<size_t>(m * nb));
  std::vector<int32_t> xc(xd.size());
  for (int64_t i = 0; i < m; ++i)
    reference::QuantizeRowQ8(x.data() + i * k, k, xq.data() + i * k, xd.data() + i * nb, xc.data() + i * nb);
  want->assign(static_cast<size_t>(m * w.n), 0.0);
  tol->assign(want->size(), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < w.n; ++j) {
      double acc = 0, mag = 0;
      for (int64_t b = 0; b < nb; ++b) {
        double blk = 0, bmag = 0;
        for (int t = 0; t < 32; ++t) {
          const double p = w.values[static_cast<size_t>(j * k + b * 32 + t)] * xq[static_cast<size_t>(i * k + b * 32 + t)];
          blk += p;
          bmag += std::fabs(p);
        }
        acc += blk * xd[static_cast<size_t>(i * nb + b)];
        mag += bmag * xd[static_cast<size_t>(i * nb + b)];
      }
      (*want)[static_cast<size_t>(i * w.n + j)] = acc;
      (*tol)[static_cast<size_t>(i * w.n + j)] = (2.0 * static_cast<double>(nb) + 6) * kU * mag + 1e-30;
    }
}

class LowbitTest : public ::testing::TestWithParam<Isa> {
 protected:
  const KernelTable& table() const { return GetKernelTable(GetParam()); }
  const KernelTable& ref() const { return GetKernelTable(Isa::kGeneric); }
};

std::string ParamName(const ::testing::TestParamInfo<Isa>& info) { return std::string(IsaName(info.param)); }

TEST(QuantizeQ4, GgmlRulesOnHandPickedValues) {
  // Q4_0: the largest magnitude is -4 -> d = -4 / -8 = 0.5, q = x / 0.5 + 8.5 truncated.
  float x[32] = {};
  x[0] = -4.0f;
  x[1] = 1.0f;
  x[2] = 0.26f;   // 0.52 + 8.5 = 9.02 -> 9
  x[16] = 3.9f;   // 7.8 + 8.5 = 16.3 -> min(15, 16) = 15
  x[17] = -0.3f;  // -0.6 + 8.5 = 7.9 -> 7
  BlockQ4_0 b0;
  reference::QuantizeRowQ4_0(x, 32, &b0);
  EXPECT_EQ(F16ToF32(b0.d), 0.5f);
  EXPECT_EQ(b0.qs[0] & 15, 0);    // -4 / 0.5 + 8.5 = 0.5 -> 0
  EXPECT_EQ(b0.qs[1] & 15, 10);   // 2 + 8.5 -> 10
  EXPECT_EQ(b0.qs[2] & 15, 9);
  EXPECT_EQ(b0.qs[0] >> 4, 15);
  EXPECT_EQ(b0.qs[1] >> 4, 7);
  EXPECT_EQ(b0.qs[3], 8 | (8 << 4));  // zeros -> 8
  // Q4_1: min -1, max 2 -> d = 0.2, m = -1, q = (x + 1) / 0.2 + 0.5 truncated.
  float y[32];
  for (float& v : y) v = 0.0f;
  y[0] = -1.0f;
  y[1] = 2.0f;
  y[16] = 0.5f;  // 7.5 + 0.5 = 8
  BlockQ4_1 b1;
  reference::QuantizeRowQ4_1(y, 32, &b1);
  EXPECT_NEAR(F16ToF32(b1.d), 0.2f, 1e-3);
  EXPECT_EQ(F16ToF32(b1.m), -1.0f);
  EXPECT_EQ(b1.qs[0] & 15, 0);
  EXPECT_EQ(b1.qs[1] & 15, 15);
  EXPECT_EQ(b1.qs[0] >> 4, 8);
  EXPECT_EQ(b1.qs[2] & 15, 5);  // 0: 5 + 0.5 -> 5
  // An all-zero block: d = 0 and every value decodes to 0.
  float z[32] = {};
  reference::QuantizeRowQ4_0(z, 32, &b0);
  float back[32];
  reference::Q4_0ToF32(&b0, 32, 1.0f, back);
  for (float v : back) EXPECT_EQ(v, 0.0f);
}

TEST_P(LowbitTest, MatMulQ4VsReferenceAndFloat64) {
  ThreadPool pool(1);
  Ops ops(table(), pool);
  Ops ref_ops(ref(), pool);
  struct Shape { int64_t k, n; std::vector<int64_t> ms; };
  const std::vector<Shape> shapes = {{32, 1, {1, 2, 7}},   {32, 17, {1, 3, 6, 13}}, {64, 33, {1, 5, 12}},
                                     {96, 48, {2, 7, 33}}, {768, 256, {1, 12}},     {1152, 40, {3}}};
  for (DType dt : {DType::kQ4_0, DType::kQ4_1}) {
    for (const Shape& s : shapes) {
      const QWeight w = MakeQ(dt, s.k, s.n, 7 * s.k + s.n + static_cast<int>(dt));
      Result<PackedMatrix> pm = PackMatrix(w.view());
      ASSERT_TRUE(pm.ok()) << pm.status().ToString();
      ASSERT_EQ(pm->format, PackedFormat::kQ4Panels);
      EXPECT_EQ(pm->packed_bytes(), static_cast<size_t>(pm->panels * (s.k / 32) * (256 + (dt == DType::kQ4_1 ? 64 : 32))));
      for (int64_t m : s.ms) {
        const std::vector<float> x = Normal(static_cast<size_t>(m * s.k), 11 * m + s.k);
        std::vector<float> y(static_cast<size_t>(m * s.n)), y_ref(y.size());
        ops.MatMul(*pm, x.data(), m, y.data());
        ref_ops.MatMul(*pm, x.data(), m, y_ref.data());
        const std::string what = std::string(DTypeName(dt)) + " m=" + std::to_string(m) + " k=" +
                                 std::to_string(s.k) + " n=" + std::to_string(s.n);
        ASSERT_TRUE(BitwiseEqual(y, y_ref, what));
        std::vector<double> want, tol;
        Float64OfQuantised(x, w, m, &want, &tol);
        for (size_t i = 0; i < y.size(); ++i)
          ASSERT_LE(std::fabs(y[i] - want[i]), tol[i]) << what << " element " << i << " vs float64";
      }
    }
  }
}

TEST_P(LowbitTest, Q4WithExtremeNibblesAndActivations) {
  // Every nibble 0 or 15 and activations at +-127 after quantisation: the
  // AVX2 int16 pair sums and the VNNI accumulators see their largest values.
  ThreadPool pool(1);
  Ops ops(table(), pool);
  Ops ref_ops(ref(), pool);
  for (DType dt : {DType::kQ4_0, DType::kQ4_1}) {
    QWeight w = MakeQ(dt, 128, 32, 3);
    const size_t bb = dt == DType::kQ4_0 ? 18 : 20, off = dt == DType::kQ4_0 ? 2 : 4;
    for (size_t b = 0; b < w.bytes.size() / bb; ++b)
      for (size_t t = 0; t < 16; ++t) w.bytes[b * bb + off + t] = (b + t) % 2 ? 0xff : 0x00;
    Result<PackedMatrix> pm = PackMatrix(w.view());
    ASSERT_TRUE(pm.ok());
    std::vector<float> x(static_cast<size_t>(5 * 128));
    for (size_t i = 0; i < x.size(); ++i) x[i] = (i % 3 == 0) ? -1.0f : 1.0f;
    std::vector<float> y(5 * 32), y_ref(y.size());
    ops.MatMul(*pm, x.data(), 5, y.data());
    ref_ops.MatMul(*pm, x.data(), 5, y_ref.data());
    ASSERT_TRUE(BitwiseEqual(y, y_ref, std::string(DTypeName(dt)) + " extremes"));
  }
}

TEST_P(LowbitTest, SparseQ8EqualsDenseBitwise) {
  ThreadPool pool(2);
  Ops ops(table(), pool);
  Ops ref_ops(ref(), pool);
  struct Shape { int64_t k, n; double zero; };
  for (const Shape& s : std::vector<Shape>{{64, 17, 0.5}, {256, 48, 0.3}, {768, 256, 0.7}, {1152, 64, 0.9}, {96, 16, 1.0}}) {
    const QWeight w = MakeQ(DType::kQ8_0, s.k, s.n, 5 * s.k + s.n, s.zero);
    Result<PackedMatrix> sparse = PackMatrix(w.view(), PackOptions{}, &pool);
    PackOptions dense_opt;
    dense_opt.sparse_min_zero_fraction = 2.0;
    Result<PackedMatrix> dense = PackMatrix(w.view(), dense_opt);
    ASSERT_TRUE(sparse.ok() && dense.ok());
    ASSERT_EQ(sparse->format, PackedFormat::kQ8SparsePanels) << s.k << "x" << s.n;
    ASSERT_EQ(dense->format, PackedFormat::kQ8Panels);
    EXPECT_EQ(PackedSize(w.view()), sparse->packed_bytes());
    EXPECT_LT(sparse->packed_bytes(), dense->packed_bytes());
    ASSERT_EQ(sparse->panel_ptr.size(), static_cast<size_t>(sparse->panels + 1));
    for (int64_t m : {1, 2, 5, 12, 13, 40}) {
      const std::vector<float> x = Normal(static_cast<size_t>(m * s.k), 3 * m + 1);
      std::vector<float> ys(static_cast<size_t>(m * s.n)), yd(ys.size()), yr(ys.size());
      ops.MatMul(*sparse, x.data(), m, ys.data());
      ops.MatMul(*dense, x.data(), m, yd.data());
      ref_ops.MatMul(*sparse, x.data(), m, yr.data());
      const std::string what = "sparse m=" + std::to_string(m) + " k=" + std::to_string(s.k);
      ASSERT_TRUE(BitwiseEqual(ys, yd, what + " vs dense"));
      ASSERT_TRUE(BitwiseEqual(ys, yr, what + " vs reference"));
    }
  }
  // Few zero tiles: stays dense.
  const QWeight w = MakeQ(DType::kQ8_0, 256, 64, 9, 0.05);
  Result<PackedMatrix> pm = PackMatrix(w.view());
  ASSERT_TRUE(pm.ok());
  EXPECT_EQ(pm->format, PackedFormat::kQ8Panels);
}

TEST_P(LowbitTest, Q4EmbeddingRowsAndWidening) {
  ThreadPool pool(2);
  Ops ops(table(), pool);
  for (DType dt : {DType::kQ4_0, DType::kQ4_1}) {
    const QWeight w = MakeQ(dt, 64, 40, 21);
    const std::vector<int32_t> ids = {0, 39, 7, 7, 12};
    std::vector<float> out(ids.size() * 64);
    ASSERT_TRUE(ops.EmbeddingLookup(w.view(), ids, 2.0f, out.data()).ok());
    for (size_t t = 0; t < ids.size(); ++t)
      for (int64_t c = 0; c < 64; ++c)
        ASSERT_NEAR(out[t * 64 + c], w.values[static_cast<size_t>(ids[t] * 64 + c)] * 2.0, 1e-6)
            << DTypeName(dt) << " row " << ids[t];
    // High precision: the 4-bit weights widened to fp32 panels (d * q [+ m]).
    PackOptions o;
    o.widen_q8 = true;
    Result<PackedMatrix> pm = PackMatrix(w.view(), o);
    ASSERT_TRUE(pm.ok());
    ASSERT_EQ(pm->format, PackedFormat::kF32Panels);
    for (int64_t j = 0; j < 40; ++j)
      for (int64_t kk = 0; kk < 64; ++kk)
        ASSERT_NEAR(pm->f32_panels()[(j / 16) * 16 * 64 + kk * 16 + j % 16], w.values[static_cast<size_t>(j * 64 + kk)],
                    1e-6);
  }
}

INSTANTIATE_TEST_SUITE_P(AllSupportedIsas, LowbitTest, ::testing::ValuesIn(SupportedIsas()), ParamName);

}  // namespace
}  // namespace gembed
