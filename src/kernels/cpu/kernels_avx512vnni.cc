// Placeholder: forwards to the scalar reference until the avx512vnni kernels land.
#include "kernels/cpu/isa_kernels.h"
#include "kernels/reference.h"

namespace gembed::avx512vnni {

void QuantizeRowQ8(const float* x, int64_t k, int8_t* qs, float* d, int32_t* corr) { reference::QuantizeRowQ8(x, k, qs, d, corr); }
void GemmQ8(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd, const int32_t* xcorr, const uint8_t* wq, const uint16_t* wd, float* y, int64_t ldy) { reference::GemmQ8(m, n, nb, xq, xd, xcorr, wq, wd, y, ldy); }
void GemmF32(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, int64_t bps, float* c, int64_t ldc) { reference::GemmF32(m, n, k, a, lda, b, ldb, bps, c, ldc); }
void RmsNormRow(const float* x, int64_t d, const float* gamma, float eps, float* out) { reference::RmsNormRow(x, d, gamma, eps, out); }
void RmsNormAddRow(const float* y, int64_t d, const float* gamma, float eps, float* x) { reference::RmsNormAddRow(y, d, gamma, eps, x); }
void L2NormalizeRow(float* x, int64_t d) { reference::L2NormalizeRow(x, d); }
void RopeNeoxRow(float* x, int64_t heads, int64_t dh, const float* cs, const float* sn) { reference::RopeNeoxRow(x, heads, dh, cs, sn); }
float SoftmaxRow(float* s, int64_t n, int64_t lo, int64_t hi, float scale) { return reference::SoftmaxRow(s, n, lo, hi, scale); }
void GeGlu(const float* gate, const float* up, int64_t n, float* out) { reference::GeGlu(gate, up, n, out); }
void Add(const float* a, const float* b, int64_t n, float* out) { reference::Add(a, b, n, out); }
void Scale(const float* x, int64_t n, float s, float* out) { reference::Scale(x, n, s, out); }
void F16ToF32(const uint16_t* src, int64_t n, float s, float* out) { reference::F16ToF32(src, n, s, out); }
void Bf16ToF32(const uint16_t* src, int64_t n, float s, float* out) { reference::Bf16ToF32(src, n, s, out); }
void Q8_0ToF32(const BlockQ8_0* src, int64_t n, float s, float* out) { reference::Q8_0ToF32(src, n, s, out); }

}  // namespace gembed::avx512vnni
