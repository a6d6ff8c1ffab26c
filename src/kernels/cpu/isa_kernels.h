// Entry points of the ISA-specific kernel files (declarations only).
//
// Each cpu/*_avx2.cc / *_avx512vnni.cc file is compiled with its own -m flags
// and defines these functions in its namespace; kernels.cc (baseline flags)
// collects them into KernelTables. Keep this header free of inline function
// definitions: an inline function compiled in an AVX-512 translation unit
// could be the copy the linker keeps for baseline callers too.
#pragma once

#include <cstdint>
#include <span>

#include "base/dtype.h"
#include "kernels/kernels.h"

#define GEMBED_DECLARE_ISA_KERNELS()                                                          \
  void QuantizeRowQ8(const float* x, int64_t k, int8_t* qs, float* d, int32_t* corr);        \
  /* the Q8 GEMM in its tile-shape variants; the first is the level's default */              \
  std::span<const GemmQ8Variant> GemmQ8Variants();                                           \
  void GemmF32(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, \
               int64_t ldb, int64_t b_panel_stride, float* c, int64_t ldc);                  \
  void RmsNormRow(const float* x, int64_t d, const float* gamma, float eps, float* out);     \
  void RmsNormAddRow(const float* y, int64_t d, const float* gamma, float eps, float* x);    \
  void L2NormalizeRow(float* x, int64_t d);                                                  \
  void RopeNeoxRow(float* x, int64_t heads, int64_t dh, const float* cs, const float* sn);   \
  float SoftmaxRow(float* s, int64_t n, int64_t lo, int64_t hi, float scale);                \
  void GeGlu(const float* gate, const float* up, int64_t n, float* out);                     \
  void Add(const float* a, const float* b, int64_t n, float* out);                           \
  void Scale(const float* x, int64_t n, float s, float* out);                                \
  void F16ToF32(const uint16_t* src, int64_t n, float s, float* out);                        \
  void Bf16ToF32(const uint16_t* src, int64_t n, float s, float* out);                       \
  void Q8_0ToF32(const BlockQ8_0* src, int64_t n, float s, float* out);

// The compressed-weight GEMMs (cpu/gemm_lowbit_*.cc).
#define GEMBED_DECLARE_LOWBIT_KERNELS()                                                                 \
  void GemmQ4(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd, const int32_t* xcorr, \
              const uint8_t* wq, const uint16_t* wd, const uint16_t* wm, float* y, int64_t ldy);        \
  void GemmQ8Sparse(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd,                \
                    const int32_t* xcorr, const uint8_t* wq, const uint16_t* wd, const int32_t* panel_ptr, \
                    const int32_t* blk, float* y, int64_t ldy);

namespace gembed::avx2 {
GEMBED_DECLARE_ISA_KERNELS()
GEMBED_DECLARE_LOWBIT_KERNELS()
}  // namespace gembed::avx2

namespace gembed::avx512vnni {
GEMBED_DECLARE_ISA_KERNELS()
GEMBED_DECLARE_LOWBIT_KERNELS()
}  // namespace gembed::avx512vnni

// Intel AMX (cpu/gemm_amx.cc): more gemm_q8 variants of the avx512vnni level,
// callable only where cpu/dispatch.h's AmxInt8Usable() says so (kernels/tune.h
// hands them out: AmxGemmQ8Variants).
namespace gembed::amx {
std::span<const GemmQ8Variant> GemmQ8Variants();
}  // namespace gembed::amx
