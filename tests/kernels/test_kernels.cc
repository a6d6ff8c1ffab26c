// Kernel tests: every KernelTable entry on every ISA level the host supports
// against the scalar reference (reference.cc) and against float64 oracles
// written here; the Ops layer (packing, threading, attention, pooling) on top.
//
// Tolerances come from the data: a floating-point result is compared with a
// float64 value and must lie within c * u * (sum of |terms|) (u = 2^-24),
// the classical bound for the operations involved; integer-exact pipelines
// (Q8 GEMM, conversions, add/scale) must match bit for bit. Failures name the
// worst element. Inputs and outputs live in guarded buffers: the page after
// the last element is inaccessible (any over-read or over-write faults) and
// canary bytes before the first element catch under-writes.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "base/check.h"
#include "base/half.h"
#include "base/thread_pool.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"
#include "kernels/reference.h"
#include "kernels/tune.h"

namespace gembed {
namespace {

constexpr double kU = 1.0 / (1 << 24);  // fp32 unit roundoff

// ---- guarded buffers ----------------------------------------------------------

template <typename T>
class Guarded {
 public:
  explicit Guarded(size_t n) : n_(n) {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t bytes = n * sizeof(T);
    data_pages_ = (bytes + page_ - 1) / page_ + 1;  // at least one page of canary room
    base_ = static_cast<uint8_t*>(mmap(nullptr, (data_pages_ + 1) * page_, PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    GEMBED_CHECK(base_ != MAP_FAILED);
    GEMBED_CHECK(mprotect(base_ + data_pages_ * page_, page_, PROT_NONE) == 0);
    data_ = reinterpret_cast<T*>(base_ + data_pages_ * page_ - bytes);
    std::memset(base_, kCanary, reinterpret_cast<uint8_t*>(data_) - base_);
    std::memset(static_cast<void*>(data_), 0, bytes);
  }
  Guarded(size_t n, const std::vector<T>& init) : Guarded(n) {
    std::copy(init.begin(), init.begin() + static_cast<std::ptrdiff_t>(std::min(n, init.size())), data_);
  }
  ~Guarded() { munmap(base_, (data_pages_ + 1) * page_); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  bool CanaryIntact() const {
    for (const uint8_t* p = base_; p < reinterpret_cast<const uint8_t*>(data_); ++p)
      if (*p != kCanary) return false;
    return true;
  }

 private:
  static constexpr uint8_t kCanary = 0xA5;
  size_t n_, page_, data_pages_;
  uint8_t* base_;
  T* data_;
};

// ---- data -------------------------------------------------------------------

enum class Fill { kNormal, kWideRange, kZeros, kOneHuge };
const char* FillName(Fill f) {
  switch (f) {
    case Fill::kNormal: return "normal";
    case Fill::kWideRange: return "wide-range";
    case Fill::kZeros: return "zeros";
    case Fill::kOneHuge: return "one-huge";
  }
  return "?";
}
constexpr Fill kAllFills[] = {Fill::kNormal, Fill::kWideRange, Fill::kZeros, Fill::kOneHuge};

std::vector<float> MakeData(size_t n, Fill fill, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> expo(-6.0f, 6.0f);
  std::vector<float> v(n, 0.0f);
  switch (fill) {
    case Fill::kNormal:
      for (float& x : v) x = normal(rng);
      break;
    case Fill::kWideRange:  // magnitudes over 12 decades
      for (float& x : v) x = normal(rng) * std::pow(10.0f, expo(rng));
      break;
    case Fill::kZeros:
      break;
    case Fill::kOneHuge:
      for (float& x : v) x = normal(rng) * 1e-3f;
      if (n) v[rng() % n] = 1e6f;
      break;
  }
  return v;
}

// ---- comparisons -----------------------------------------------------------

// got[i] must be within tol[i] of want[i]; reports the worst element.
::testing::AssertionResult Within(const float* got, const std::vector<double>& want,
                                  const std::vector<double>& tol, const std::string& what) {
  double worst = -1.0;
  size_t wi = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    const double ratio = std::isnan(err) ? INFINITY : err / std::max(tol[i], 1e-300);
    if (ratio > worst) {
      worst = ratio;
      wi = i;
    }
  }
  if (worst <= 1.0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": worst element " << wi << " of " << want.size() << ": got " << got[wi]
         << ", want " << want[wi] << ", |err| " << std::fabs(got[wi] - want[wi]) << " > tol "
         << tol[wi] << " (x" << worst << ")";
}

::testing::AssertionResult BitwiseEqual(const float* got, const float* want, size_t n,
                                        const std::string& what) {
  for (size_t i = 0; i < n; ++i) {
    if (BitsFromF32(got[i]) != BitsFromF32(want[i]))
      return ::testing::AssertionFailure() << what << ": first difference at element " << i
                                           << " of " << n << ": got " << got[i] << ", want "
                                           << want[i];
  }
  return ::testing::AssertionSuccess();
}

// Normalised squared error sum (got - want)^2 / sum want^2.
double Nmse(const float* got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return den > 0 ? num / den : num;
}

std::vector<double> Widen(const float* p, size_t n) { return std::vector<double>(p, p + n); }
std::vector<double> Twice(std::vector<double> tol) {
  for (double& t : tol) t *= 2;
  return tol;
}

std::string Str(const char* what, std::initializer_list<int64_t> dims) {
  std::ostringstream os;
  os << what;
  for (int64_t d : dims) os << " " << d;
  return os.str();
}

// ---- weights ----------------------------------------------------------------

// A GGUF-style weight [n x k] of `dt`, kept alive with its view, plus its
// exact values as doubles (what the packed matrix must reproduce).
struct TestWeight {
  DType dt;
  int64_t k, n;
  std::vector<uint8_t> bytes;
  std::vector<double> values;  // [n x k]
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

TestWeight MakeWeight(DType dt, int64_t k, int64_t n, Fill fill, uint64_t seed) {
  TestWeight w{dt, k, n, {}, std::vector<double>(static_cast<size_t>(k * n))};
  const std::vector<float> f = MakeData(static_cast<size_t>(k * n), fill, seed);
  switch (dt) {
    case DType::kF32:
      w.bytes.resize(f.size() * 4);
      std::memcpy(w.bytes.data(), f.data(), w.bytes.size());
      for (size_t i = 0; i < f.size(); ++i) w.values[i] = f[i];
      break;
    case DType::kF16:
    case DType::kBF16: {
      w.bytes.resize(f.size() * 2);
      for (size_t i = 0; i < f.size(); ++i) {
        const uint16_t h = dt == DType::kF16 ? F32ToF16(std::clamp(f[i], -60000.0f, 60000.0f)) : F32ToBf16(f[i]);
        std::memcpy(w.bytes.data() + 2 * i, &h, 2);
        w.values[i] = dt == DType::kF16 ? F16ToF32(h) : Bf16ToF32(h);
      }
      break;
    }
    case DType::kQ8_0: {
      std::vector<BlockQ8_0> blocks(f.size() / 32);
      for (int64_t r = 0; r < n; ++r)
        reference::QuantizeRowQ8_0(f.data() + r * k, k, blocks.data() + r * (k / 32));
      w.bytes.resize(blocks.size() * sizeof(BlockQ8_0));
      std::memcpy(w.bytes.data(), blocks.data(), w.bytes.size());
      for (size_t b = 0; b < blocks.size(); ++b)
        for (int t = 0; t < 32; ++t)
          w.values[b * 32 + t] = static_cast<double>(F16ToF32(blocks[b].d)) * blocks[b].qs[t];
      break;
    }
    default:
      break;
  }
  return w;
}

// ---- fixtures ----------------------------------------------------------------

class IsaTest : public ::testing::TestWithParam<Isa> {
 protected:
  const KernelTable& table() const { return GetKernelTable(GetParam()); }
  const KernelTable& ref() const { return GetKernelTable(Isa::kGeneric); }
};

std::string IsaParamName(const ::testing::TestParamInfo<Isa>& info) {
  return std::string(IsaName(info.param));
}

// ============================================================================
// Q8 activation quantisation

TEST(Quantize, GgmlRuleOnHandPickedValues) {
  // amax = 127 -> d = 1, id = 1: the quantised values are round-half-away(x).
  std::vector<float> x(32, 0.0f);
  const float vals[] = {127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 1.4999999f, 126.5f, -126.5f, 0.49999997f, 3.5f};
  const int8_t want[] = {127, 3, -3, 1, -1, 1, 127, -127, 0, 4};
  for (size_t i = 0; i < std::size(vals); ++i) x[i] = vals[i];
  BlockQ8_0 blk;
  reference::QuantizeRowQ8_0(x.data(), 32, &blk);
  EXPECT_EQ(F16ToF32(blk.d), 1.0f);
  for (size_t i = 0; i < std::size(vals); ++i) EXPECT_EQ(blk.qs[i], want[i]) << "x = " << vals[i];
  for (Isa isa : SupportedIsas()) {
    int8_t qs[32];
    float d;
    int32_t corr;
    GetKernelTable(isa).quantize_row_q8(x.data(), 32, qs, &d, &corr);
    EXPECT_EQ(d, 1.0f);
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      EXPECT_EQ(qs[i], blk.qs[i]) << IsaName(isa) << " element " << i;
      sum += qs[i];
    }
    EXPECT_EQ(corr, -128 * sum);
  }
}

TEST_P(IsaTest, QuantizeRowQ8MatchesReferenceAndGgmlRule) {
  for (Fill fill : kAllFills) {
    for (int64_t k : {32, 64, 96, 768, 3072}) {
      std::vector<float> xs = MakeData(static_cast<size_t>(k), fill, 100 + k);
      // Exact ties: scale a block so that x * id lands on .5.
      if (fill == Fill::kNormal) {
        for (int t = 0; t < 32; ++t) xs[t] = static_cast<float>(t - 16) + 0.5f;
        xs[31] = 127.0f;
      }
      Guarded<float> x(static_cast<size_t>(k), xs);
      const int64_t nb = k / 32;
      Guarded<int8_t> qs(static_cast<size_t>(k)), qs_ref(static_cast<size_t>(k));
      Guarded<float> d(static_cast<size_t>(nb)), d_ref(static_cast<size_t>(nb));
      Guarded<int32_t> corr(static_cast<size_t>(nb)), corr_ref(static_cast<size_t>(nb));
      table().quantize_row_q8(x.data(), k, qs.data(), d.data(), corr.data());
      reference::QuantizeRowQ8(x.data(), k, qs_ref.data(), d_ref.data(), corr_ref.data());
      std::vector<BlockQ8_0> ggml(static_cast<size_t>(nb));
      reference::QuantizeRowQ8_0(x.data(), k, ggml.data());
      for (int64_t b = 0; b < nb; ++b) {
        ASSERT_EQ(BitsFromF32(d[b]), BitsFromF32(d_ref[b])) << FillName(fill) << " block " << b;
        ASSERT_EQ(corr[b], corr_ref[b]) << FillName(fill) << " block " << b;
        ASSERT_EQ(F32ToF16(d[b]), ggml[b].d);
        // Independent oracle for the rule: v = x * (1/d) in fp32, rounded half
        // away from zero in double (exact for |v| <= 127.5).
        float amax = 0;
        for (int t = 0; t < 32; ++t) amax = std::max(amax, std::fabs(x[b * 32 + t]));
        const float db = amax / 127.0f;
        const float id = db != 0.0f ? 1.0f / db : 0.0f;
        for (int t = 0; t < 32; ++t) {
          const double v = static_cast<double>(x[b * 32 + t] * id);
          const int want = static_cast<int>(std::copysign(std::floor(std::fabs(v) + 0.5), v));
          const size_t i = static_cast<size_t>(b * 32 + t);
          ASSERT_EQ(qs[i], want) << FillName(fill) << " k " << k << " element " << i << " x " << x[i];
          ASSERT_EQ(qs_ref[i], want);
          ASSERT_EQ(ggml[static_cast<size_t>(b)].qs[t], want);
        }
      }
      EXPECT_TRUE(qs.CanaryIntact() && d.CanaryIntact() && corr.CanaryIntact());
    }
  }
}

// ============================================================================
// MatMul through Ops (packing + gemm entries), single thread

// y64 = x . W^T in double, and the sum of |x||w| per output (error scale).
void OracleMatMul(const std::vector<float>& x, const TestWeight& w, int64_t m,
                  std::vector<double>* y, std::vector<double>* mag) {
  y->assign(static_cast<size_t>(m * w.n), 0.0);
  mag->assign(y->size(), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < w.n; ++j) {
      double s = 0, a = 0;
      for (int64_t kk = 0; kk < w.k; ++kk) {
        const double p = static_cast<double>(x[static_cast<size_t>(i * w.k + kk)]) * w.values[static_cast<size_t>(j * w.k + kk)];
        s += p;
        a += std::fabs(p);
      }
      (*y)[static_cast<size_t>(i * w.n + j)] = s;
      (*mag)[static_cast<size_t>(i * w.n + j)] = a;
    }
}

TEST_P(IsaTest, MatMulFloatWeightsVsFloat64) {
  ThreadPool pool(1);
  Ops ops(table(), pool);
  Ops ref_ops(ref(), pool);
  struct Shape { int64_t k, n; std::vector<int64_t> ms; };
  const std::vector<int64_t> all_m = {1, 2, 3, 5, 7, 16, 33};
  const std::vector<Shape> shapes = {
      {1, 1, all_m},   {3, 5, all_m},     {17, 33, all_m},  {64, 16, all_m},
      {100, 47, all_m}, {768, 256, {1, 7, 16}}, {768, 1152, {1, 5}}, {3072, 768, {1, 3}}};
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (const Shape& s : shapes) {
      for (Fill fill : {Fill::kNormal, Fill::kWideRange, Fill::kOneHuge}) {
        if (s.k >= 768 && fill != Fill::kNormal) continue;
        const TestWeight w = MakeWeight(dt, s.k, s.n, fill, 7 * s.k + s.n);
        Result<PackedMatrix> pm = PackMatrix(w.view());
        ASSERT_TRUE(pm.ok()) << pm.status().ToString();
        EXPECT_EQ(pm->format, PackedFormat::kF32Panels);
        for (int64_t m : s.ms) {
          const std::vector<float> xv = MakeData(static_cast<size_t>(m * s.k), fill, 11 * m + s.k);
          Guarded<float> x(xv.size(), xv);
          Guarded<float> y(static_cast<size_t>(m * s.n)), y_ref(static_cast<size_t>(m * s.n));
          ops.MatMul(*pm, x.data(), m, y.data());
          ref_ops.MatMul(*pm, x.data(), m, y_ref.data());
          std::vector<double> want, mag, tol;
          OracleMatMul(xv, w, m, &want, &mag);
          for (double a : mag) tol.push_back((static_cast<double>(s.k) + 2) * kU * a + 1e-37);
          const std::string what = Str(DTypeName(dt).data(), {m, s.k, s.n}) + " " + FillName(fill);
          ASSERT_TRUE(Within(y.data(), want, tol, what));
          ASSERT_TRUE(Within(y_ref.data(), want, tol, what + " (reference)"));
          ASSERT_TRUE(y.CanaryIntact());
        }
      }
    }
  }
}

// Q8: every ISA must reproduce the reference bit for bit (same integer dots,
// same float operation order); the reference must match a float64 evaluation
// of the same quantised operands; and the whole must approximate the
// unquantised product to quantisation accuracy.
TEST_P(IsaTest, MatMulQ8VsReferenceAndFloat64) {
  ThreadPool pool(1);
  Ops ops(table(), pool);
  Ops ref_ops(ref(), pool);
  struct Shape { int64_t k, n; std::vector<int64_t> ms; };
  const std::vector<int64_t> all_m = {1, 2, 3, 5, 7, 16, 33};
  const std::vector<Shape> shapes = {
      {32, 1, all_m},    {32, 17, all_m},   {64, 5, all_m},       {96, 33, all_m},
      {160, 48, all_m},  {768, 256, {1, 4, 5, 33}}, {768, 768, {1, 12}}, {768, 1152, {2}},
      {1152, 768, {3}},  {3072, 768, {1, 5}}};
  for (const Shape& s : shapes) {
    for (Fill fill : kAllFills) {
      if (s.k >= 768 && (fill == Fill::kZeros || fill == Fill::kOneHuge)) continue;
      const TestWeight w = MakeWeight(DType::kQ8_0, s.k, s.n, fill == Fill::kZeros ? Fill::kNormal : fill, 3 * s.k + s.n);
      Result<PackedMatrix> pm = PackMatrix(w.view());
      ASSERT_TRUE(pm.ok()) << pm.status().ToString();
      EXPECT_EQ(pm->format, PackedFormat::kQ8Panels);
      const int64_t nb = s.k / 32;
      for (int64_t m : s.ms) {
        const std::vector<float> xv = MakeData(static_cast<size_t>(m * s.k), fill, 5 * m + s.k);
        Guarded<float> x(xv.size(), xv);
        Guarded<float> y(static_cast<size_t>(m * s.n)), y_ref(static_cast<size_t>(m * s.n));
        ops.MatMul(*pm, x.data(), m, y.data());
        ref_ops.MatMul(*pm, x.data(), m, y_ref.data());
        const std::string what = Str("Q8_0", {m, s.k, s.n}) + " " + FillName(fill);
        ASSERT_TRUE(BitwiseEqual(y.data(), y_ref.data(), y.size(), what));
        ASSERT_TRUE(y.CanaryIntact());
        // float64 evaluation of the quantised operands.
        std::vector<int8_t> xq(static_cast<size_t>(m * s.k));
        std::vector<float> xd(static_cast<size_t>(m * nb));
        std::vector<int32_t> xc(xd.size());
        for (int64_t i = 0; i < m; ++i)
          reference::QuantizeRowQ8(xv.data() + i * s.k, s.k, xq.data() + i * s.k, xd.data() + i * nb, xc.data() + i * nb);
        std::vector<double> want(y.size()), tol(y.size());
        const BlockQ8_0* wb = reinterpret_cast<const BlockQ8_0*>(w.bytes.data());
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < s.n; ++j) {
            double acc = 0, mag = 0;
            for (int64_t b = 0; b < nb; ++b) {
              const BlockQ8_0& blk = wb[j * nb + b];
              int64_t dot = 0;
              for (int t = 0; t < 32; ++t) dot += static_cast<int64_t>(blk.qs[t]) * xq[static_cast<size_t>(i * s.k + b * 32 + t)];
              const double term = static_cast<double>(F16ToF32(blk.d)) * xd[static_cast<size_t>(i * nb + b)] * static_cast<double>(dot);
              acc += term;
              mag += std::fabs(term);
            }
            want[static_cast<size_t>(i * s.n + j)] = acc;
            tol[static_cast<size_t>(i * s.n + j)] = (static_cast<double>(nb) + 3) * kU * mag + 1e-37;
          }
        ASSERT_TRUE(Within(y.data(), want, tol, what + " vs float64 of quantised operands"));
        if (fill == Fill::kNormal) {
          std::vector<double> exact, mag;
          OracleMatMul(xv, w, m, &exact, &mag);
          EXPECT_LT(Nmse(y.data(), exact), 1e-4) << what << " vs unquantised activations";
        }
        if (fill == Fill::kZeros) {
          for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], 0.0f);
        }
      }
    }
  }
}

// Every Q8 GEMM variant the tuner can choose (kernels/tune.h) must give the
// reference's bits on every shape: row counts around each tile height, column
// counts that end inside a tile (partial panels, fewer panels than a tile
// covers), and wide-range weights, without writing past the output.
TEST_P(IsaTest, EveryGemmQ8VariantIsBitIdenticalToTheReference) {
  ThreadPool pool(1);
  Ops ref_ops(ref(), pool);
  const std::span<const GemmQ8Variant> candidates = GemmQ8VariantsFor(GetParam());
  ASSERT_FALSE(candidates.empty());
  EXPECT_EQ(candidates.front().fn, table().gemm_q8) << "the first variant is the level's default";
  // The AMX variants too, where they can run, whether or not the tuner measures them.
  std::vector<GemmQ8Variant> variants(candidates.begin(), candidates.end());
  if (GetParam() == Isa::kAvx512Vnni) {
    for (const GemmQ8Variant& v : AmxGemmQ8Variants())
      if (std::none_of(variants.begin(), variants.end(), [&](const GemmQ8Variant& c) { return c.fn == v.fn; }))
        variants.push_back(v);
  }
  struct Shape { int64_t k, n; };
  const Shape shapes[] = {{32, 1}, {64, 17}, {96, 33}, {128, 48}, {64, 80}, {768, 256}, {160, 112}};
  // 16, 32, 48 and their neighbours: whole and partial 16-row AMX tiles.
  const int64_t ms[] = {1, 2, 3, 5, 6, 7, 8, 11, 12, 13, 15, 16, 17, 24, 25, 32, 33, 48};
  for (const GemmQ8Variant& v : variants) {
    Ops ops(table(), pool);
    ops.SetGemmQ8(v.fn, v.fn, 0);
    for (const Shape& s : shapes) {
      for (Fill fill : {Fill::kNormal, Fill::kWideRange}) {
        const TestWeight w = MakeWeight(DType::kQ8_0, s.k, s.n, fill, 7 * s.k + s.n);
        Result<PackedMatrix> pm = PackMatrix(w.view());
        ASSERT_TRUE(pm.ok()) << pm.status().ToString();
        for (int64_t m : ms) {
          if (s.k >= 768 && m > 17) continue;
          const std::vector<float> xv = MakeData(static_cast<size_t>(m * s.k), Fill::kNormal, 11 * m + s.k);
          Guarded<float> x(xv.size(), xv);
          Guarded<float> y(static_cast<size_t>(m * s.n)), y_ref(static_cast<size_t>(m * s.n));
          ops.MatMul(*pm, x.data(), m, y.data());
          ref_ops.MatMul(*pm, x.data(), m, y_ref.data());
          const std::string what = std::string(v.name) + " " + Str("Q8_0", {m, s.k, s.n}) + " " + FillName(fill);
          ASSERT_TRUE(BitwiseEqual(y.data(), y_ref.data(), y.size(), what));
          ASSERT_TRUE(y.CanaryIntact()) << what;
        }
      }
    }
  }
}

// GGUF Q8_0 blocks may hold any int8, including -128, which ggml's
// quantiser never writes; every ISA path (the AVX2 sign trick, the VNNI +128
// bias) must still be exact.
TEST_P(IsaTest, MatMulQ8FullInt8RangeWeights) {
  ThreadPool pool(1);
  Ops ops(table(), pool);
  Ops ref_ops(ref(), pool);
  const int64_t k = 96, n = 21, m = 5, nb = k / 32;
  std::mt19937_64 rng(17);
  std::vector<BlockQ8_0> blocks(static_cast<size_t>(n * nb));
  for (BlockQ8_0& b : blocks) {
    b.d = F32ToF16(0.01f + static_cast<float>(rng() % 100) * 1e-3f);
    for (int t = 0; t < 32; ++t) b.qs[t] = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
    b.qs[0] = -128;
  }
  TestWeight w{DType::kQ8_0, k, n, std::vector<uint8_t>(blocks.size() * sizeof(BlockQ8_0)), {}};
  std::memcpy(w.bytes.data(), blocks.data(), w.bytes.size());
  Result<PackedMatrix> pm = PackMatrix(w.view());
  ASSERT_TRUE(pm.ok());
  std::vector<float> xv = MakeData(static_cast<size_t>(m * k), Fill::kNormal, 3);
  for (size_t i = 0; i < xv.size(); i += 32) xv[i] = -10.0f;  // activation -127 meets weight -128
  std::vector<float> y(static_cast<size_t>(m * n)), y_ref(y.size());
  ops.MatMul(*pm, xv.data(), m, y.data());
  ref_ops.MatMul(*pm, xv.data(), m, y_ref.data());
  ASSERT_TRUE(BitwiseEqual(y.data(), y_ref.data(), y.size(), "full-range int8 weights"));
  std::vector<int8_t> xq(static_cast<size_t>(m * k));
  std::vector<float> xd(static_cast<size_t>(m * nb));
  std::vector<int32_t> xc(xd.size());
  for (int64_t i = 0; i < m; ++i)
    reference::QuantizeRowQ8(xv.data() + i * k, k, xq.data() + i * k, xd.data() + i * nb, xc.data() + i * nb);
  std::vector<double> want(y.size()), tol(y.size());
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0, mag = 0;
      for (int64_t b = 0; b < nb; ++b) {
        int64_t dot = 0;
        for (int t = 0; t < 32; ++t) dot += blocks[j * nb + b].qs[t] * xq[i * k + b * 32 + t];
        const double term = static_cast<double>(F16ToF32(blocks[j * nb + b].d)) * xd[i * nb + b] * static_cast<double>(dot);
        acc += term;
        mag += std::fabs(term);
      }
      want[i * n + j] = acc;
      tol[i * n + j] = (static_cast<double>(nb) + 3) * kU * mag + 1e-37;
    }
  EXPECT_TRUE(Within(y.data(), want, tol, "full-range int8 weights vs float64"));
}

TEST_P(IsaTest, MatMulSharedEqualsSeparateMatMuls) {
  ThreadPool pool(2);
  Ops ops(table(), pool);
  const int64_t k = 96, m = 9;
  const TestWeight wa = MakeWeight(DType::kQ8_0, k, 40, Fill::kNormal, 1);
  const TestWeight wb = MakeWeight(DType::kQ8_0, k, 16, Fill::kNormal, 2);
  const TestWeight wc = MakeWeight(DType::kF32, k, 7, Fill::kNormal, 3);
  Result<PackedMatrix> pa = PackMatrix(wa.view()), pb = PackMatrix(wb.view()), pc = PackMatrix(wc.view());
  ASSERT_TRUE(pa.ok() && pb.ok() && pc.ok());
  const std::vector<float> xv = MakeData(static_cast<size_t>(m * k), Fill::kNormal, 9);
  std::vector<float> ya(m * 40), yb(m * 16), yc(m * 7), sa(ya.size()), sb(yb.size()), sc(yc.size());
  const MatMulOutput outs[] = {{&*pa, sa.data()}, {&*pb, sb.data()}, {&*pc, sc.data()}};
  ops.MatMulShared(xv.data(), m, outs);
  ops.MatMul(*pa, xv.data(), m, ya.data());
  ops.MatMul(*pb, xv.data(), m, yb.data());
  ops.MatMul(*pc, xv.data(), m, yc.data());
  EXPECT_TRUE(BitwiseEqual(sa.data(), ya.data(), ya.size(), "shared a"));
  EXPECT_TRUE(BitwiseEqual(sb.data(), yb.data(), yb.size(), "shared b"));
  EXPECT_TRUE(BitwiseEqual(sc.data(), yc.data(), yc.size(), "shared c"));
}

// gemm_f32 with B read in place from strided rows (the attention P.V case):
// only columns < n may be read, which the guard page after B's last element
// (row k-1, column n-1) enforces.
TEST_P(IsaTest, GemmF32StridedBVsFloat64) {
  for (int64_t m : {1, 5, 32}) {
    for (int64_t n : {1, 7, 16, 40, 256}) {
      for (int64_t k : {1, 3, 64, 300}) {
        const int64_t ldb = n + 5;
        const std::vector<float> av = MakeData(static_cast<size_t>(m * k), Fill::kNormal, m + k);
        const std::vector<float> bv = MakeData(static_cast<size_t>((k - 1) * ldb + n), Fill::kNormal, n + k);
        Guarded<float> a(av.size(), av), b(bv.size(), bv);
        Guarded<float> c(static_cast<size_t>(m * n));
        table().gemm_f32(m, n, k, a.data(), k, b.data(), ldb, kPanelWidth, c.data(), n);
        std::vector<double> want(c.size()), tol(c.size());
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double s = 0, mag = 0;
            for (int64_t kk = 0; kk < k; ++kk) {
              const double p = static_cast<double>(av[i * k + kk]) * bv[kk * ldb + j];
              s += p;
              mag += std::fabs(p);
            }
            want[i * n + j] = s;
            tol[i * n + j] = (static_cast<double>(k) + 2) * kU * mag + 1e-37;
          }
        ASSERT_TRUE(Within(c.data(), want, tol, Str("gemm_f32 strided", {m, n, k})));
        ASSERT_TRUE(c.CanaryIntact());
      }
    }
  }
}

// ============================================================================
// Row kernels

TEST_P(IsaTest, RmsNormRowsVsFloat64) {
  const float eps = 1e-6f;
  for (Fill fill : kAllFills) {
    for (int64_t d : {1, 7, 16, 31, 256, 768, 1153}) {
      const std::vector<float> xv = MakeData(static_cast<size_t>(d), fill, d);
      const std::vector<float> gv = MakeData(static_cast<size_t>(d), Fill::kNormal, d + 1);
      const std::vector<float> rv = MakeData(static_cast<size_t>(d), Fill::kNormal, d + 2);
      Guarded<float> x(xv.size(), xv), g(gv.size(), gv), out(xv.size()), res(rv.size(), rv);
      table().rmsnorm_row(x.data(), d, g.data(), eps, out.data());
      table().rmsnorm_add_row(x.data(), d, g.data(), eps, res.data());
      double ss = 0;
      for (float v : xv) ss += static_cast<double>(v) * v;
      const double inv = 1.0 / std::sqrt(ss / static_cast<double>(d) + eps);
      std::vector<double> want(xv.size()), tol(xv.size()), want_add(xv.size()), tol_add(xv.size());
      for (size_t i = 0; i < xv.size(); ++i) {
        want[i] = xv[i] * inv * gv[i];
        tol[i] = 4 * kU * std::fabs(want[i]) + 1e-40;
        want_add[i] = rv[i] + want[i];
        tol_add[i] = 5 * kU * (std::fabs(want[i]) + std::fabs(want_add[i])) + 1e-40;
      }
      const std::string what = Str("rmsnorm", {d}) + " " + FillName(fill);
      ASSERT_TRUE(Within(out.data(), want, tol, what));
      ASSERT_TRUE(Within(res.data(), want_add, tol_add, what + " (add)"));
      // Against the scalar reference too (both within the bound of float64).
      std::vector<float> r(xv.size()), radd(rv);
      ref().rmsnorm_row(xv.data(), d, gv.data(), eps, r.data());
      ref().rmsnorm_add_row(xv.data(), d, gv.data(), eps, radd.data());
      ASSERT_TRUE(Within(out.data(), Widen(r.data(), r.size()), Twice(tol), what + " vs reference"));
      ASSERT_TRUE(Within(res.data(), Widen(radd.data(), radd.size()), Twice(tol_add), what + " (add) vs reference"));
      // In place, as the per-head norm uses it.
      table().rmsnorm_row(x.data(), d, g.data(), eps, x.data());
      ASSERT_TRUE(BitwiseEqual(x.data(), out.data(), xv.size(), what + " (in place)"));
      ASSERT_TRUE(out.CanaryIntact() && res.CanaryIntact());
    }
  }
}

TEST_P(IsaTest, L2NormalizeRowVsFloat64) {
  for (Fill fill : kAllFills) {
    for (int64_t d : {1, 5, 16, 128, 768, 1000}) {
      const std::vector<float> xv = MakeData(static_cast<size_t>(d), fill, 3 * d);
      Guarded<float> x(xv.size(), xv);
      table().l2_normalize_row(x.data(), d);
      double ss = 0;
      for (float v : xv) ss += static_cast<double>(v) * v;
      std::vector<double> want(xv.size()), tol(xv.size());
      for (size_t i = 0; i < xv.size(); ++i) {
        want[i] = ss > 0 ? xv[i] / std::sqrt(ss) : 0.0;
        tol[i] = 2 * kU * std::fabs(want[i]) + 1e-40;
      }
      ASSERT_TRUE(Within(x.data(), want, tol, Str("l2norm", {d}) + " " + FillName(fill)));
      std::vector<float> r(xv);
      ref().l2_normalize_row(r.data(), d);
      ASSERT_TRUE(Within(x.data(), Widen(r.data(), r.size()), Twice(tol), Str("l2norm vs reference", {d})));
    }
  }
}

TEST_P(IsaTest, RopeRowVsFloat64) {
  for (int64_t heads : {1, 3}) {
    for (int64_t dh : {2, 6, 32, 34, 256}) {
      const int64_t half = dh / 2;
      const std::vector<float> xv = MakeData(static_cast<size_t>(heads * dh), Fill::kNormal, dh);
      std::vector<float> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
      for (int64_t i = 0; i < half; ++i) {
        const double th = 37.0 * std::pow(10000.0, -2.0 * static_cast<double>(i) / static_cast<double>(dh));
        cs[i] = static_cast<float>(std::cos(th));
        sn[i] = static_cast<float>(std::sin(th));
      }
      Guarded<float> x(xv.size(), xv), c(cs.size(), cs), s(sn.size(), sn);
      table().rope_neox_row(x.data(), heads, dh, c.data(), s.data());
      std::vector<double> want(xv.size()), tol(xv.size());
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < half; ++i) {
          const double a = xv[h * dh + i], b = xv[h * dh + i + half];
          want[h * dh + i] = a * cs[i] - b * sn[i];
          want[h * dh + i + half] = a * sn[i] + b * cs[i];
          const double mag = std::fabs(a * cs[i]) + std::fabs(b * sn[i]) + std::fabs(a * sn[i]) + std::fabs(b * cs[i]);
          tol[h * dh + i] = tol[h * dh + i + half] = 2 * kU * mag + 1e-40;
        }
      ASSERT_TRUE(Within(x.data(), want, tol, Str("rope row", {heads, dh})));
      std::vector<float> r(xv);
      ref().rope_neox_row(r.data(), heads, dh, cs.data(), sn.data());
      ASSERT_TRUE(Within(x.data(), Widen(r.data(), r.size()), Twice(tol), Str("rope row vs reference", {heads, dh})));
    }
  }
}

TEST_P(IsaTest, SoftmaxRowVsFloat64) {
  for (int64_t n : {1, 5, 16, 33, 600}) {
    for (float scale : {0.0625f, 1.0f, 40.0f}) {
      for (auto [lo, hi] : std::vector<std::pair<int64_t, int64_t>>{{0, n}, {0, 1}, {n / 3, n - n / 4}, {n - 1, n}}) {
        if (lo >= hi) continue;
        const std::vector<float> sv = MakeData(static_cast<size_t>(n), Fill::kNormal, n + lo);
        Guarded<float> s(sv.size(), sv);
        const float sum = table().softmax_row(s.data(), n, lo, hi, scale);
        double mx = -INFINITY;
        for (int64_t j = lo; j < hi; ++j) mx = std::max(mx, static_cast<double>(sv[j] * scale));
        std::vector<double> want(sv.size(), 0.0), tol(sv.size(), 0.0);
        double sum64 = 0;
        for (int64_t j = lo; j < hi; ++j) {
          const double arg = static_cast<double>(sv[j]) * scale;
          want[j] = std::exp(arg - mx);
          sum64 += want[j];
          // exp's own error plus the argument's rounding, amplified by exp.
          tol[j] = (8 * kU + 2 * kU * (std::fabs(arg) + std::fabs(mx))) * want[j] + 1e-44;
        }
        const std::string what = Str("softmax", {n, lo, hi}) + " scale " + std::to_string(scale);
        ASSERT_TRUE(Within(s.data(), want, tol, what));
        std::vector<float> r(sv);
        const float rsum = ref().softmax_row(r.data(), n, lo, hi, scale);
        ASSERT_TRUE(Within(s.data(), Widen(r.data(), r.size()), Twice(tol), what + " vs reference"));
        EXPECT_NEAR(sum, rsum, (static_cast<double>(hi - lo) + 8) * 8 * kU * sum64 * (1 + std::fabs(mx))) << what;
        for (int64_t j = 0; j < n; ++j)
          if (j < lo || j >= hi) {
            ASSERT_EQ(s[j], 0.0f) << what << " masked entry " << j;
          }
        EXPECT_NEAR(sum, sum64, (static_cast<double>(hi - lo) + 8) * 4 * kU * sum64 * (1 + std::fabs(mx))) << what;
      }
    }
  }
}

TEST_P(IsaTest, GeGluVsFloat64) {
  for (Fill fill : {Fill::kNormal, Fill::kWideRange, Fill::kZeros}) {
    for (int64_t n : {1, 7, 16, 33, 1152, 4099}) {
      std::vector<float> gv = MakeData(static_cast<size_t>(n), fill, n);
      if (fill == Fill::kNormal) {  // cover the tails where tanh saturates
        for (size_t i = 0; i < gv.size(); i += 7) gv[i] *= 8.0f;
      }
      const std::vector<float> uv = MakeData(static_cast<size_t>(n), Fill::kNormal, n + 1);
      Guarded<float> g(gv.size(), gv), u(uv.size(), uv), out(gv.size());
      table().geglu(g.data(), u.data(), n, out.data());
      std::vector<double> want(gv.size()), tol(gv.size());
      const double c = std::sqrt(2.0 / M_PI);
      for (size_t i = 0; i < gv.size(); ++i) {
        const double z = gv[i];
        const double a = c * (z + 0.044715 * z * z * z);
        // 1 + tanh(a) cancels for a << 0 even in double; there use the
        // identity 1 + tanh(a) = 2 / (1 + exp(-2a)).
        const double one_plus_tanh = a > -0.5 ? 1.0 + std::tanh(a) : 2.0 / (1.0 + std::exp(-2.0 * a));
        want[i] = 0.5 * z * one_plus_tanh * uv[i];
        // fp32 evaluation: relative error of a few ulp, plus the rounding of
        // the exp argument (|2a| ulp-scaled) amplified by the sigmoid slope.
        // Results below fp32's normal range (|x| < 2^-126) may flush to 0.
        tol[i] = (16 + 4 * std::fabs(2 * a)) * kU * std::fabs(want[i]) + 1e-37 * (1 + std::fabs(uv[i]));
      }
      ASSERT_TRUE(Within(out.data(), want, tol, Str("geglu", {n}) + " " + FillName(fill)));
      std::vector<float> r(gv.size());
      ref().geglu(gv.data(), uv.data(), n, r.data());
      ASSERT_TRUE(Within(out.data(), Widen(r.data(), r.size()), Twice(tol), Str("geglu vs reference", {n})));
      ASSERT_TRUE(out.CanaryIntact());
    }
  }
}

TEST_P(IsaTest, AddScaleAndConversionsMatchReferenceExactly) {
  std::mt19937_64 rng(5);
  for (int64_t n : {1, 7, 8, 15, 16, 17, 31, 64, 768, 1001}) {
    const std::vector<float> av = MakeData(static_cast<size_t>(n), Fill::kWideRange, n);
    const std::vector<float> bv = MakeData(static_cast<size_t>(n), Fill::kNormal, n + 1);
    Guarded<float> a(av.size(), av), b(bv.size(), bv), out(av.size()), want(av.size());
    table().add(a.data(), b.data(), n, out.data());
    reference::Add(av.data(), bv.data(), n, want.data());
    ASSERT_TRUE(BitwiseEqual(out.data(), want.data(), av.size(), Str("add", {n})));
    table().scale(a.data(), n, 27.712812f, out.data());
    for (int64_t i = 0; i < n; ++i) want[i] = av[i] * 27.712812f;
    ASSERT_TRUE(BitwiseEqual(out.data(), want.data(), av.size(), Str("scale", {n})));
    // fp16 / bf16 rows: every bit pattern class, exact vs base/half.h.
    Guarded<uint16_t> h(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      uint16_t bits = static_cast<uint16_t>(rng());
      if ((bits & 0x7c00u) == 0x7c00u) bits &= 0xbfffu;  // keep NaN/inf out of the scaled product check
      h[i] = bits;
    }
    table().f16_to_f32(h.data(), n, 0.5f, out.data());
    for (int64_t i = 0; i < n; ++i) want[i] = F16ToF32(h[i]) * 0.5f;
    ASSERT_TRUE(BitwiseEqual(out.data(), want.data(), av.size(), Str("f16_to_f32", {n})));
    for (int64_t i = 0; i < n; ++i) h[i] = F32ToBf16(av[i]);
    table().bf16_to_f32(h.data(), n, 3.0f, out.data());
    for (int64_t i = 0; i < n; ++i) want[i] = Bf16ToF32(h[i]) * 3.0f;
    ASSERT_TRUE(BitwiseEqual(out.data(), want.data(), av.size(), Str("bf16_to_f32", {n})));
    ASSERT_TRUE(out.CanaryIntact());
  }
  for (int64_t n : {32, 64, 768}) {
    const std::vector<float> xv = MakeData(static_cast<size_t>(n), Fill::kWideRange, n);
    Guarded<BlockQ8_0> blocks(static_cast<size_t>(n / 32));
    reference::QuantizeRowQ8_0(xv.data(), n, blocks.data());
    Guarded<float> out(static_cast<size_t>(n));
    table().q8_0_to_f32(blocks.data(), n, 27.712812f, out.data());
    std::vector<float> want(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      // d * q is exact in fp32 (11 x 8 significant bits): one rounding, as in float64.
      const double v = static_cast<double>(F16ToF32(blocks[i / 32].d)) * blocks[i / 32].qs[i % 32] * 27.712812f;
      want[i] = static_cast<float>(v);
    }
    ASSERT_TRUE(BitwiseEqual(out.data(), want.data(), want.size(), Str("q8_0_to_f32", {n})));
  }
}

// ============================================================================
// Ops: embedding, RoPE, attention, pooling

TEST_P(IsaTest, EmbeddingLookupAllDtypes) {
  ThreadPool pool(2);
  Ops ops(table(), pool);
  const int64_t vocab = 50;
  for (int64_t d : {32, 768}) {
    for (DType dt : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
      const TestWeight tab = MakeWeight(dt, d, vocab, Fill::kNormal, d);
      const std::vector<int32_t> ids = {2, 0, 49, 17, 17, 3, 1};
      Guarded<float> out(ids.size() * static_cast<size_t>(d));
      ASSERT_TRUE(ops.EmbeddingLookup(tab.view(), ids, 27.712812f, out.data()).ok());
      for (size_t t = 0; t < ids.size(); ++t)
        for (int64_t c = 0; c < d; ++c) {
          // Dequantised value (exact in fp32) times the scale: one rounding.
          const float want = static_cast<float>(tab.values[ids[t] * d + c] * 27.712812f);
          ASSERT_EQ(out[t * d + c], want) << DTypeName(dt) << " token " << t << " dim " << c;
        }
      ASSERT_TRUE(out.CanaryIntact());
      const std::vector<int32_t> bad_hi = {1, static_cast<int32_t>(vocab)}, bad_lo = {-1};
      EXPECT_EQ(ops.EmbeddingLookup(tab.view(), bad_hi, 1.0f, out.data()).code(), StatusCode::kOutOfRange);
      EXPECT_EQ(ops.EmbeddingLookup(tab.view(), bad_lo, 1.0f, out.data()).code(), StatusCode::kOutOfRange);
      TensorView broken = tab.view();
      broken.nbytes -= 1;
      EXPECT_EQ(ops.EmbeddingLookup(broken, ids, 1.0f, out.data()).code(), StatusCode::kInvalidArgument);
    }
  }
  TestWeight q5 = MakeWeight(DType::kF32, 32, 4, Fill::kNormal, 1);
  TensorView v = q5.view();
  v.dtype = DType::kQ5_0;
  v.nbytes = 4 * 22;
  float out[32];
  const std::vector<int32_t> one = {0};
  EXPECT_EQ(ops.EmbeddingLookup(v, one, 1.0f, out).code(), StatusCode::kUnsupported);
}

TEST_P(IsaTest, RopeNeoxOpVsFloat64Angles) {
  ThreadPool pool(2);
  Ops ops(table(), pool);
  const int64_t heads = 3, dh = 256;
  const std::vector<int32_t> pos = {0, 1, 2, 255, 1000, 2047, 2048, 5000};
  const int64_t m = static_cast<int64_t>(pos.size());
  for (float base : {10000.0f, 1000000.0f}) {
    const std::vector<float> xv = MakeData(static_cast<size_t>(m * heads * dh), Fill::kNormal, 77);
    Guarded<float> x(xv.size(), xv);
    ASSERT_TRUE(ops.RopeNeox(x.data(), m, heads, dh, pos, base).ok());
    std::vector<double> want(xv.size()), tol(xv.size());
    for (int64_t t = 0; t < m; ++t)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < dh / 2; ++i) {
          const double th = pos[t] * std::pow(static_cast<double>(base), -2.0 * i / dh);
          const size_t ia = static_cast<size_t>((t * heads + h) * dh + i), ib = ia + dh / 2;
          const double a = xv[ia], b = xv[ib];
          want[ia] = a * std::cos(th) - b * std::sin(th);
          want[ib] = a * std::sin(th) + b * std::cos(th);
          // cos/sin rounded to fp32 (u each) + two products and a sum.
          tol[ia] = tol[ib] = 4 * kU * (std::fabs(a) + std::fabs(b)) + 1e-40;
        }
    ASSERT_TRUE(Within(x.data(), want, tol, "rope base " + std::to_string(base)));
  }
  float dummy[256];
  const std::vector<int32_t> neg = {-1};
  EXPECT_EQ(ops.RopeNeox(dummy, 1, 1, 256, neg, 10000.0f).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ops.RopeNeox(dummy, 2, 1, 128, neg, 10000.0f).code(), StatusCode::kInvalidArgument);
}

// float64 attention oracle and its data-derived error bound.
void OracleAttention(const std::vector<float>& q, const std::vector<float>& k,
                     const std::vector<float>& v, const std::vector<int32_t>& cu, int64_t hq,
                     int64_t hkv, int64_t dh, int64_t window, float scale, std::vector<double>* out,
                     std::vector<double>* tol) {
  const int64_t t = cu.back();
  out->assign(static_cast<size_t>(t * hq * dh), 0.0);
  tol->assign(out->size(), 0.0);
  std::vector<double> p;
  for (size_t s = 0; s + 1 < cu.size(); ++s) {
    for (int64_t h = 0; h < hq; ++h) {
      const int64_t g = h / (hq / hkv);
      for (int64_t i = cu[s]; i < cu[s + 1]; ++i) {
        const int64_t lo = window < 0 ? cu[s] : std::max<int64_t>(cu[s], i - window);
        const int64_t hi = window < 0 ? cu[s + 1] : std::min<int64_t>(cu[s + 1], i + window + 1);
        p.assign(static_cast<size_t>(hi - lo), 0.0);
        double mx = -INFINITY, smax = 0, vmax = 0;
        for (int64_t j = lo; j < hi; ++j) {
          double dot = 0, mag = 0;
          for (int64_t c = 0; c < dh; ++c) {
            const double pr = static_cast<double>(q[(i * hq + h) * dh + c]) * k[(j * hkv + g) * dh + c];
            dot += pr;
            mag += std::fabs(pr);
          }
          p[j - lo] = dot * scale;
          mx = std::max(mx, p[j - lo]);
          smax = std::max(smax, mag * std::fabs(scale));
          for (int64_t c = 0; c < dh; ++c) vmax = std::max(vmax, std::fabs(static_cast<double>(v[(j * hkv + g) * dh + c])));
        }
        double sum = 0;
        for (double& x : p) sum += (x = std::exp(x - mx));
        for (int64_t c = 0; c < dh; ++c) {
          double acc = 0;
          for (int64_t j = lo; j < hi; ++j) acc += p[j - lo] * v[(j * hkv + g) * dh + c];
          (*out)[(i * hq + h) * dh + c] = acc / sum;
          // Score errors (dot of dh terms) shift the weights relatively by
          // ~ their size; P.V and the normalisation add ~ keys * u.
          (*tol)[(i * hq + h) * dh + c] =
              (4 * (static_cast<double>(dh) + 4) * kU * smax + (2 * static_cast<double>(hi - lo) + 32) * kU) * vmax + 1e-30;
        }
      }
    }
  }
}

TEST_P(IsaTest, AttentionVsFloat64) {
  ThreadPool pool(1);
  Ops ops(table(), pool);
  struct Heads { int64_t hq, hkv, dh; };
  struct Case { Heads heads; std::vector<int32_t> cu; std::vector<int64_t> windows; };
  const std::vector<Case> cases = {
      {{3, 1, 256}, {0, 1}, {-1, 0, 256}},
      {{3, 1, 256}, {0, 5, 17}, {-1, 0, 1, 3}},
      {{3, 1, 256}, {0, 600}, {-1, 16, 256}},
      {{3, 1, 256}, {0, 257, 557, 597}, {256}},
      {{4, 2, 64}, {0, 1, 3, 6, 23, 56, 56, 100}, {-1, 2, 7}},
      {{2, 2, 40}, {0, 33, 70}, {-1, 5}},
      {{1, 1, 1}, {0, 19}, {-1, 4}},
  };
  for (const Case& cs : cases) {
    const Heads& hd = cs.heads;
    const int64_t t = cs.cu.back();
    for (float scale : {0.0625f, 2.0f}) {
      if (t > 100 && scale != 0.0625f) continue;  // keep the float64 oracle's run time small
      const std::vector<float> qv = MakeData(static_cast<size_t>(t * hd.hq * hd.dh), Fill::kNormal, t + 1);
      const std::vector<float> kv = MakeData(static_cast<size_t>(t * hd.hkv * hd.dh), Fill::kNormal, t + 2);
      const std::vector<float> vv = MakeData(static_cast<size_t>(t * hd.hkv * hd.dh), Fill::kNormal, t + 3);
      Guarded<float> q(qv.size(), qv), k(kv.size(), kv), v(vv.size(), vv), out(qv.size());
      for (int64_t window : cs.windows) {
        ASSERT_TRUE(ops.Attention(q.data(), k.data(), v.data(), t, cs.cu, hd.hq, hd.hkv, hd.dh, window, scale, out.data()).ok());
        std::vector<double> want, tol;
        OracleAttention(qv, kv, vv, cs.cu, hd.hq, hd.hkv, hd.dh, window, scale, &want, &tol);
        const std::string what = Str("attention T/hq/hkv/dh/window", {t, hd.hq, hd.hkv, hd.dh, window}) + " scale " + std::to_string(scale);
        ASSERT_TRUE(Within(out.data(), want, tol, what));
        ASSERT_TRUE(out.CanaryIntact());
        if (GetParam() == Isa::kGeneric && t <= 100) {  // the direct scalar oracle too
          std::vector<float> r(qv.size());
          reference::Attention(qv.data(), kv.data(), vv.data(), cs.cu.data(), static_cast<int64_t>(cs.cu.size()) - 1,
                               hd.hq, hd.hkv, hd.dh, window, scale, r.data());
          ASSERT_TRUE(Within(r.data(), want, tol, what + " (reference::Attention)"));
        }
      }
    }
  }
}

TEST_P(IsaTest, AttentionIllConditionedAndErrors) {
  ThreadPool pool(2);
  Ops ops(table(), pool);
  const int64_t hq = 3, hkv = 1, dh = 256;
  const std::vector<int32_t> cu = {0, 40, 45};
  const int64_t t = 45;
  // Huge scores: softmax must subtract the max (no inf/NaN) and pick the argmax.
  std::vector<float> qv = MakeData(static_cast<size_t>(t * hq * dh), Fill::kNormal, 1);
  std::vector<float> kv = MakeData(static_cast<size_t>(t * hkv * dh), Fill::kNormal, 2);
  const std::vector<float> vv = MakeData(static_cast<size_t>(t * hkv * dh), Fill::kNormal, 3);
  for (float& x : qv) x *= 100.0f;
  std::vector<float> out(qv.size());
  ASSERT_TRUE(ops.Attention(qv.data(), kv.data(), vv.data(), t, cu, hq, hkv, dh, -1, 1.0f, out.data()).ok());
  std::vector<double> want, tol;
  OracleAttention(qv, kv, vv, cu, hq, hkv, dh, -1, 1.0f, &want, &tol);
  for (float x : out) ASSERT_TRUE(std::isfinite(x));
  EXPECT_TRUE(Within(out.data(), want, tol, "huge scores"));
  // Zero queries: uniform average of the visible values.
  std::fill(qv.begin(), qv.end(), 0.0f);
  ASSERT_TRUE(ops.Attention(qv.data(), kv.data(), vv.data(), t, cu, hq, hkv, dh, 2, 0.0625f, out.data()).ok());
  OracleAttention(qv, kv, vv, cu, hq, hkv, dh, 2, 0.0625f, &want, &tol);
  EXPECT_TRUE(Within(out.data(), want, tol, "zero queries, window 2"));
  // Bad cu_seqlens / heads.
  const float* q = qv.data();
  auto code = [&](std::vector<int32_t> c, int64_t tt, int64_t h, int64_t hk) {
    return ops.Attention(q, kv.data(), vv.data(), tt, c, h, hk, dh, -1, 1.0f, out.data()).code();
  };
  EXPECT_EQ(code({}, 0, 3, 1), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({1, 5}, 5, 3, 1), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({0, 5, 3}, 3, 3, 1), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({0, 5}, 6, 3, 1), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({0, 5}, 5, 3, 2), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({0, 0}, 0, 3, 1), StatusCode::kOk);
  // A window wider than any sequence equals global attention (and must not overflow).
  std::vector<float> global(out.size()), wide(out.size());
  ASSERT_TRUE(ops.Attention(qv.data(), kv.data(), vv.data(), t, cu, hq, hkv, dh, -1, 0.0625f, global.data()).ok());
  ASSERT_TRUE(ops.Attention(qv.data(), kv.data(), vv.data(), t, cu, hq, hkv, dh, INT64_MAX, 0.0625f, wide.data()).ok());
  EXPECT_TRUE(BitwiseEqual(wide.data(), global.data(), global.size(), "huge window"));
}

TEST_P(IsaTest, MeanPoolAndL2NormalizeOps) {
  ThreadPool pool(2);
  Ops ops(table(), pool);
  const int64_t d = 768;
  const std::vector<int32_t> cu = {0, 1, 1, 8, 130};
  const std::vector<float> xv = MakeData(static_cast<size_t>(cu.back() * d), Fill::kWideRange, 4);
  Guarded<float> x(xv.size(), xv), out(4 * static_cast<size_t>(d));
  ASSERT_TRUE(ops.MeanPool(x.data(), d, cu, out.data()).ok());
  std::vector<double> want(out.size(), 0.0), tol(out.size());
  for (size_t s = 0; s + 1 < cu.size(); ++s)
    for (int64_t c = 0; c < d; ++c) {
      double acc = 0;
      for (int64_t t = cu[s]; t < cu[s + 1]; ++t) acc += xv[t * d + c];
      want[s * d + c] = cu[s + 1] > cu[s] ? acc / (cu[s + 1] - cu[s]) : 0.0;
      tol[s * d + c] = kU * std::fabs(want[s * d + c]) + 1e-300;
    }
  EXPECT_TRUE(Within(out.data(), want, tol, "mean pool"));
  for (int64_t c = 0; c < d; ++c) EXPECT_EQ(out[d + c], 0.0f);  // empty sequence
  EXPECT_TRUE(out.CanaryIntact());
  EXPECT_EQ(ops.MeanPool(x.data(), d, std::vector<int32_t>{0, 5, 4}, out.data()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ops.MeanPool(x.data(), d, std::vector<int32_t>{}, out.data()).code(), StatusCode::kInvalidArgument);

  ops.L2Normalize(out.data(), 4, d);
  for (int64_t s = 0; s < 4; ++s) {
    double ss = 0;
    for (int64_t c = 0; c < d; ++c) ss += static_cast<double>(out[s * d + c]) * out[s * d + c];
    if (s == 1) {
      EXPECT_EQ(ss, 0.0);  // zero vector stays zero
    } else {
      EXPECT_NEAR(ss, 1.0, 1e-6);
    }
  }
}

// ============================================================================
// Threads: any pool size gives bit-identical results.

TEST_P(IsaTest, MultiThreadedEqualsSingleThreaded) {
  ThreadPool p1(1), p2(2), p3(3);
  Ops o1(table(), p1), o2(table(), p2), o3(table(), p3);
  Ops* multi[] = {&o2, &o3};
  const int64_t k = 768;
  const TestWeight wq8 = MakeWeight(DType::kQ8_0, k, 1152, Fill::kNormal, 1);
  const TestWeight wf = MakeWeight(DType::kF32, k, 264, Fill::kNormal, 2);
  Result<PackedMatrix> pq = PackMatrix(wq8.view()), pf = PackMatrix(wf.view());
  ASSERT_TRUE(pq.ok() && pf.ok());
  for (int64_t m : {1, 7, 130}) {
    const std::vector<float> xv = MakeData(static_cast<size_t>(m * k), Fill::kNormal, m);
    for (const PackedMatrix* pm : {&*pq, &*pf}) {
      std::vector<float> y1(static_cast<size_t>(m * pm->n)), yn(y1.size());
      o1.MatMul(*pm, xv.data(), m, y1.data());
      for (Ops* o : multi) {
        o->MatMul(*pm, xv.data(), m, yn.data());
        ASSERT_TRUE(BitwiseEqual(yn.data(), y1.data(), y1.size(), Str("matmul threads", {o->pool().size(), m, pm->n})));
      }
    }
    const std::vector<float> gv = MakeData(static_cast<size_t>(k), Fill::kNormal, 3);
    std::vector<float> r1(xv.size()), rn(xv.size());
    o1.RmsNorm(xv.data(), m, k, gv.data(), 1e-6f, r1.data());
    for (Ops* o : multi) {
      o->RmsNorm(xv.data(), m, k, gv.data(), 1e-6f, rn.data());
      ASSERT_TRUE(BitwiseEqual(rn.data(), r1.data(), r1.size(), "rmsnorm threads"));
    }
    o1.GeGlu(xv.data(), gv.data(), std::min<int64_t>(k, m * k), r1.data());
    for (Ops* o : multi) {
      o->GeGlu(xv.data(), gv.data(), std::min<int64_t>(k, m * k), rn.data());
      ASSERT_TRUE(BitwiseEqual(rn.data(), r1.data(), static_cast<size_t>(k), "geglu threads"));
    }
  }
  const std::vector<int32_t> cu = {0, 3, 70, 300, 301};
  const int64_t t = cu.back(), hq = 3, dh = 256;
  const std::vector<float> qv = MakeData(static_cast<size_t>(t * hq * dh), Fill::kNormal, 5);
  const std::vector<float> kv = MakeData(static_cast<size_t>(t * dh), Fill::kNormal, 6);
  const std::vector<float> vv = MakeData(static_cast<size_t>(t * dh), Fill::kNormal, 7);
  for (int64_t window : {-1, 20}) {
    std::vector<float> a1(qv.size()), an(qv.size());
    ASSERT_TRUE(o1.Attention(qv.data(), kv.data(), vv.data(), t, cu, hq, 1, dh, window, 0.0625f, a1.data()).ok());
    for (Ops* o : multi) {
      ASSERT_TRUE(o->Attention(qv.data(), kv.data(), vv.data(), t, cu, hq, 1, dh, window, 0.0625f, an.data()).ok());
      ASSERT_TRUE(BitwiseEqual(an.data(), a1.data(), a1.size(), "attention threads"));
    }
    std::vector<float> m1(4 * hq * dh), mn(m1.size());
    ASSERT_TRUE(o1.MeanPool(a1.data(), hq * dh, cu, m1.data()).ok());
    for (Ops* o : multi) {
      ASSERT_TRUE(o->MeanPool(a1.data(), hq * dh, cu, mn.data()).ok());
      ASSERT_TRUE(BitwiseEqual(mn.data(), m1.data(), m1.size(), "mean pool threads"));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllSupportedIsas, IsaTest, ::testing::ValuesIn(SupportedIsas()), IsaParamName);

// ============================================================================
// PackMatrix input validation

TEST(PackMatrix, RejectsBadViews) {
  const TestWeight w = MakeWeight(DType::kF32, 32, 4, Fill::kNormal, 1);
  TensorView v = w.view();
  v.ne[2] = 2;
  v.n_dims = 3;
  EXPECT_EQ(PackMatrix(v).status().code(), StatusCode::kInvalidArgument);
  v = w.view();
  v.nbytes += 4;
  EXPECT_EQ(PackMatrix(v).status().code(), StatusCode::kInvalidArgument);
  v = w.view();
  v.data = nullptr;
  EXPECT_EQ(PackMatrix(v).status().code(), StatusCode::kInvalidArgument);
  v = w.view();
  v.dtype = DType::kQ5_0;
  EXPECT_EQ(PackMatrix(v).status().code(), StatusCode::kUnsupported);
  const TestWeight q = MakeWeight(DType::kQ8_0, 64, 3, Fill::kNormal, 2);
  v = q.view();
  v.ne[0] = 40;  // not a whole number of 32-blocks
  EXPECT_EQ(PackMatrix(v).status().code(), StatusCode::kInvalidArgument);
  v = q.view();
  Result<PackedMatrix> pm = PackMatrix(v);
  ASSERT_TRUE(pm.ok());
  EXPECT_EQ(pm->panels, 1);
  EXPECT_EQ(pm->packed_bytes(), static_cast<size_t>(2 * (512 + 32)));
}

// The AMX variants exist exactly where this process may run AMX
// (cpu/dispatch.h); the level's own list never holds them (whether the tuner
// measures them is the engine's choice: engine/tuning.h).
TEST(AmxVariants, RunnableExactlyWhereTheHostAllowsAmx) {
  EXPECT_EQ(FindGemmQ8Variant(Isa::kAvx512Vnni, "amx16x1") != nullptr, AmxInt8Usable());
  EXPECT_EQ(AmxGemmQ8Variants().empty(), !AmxInt8Usable());
  for (const GemmQ8Variant& v : GemmQ8VariantsFor(Isa::kAvx512Vnni))
    EXPECT_EQ(std::string(v.name).rfind("amx", 0), std::string::npos) << v.name;
}

}  // namespace
}  // namespace gembed
