// Scalar reference kernels: the "generic" KernelTable level and the oracle
// the ISA kernels are tested against. Written for clarity, not speed; each
// function documents its shapes in kernels.h (same name, snake_case there).
//
// Also here: reference-only helpers that have no table entry (ggml's exact
// block_q8_0 quantiser, the direct attention and mean-pool oracles).
#pragma once

#include <cstdint>

#include "base/dtype.h"

namespace gembed::reference {

// ---- table entries (see KernelTable in kernels.h) -------------------------
void QuantizeRowQ8(const float* x, int64_t k, int8_t* qs, float* d, int32_t* corr);
void GemmQ8(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd,
            const int32_t* xcorr, const uint8_t* wq, const uint16_t* wd, float* y, int64_t ldy);
void GemmF32(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
             int64_t ldb, int64_t b_panel_stride, float* c, int64_t ldc);
void RmsNormRow(const float* x, int64_t d, const float* gamma, float eps, float* out);
void RmsNormAddRow(const float* y, int64_t d, const float* gamma, float eps, float* x);
void L2NormalizeRow(float* x, int64_t d);
void RopeNeoxRow(float* x, int64_t heads, int64_t dh, const float* cs, const float* sn);
float SoftmaxRow(float* s, int64_t n, int64_t lo, int64_t hi, float scale);
void GeGlu(const float* gate, const float* up, int64_t n, float* out);
void Add(const float* a, const float* b, int64_t n, float* out);
void Scale(const float* x, int64_t n, float s, float* out);
void F16ToF32(const uint16_t* src, int64_t n, float s, float* out);
void Bf16ToF32(const uint16_t* src, int64_t n, float s, float* out);
void Q8_0ToF32(const BlockQ8_0* src, int64_t n, float s, float* out);
void GemmQ4(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd, const int32_t* xcorr,
            const uint8_t* wq, const uint16_t* wd, const uint16_t* wm, float* y, int64_t ldy);
void GemmQ8Sparse(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd, const int32_t* xcorr,
                  const uint8_t* wq, const uint16_t* wd, const int32_t* panel_ptr, const int32_t* blk, float* y,
                  int64_t ldy);
void Q4_0ToF32(const BlockQ4_0* src, int64_t n, float s, float* out);
void Q4_1ToF32(const BlockQ4_1* src, int64_t n, float s, float* out);

// ---- reference-only helpers ------------------------------------------------
// ggml's quantize_row_q8_0_ref exactly: per 32-block d = max|x|/127,
// id = d ? 1/d : 0, q = roundf(x*id), d stored as fp16 (RNE). k % 32 == 0.
void QuantizeRowQ8_0(const float* x, int64_t k, BlockQ8_0* out);

// ggml's quantize_row_q4_0_ref / quantize_row_q4_1_ref exactly (k % 32 == 0):
// Q4_0: the element of largest magnitude `max` (sign kept), d = max / -8,
//   q = min(15, int8(x / d + 8.5)); Q4_1: d = (max - min) / 15, m = min,
//   q = min(15, int8((x - min) / d + 0.5)).
void QuantizeRowQ4_0(const float* x, int64_t k, BlockQ4_0* out);
void QuantizeRowQ4_1(const float* x, int64_t k, BlockQ4_1* out);

// ggml's roundf rule for the quantiser: round half away from zero.
float RoundHalfAway(float v);

// Direct scalar attention (no packing, no tiling): the oracle for
// Ops::Attention. Shapes as there; cu_seqlens has n_seqs + 1 valid entries.
void Attention(const float* q, const float* k, const float* v, const int32_t* cu_seqlens,
               int64_t n_seqs, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
               int64_t window, float scale, float* out);

// out [n_seqs x d] = per-sequence mean of x [T x d], double accumulation.
void MeanPool(const float* x, int64_t d, const int32_t* cu_seqlens, int64_t n_seqs, float* out);

}  // namespace gembed::reference
