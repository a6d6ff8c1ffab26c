// ISA detection / selection, and base/half.h's scalar fp16 / bf16 conversions
// checked against the hardware conversion instructions (F16C, AVX-512 BF16).
#include <gtest/gtest.h>
#include <immintrin.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "base/half.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/kernels.h"

namespace gembed {
namespace {

TEST(Dispatch, SupportedIsasAscendingFromGeneric) {
  const std::vector<Isa> isas = SupportedIsas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Isa::kGeneric);
  for (size_t i = 1; i < isas.size(); ++i) EXPECT_LT(static_cast<int>(isas[i - 1]), static_cast<int>(isas[i]));
  EXPECT_EQ(BestIsa(), isas.back());
  for (Isa isa : isas) EXPECT_TRUE(IsaSupported(isa));
}

// GCC's own CPU model (libgcc's __builtin_cpu_supports) is an independent
// oracle for the CPUID bits; it also checks the OS state via XGETBV.
TEST(Dispatch, AgreesWithCompilerCpuModel) {
  __builtin_cpu_init();
  const CpuFeatures f = DetectCpuFeatures();
  EXPECT_EQ(f.avx2 && f.os_ymm, __builtin_cpu_supports("avx2") != 0);
  EXPECT_EQ(f.fma && f.os_ymm, __builtin_cpu_supports("fma") != 0);
  EXPECT_EQ(f.avx512f && f.os_zmm, __builtin_cpu_supports("avx512f") != 0);
  EXPECT_EQ(f.avx512vnni && f.os_zmm, __builtin_cpu_supports("avx512vnni") != 0);
  EXPECT_EQ(IsaSupported(Isa::kAvx512Vnni),
            __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx2") &&
                __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2"));
}

TEST(Dispatch, OsStateGatesTheLevels) {
  CpuFeatures f;
  f.avx2 = f.fma = f.f16c = f.bmi2 = true;
  f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = f.avx512vnni = true;
  f.os_ymm = true;
  f.os_zmm = false;  // CPU has AVX-512 but the OS does not save ZMM state
  EXPECT_TRUE(IsaSupported(Isa::kAvx2, f));
  EXPECT_FALSE(IsaSupported(Isa::kAvx512Vnni, f));
  f.os_zmm = true;
  EXPECT_TRUE(IsaSupported(Isa::kAvx512Vnni, f));
  f.os_ymm = false;
  EXPECT_FALSE(IsaSupported(Isa::kAvx2, f));
  EXPECT_TRUE(IsaSupported(Isa::kGeneric, f));
}

TEST(Dispatch, NamesRoundTrip) {
  for (Isa isa : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512Vnni}) {
    EXPECT_EQ(IsaFromName(IsaName(isa)), isa);
  }
  EXPECT_EQ(IsaFromName("AVX2"), Isa::kAvx2);
  EXPECT_EQ(IsaFromName("avx512"), Isa::kAvx512Vnni);
  EXPECT_FALSE(IsaFromName("sse9").has_value());
  EXPECT_FALSE(IsaFromName("").has_value());
}

TEST(Dispatch, RequestOverride) {
  std::string note;
  EXPECT_EQ(SelectIsaFromRequest("", &note), BestIsa());
  EXPECT_TRUE(note.empty());
  EXPECT_EQ(SelectIsaFromRequest("generic", &note), Isa::kGeneric);
  EXPECT_TRUE(note.empty());
  EXPECT_EQ(SelectIsaFromRequest("bogus", &note), BestIsa());
  EXPECT_NE(note.find("not one of"), std::string::npos) << note;
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512Vnni}) {
    note.clear();
    const Isa got = SelectIsaFromRequest(std::string(IsaName(isa)), &note);
    if (IsaSupported(isa)) {
      EXPECT_EQ(got, isa);
      EXPECT_TRUE(note.empty());
    } else {
      EXPECT_EQ(got, BestIsa());
      EXPECT_NE(note.find("does not support"), std::string::npos) << note;
    }
  }
}

TEST(Dispatch, EnvironmentOverride) {
  const char* old = std::getenv("GEMBED_ISA");
  const std::string saved = old ? old : "";
  setenv("GEMBED_ISA", "generic", 1);
  EXPECT_EQ(SelectIsa(), Isa::kGeneric);
  setenv("GEMBED_ISA", "no-such-isa", 1);
  std::string note;
  EXPECT_EQ(SelectIsa(&note), BestIsa());
  EXPECT_FALSE(note.empty());
  unsetenv("GEMBED_ISA");
  EXPECT_EQ(SelectIsa(), BestIsa());
  if (old) setenv("GEMBED_ISA", saved.c_str(), 1);
}

TEST(Dispatch, TablesAreComplete) {
  for (Isa isa : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512Vnni}) {
    const KernelTable& t = GetKernelTable(isa);
    EXPECT_EQ(t.isa, isa);
    EXPECT_NE(t.quantize_row_q8, nullptr);
    EXPECT_NE(t.gemm_q8, nullptr);
    EXPECT_NE(t.gemm_f32, nullptr);
    EXPECT_NE(t.rmsnorm_row, nullptr);
    EXPECT_NE(t.rmsnorm_add_row, nullptr);
    EXPECT_NE(t.l2_normalize_row, nullptr);
    EXPECT_NE(t.rope_neox_row, nullptr);
    EXPECT_NE(t.softmax_row, nullptr);
    EXPECT_NE(t.geglu, nullptr);
    EXPECT_NE(t.add, nullptr);
    EXPECT_NE(t.scale, nullptr);
    EXPECT_NE(t.f16_to_f32, nullptr);
    EXPECT_NE(t.bf16_to_f32, nullptr);
    EXPECT_NE(t.q8_0_to_f32, nullptr);
  }
}

// ---- base/half.h vs hardware ------------------------------------------------

__attribute__((target("f16c"))) float HwF16ToF32(uint16_t h) { return _cvtsh_ss(h); }
__attribute__((target("f16c"))) uint16_t HwF32ToF16(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
__attribute__((target("avx512f,avx512bf16,avx512vl"))) uint16_t HwF32ToBf16(float f) {
  const __m128bh r = _mm_cvtneps_pbh(_mm_set1_ps(f));
  uint16_t out;
  std::memcpy(&out, &r, 2);
  return out;
}

bool IsNanF16(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }
bool IsNanBf16(uint16_t h) { return (h & 0x7f80u) == 0x7f80u && (h & 0x7fu) != 0; }

TEST(Half, F16ToF32ExhaustiveVsF16c) {
  if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "host has no F16C";
  int mismatches = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    const float sw = F16ToF32(static_cast<uint16_t>(h));
    const float hw = HwF16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(hw)) {
      if (!std::isnan(sw) && ++mismatches < 5) ADD_FAILURE() << "fp16 " << h << ": expected NaN";
      continue;
    }
    if (BitsFromF32(sw) != BitsFromF32(hw) && ++mismatches < 5)
      ADD_FAILURE() << "fp16 0x" << std::hex << h << ": sw " << sw << " hw " << hw;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(Half, F32ToF16RoundToNearestEvenVsF16c) {
  if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "host has no F16C";
  std::mt19937_64 rng(123);
  std::uniform_int_distribution<uint32_t> any_bits;
  std::uniform_int_distribution<uint32_t> near_fp16(0x33000000u - 0x100000u, 0x47800000u + 0x100000u);
  int mismatches = 0;
  auto check = [&](uint32_t bits) {
    const float f = F32FromBits(bits);
    const uint16_t sw = F32ToF16(f), hw = HwF32ToF16(f);
    if (IsNanF16(hw)) {
      if (!IsNanF16(sw) && ++mismatches < 5) ADD_FAILURE() << "bits 0x" << std::hex << bits << ": expected NaN";
      return;
    }
    if (sw != hw && ++mismatches < 5)
      ADD_FAILURE() << "f32 bits 0x" << std::hex << bits << " (" << f << "): sw 0x" << sw << " hw 0x" << hw;
  };
  for (int i = 0; i < 2000000; ++i) {
    const uint32_t sign = (i & 1) ? 0x80000000u : 0u;
    check(any_bits(rng));
    check(near_fp16(rng) | sign);
  }
  // Exact ties between two fp16 values (normal and subnormal range) must go to even.
  for (uint32_t h = 0; h < 0x7c00u; ++h) {
    const double lo = F16ToF32(static_cast<uint16_t>(h));
    const double hi = F16ToF32(static_cast<uint16_t>(h + 1));
    const float mid = static_cast<float>((lo + hi) / 2);  // exact in fp32
    check(BitsFromF32(mid));
    check(BitsFromF32(-mid));
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(Half, F32ToBf16RoundToNearestEvenVsAvx512Bf16) {
  if (!__builtin_cpu_supports("avx512bf16")) GTEST_SKIP() << "host has no AVX512-BF16";
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<uint32_t> any_bits;
  int mismatches = 0, checked = 0;
  for (int i = 0; i < 2000000; ++i) {
    uint32_t bits = any_bits(rng);
    if (i % 4 == 0) bits = (bits & 0xffff0000u) | 0x8000u;  // exact ties
    const float f = F32FromBits(bits);
    // vcvtneps2bf16 treats denormal inputs as zero and flushes denormal
    // results (a documented hardware deviation), so those are not compared.
    if (std::fpclassify(f) == FP_SUBNORMAL) continue;
    const uint16_t sw = F32ToBf16(f), hw = HwF32ToBf16(f);
    if ((hw & 0x7f80u) == 0 && (hw & 0x7fu) != 0) continue;  // denormal result
    ++checked;
    if (IsNanBf16(hw)) {
      if (!IsNanBf16(sw) && ++mismatches < 5) ADD_FAILURE() << "expected NaN";
      continue;
    }
    if (sw != hw && ++mismatches < 5)
      ADD_FAILURE() << "f32 bits 0x" << std::hex << bits << ": sw 0x" << sw << " hw 0x" << hw;
  }
  EXPECT_GT(checked, 1000000);
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace gembed
