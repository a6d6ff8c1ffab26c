// AVX-512 (F/BW/VL/DQ + VNNI) GEMM kernels: Q8_0 x Q8_0 with vpdpbusd, and
// fp32 with FMA. Built with -mavx512* flags (see cmake/GembedCompile.cmake);
// only called after dispatch confirmed CPU and OS support.
//
// Everything except the table entries has internal linkage (anonymous
// namespace), so no code compiled here can be picked by the linker for a
// baseline caller.
// GCC 12's AVX-512 headers (reduce / extract helpers built on _mm512_undefined_*)
// trip -W(maybe-)uninitialized; the values are fully defined.
#if defined(__GNUC__) && !defined(__clang__)  // GCC-only warning group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/isa_kernels.h"

namespace gembed::avx512vnni {
namespace {

constexpr int64_t kPanel = 16;             // output columns per panel (one zmm)
constexpr int64_t kQ8PanelBytes = 512;     // int8 bytes per (panel, block)
// Rows of the activation kept hot while a thread walks its panel range: the
// chunk (<= 288 x k bytes, <= 324 KiB) stays in L2 while each 32-column
// weight strip (32 x k bytes) is reused from L1 by every 6-row tile of the
// chunk; the weights are streamed once per chunk.
constexpr int64_t kRowChunk = 288;
// fp32 GEMM k-block and row chunk (see GemmF32): 96 rows = one attention
// item (32 queries x 3 heads), so the B strip is streamed once per item.
constexpr int64_t kF32KBlock = 256;
constexpr int64_t kF32RowChunk = 96;

inline int32_t Load32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline __mmask16 TailMask(int64_t cols) {
  return cols >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << cols) - 1u);
}

// ---- Q8 ---------------------------------------------------------------------
// One MR x (NR*16) output tile over all nb blocks.
// Per block: int32 accumulators start at the activation's -128*sum(x) (which
// cancels the +128 weight bias), 8 vpdpbusd steps of 4 k each (weights u8 in
// a register, 4 activation bytes broadcast from memory), then
// acc = fma(float(dot) * d_w, d_x, acc): the same operation order as the
// scalar reference, hence bit-identical results.
template <int MR, int NR>
inline void Q8Tile(int64_t nb, const int8_t* xq, const float* xd, const int32_t* xc,
                   const uint8_t* wq, const uint16_t* wd, float* y, int64_t ldy, int64_t ncols) {
  const int64_t kx = nb * 32;
  const int64_t wq_ps = nb * kQ8PanelBytes;
  const int64_t wd_ps = nb * kPanel;
  __m512 acc[MR][NR];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) acc[m][n] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m512i ia[MR][NR];
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m512i c = _mm512_set1_epi32(xc[m * nb + b]);
      for (int n = 0; n < NR; ++n) ia[m][n] = c;
    }
    const uint8_t* wb = wq + b * kQ8PanelBytes;
    const int8_t* xb = xq + b * 32;
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
      __m512i w[NR];
      for (int n = 0; n < NR; ++n)
        w[n] = _mm512_load_si512(reinterpret_cast<const void*>(wb + n * wq_ps + g * 64));
#pragma GCC unroll 8
      for (int m = 0; m < MR; ++m) {
        const __m512i xv = _mm512_set1_epi32(Load32(xb + m * kx + g * 4));
        for (int n = 0; n < NR; ++n) ia[m][n] = _mm512_dpbusd_epi32(ia[m][n], w[n], xv);
      }
    }
    __m512 dw[NR];
    for (int n = 0; n < NR; ++n)
      dw[n] = _mm512_cvtph_ps(
          _mm256_load_si256(reinterpret_cast<const __m256i*>(wd + n * wd_ps + b * kPanel)));
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m512 dx = _mm512_set1_ps(xd[m * nb + b]);
      for (int n = 0; n < NR; ++n)
        acc[m][n] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(ia[m][n]), dw[n]), dx,
                                    acc[m][n]);
    }
  }
  for (int n = 0; n < NR; ++n) {
    const int64_t cols = ncols - n * kPanel;
    if (cols <= 0) break;
    const __mmask16 mask = TailMask(cols);
    for (int m = 0; m < MR; ++m) _mm512_mask_storeu_ps(y + m * ldy + n * kPanel, mask, acc[m][n]);
  }
}

template <int NR>
inline void Q8Rows(int64_t mr, int64_t nb, const int8_t* xq, const float* xd, const int32_t* xc,
                   const uint8_t* wq, const uint16_t* wd, float* y, int64_t ldy, int64_t ncols) {
  switch (mr) {
    case 6: Q8Tile<6, NR>(nb, xq, xd, xc, wq, wd, y, ldy, ncols); break;
    case 5: Q8Tile<5, NR>(nb, xq, xd, xc, wq, wd, y, ldy, ncols); break;
    case 4: Q8Tile<4, NR>(nb, xq, xd, xc, wq, wd, y, ldy, ncols); break;
    case 3: Q8Tile<3, NR>(nb, xq, xd, xc, wq, wd, y, ldy, ncols); break;
    case 2: Q8Tile<2, NR>(nb, xq, xd, xc, wq, wd, y, ldy, ncols); break;
    default: Q8Tile<1, NR>(nb, xq, xd, xc, wq, wd, y, ldy, ncols); break;
  }
}

// ---- fp32 -------------------------------------------------------------------
// One MR x (NR*16) tile: per k, NR panel rows loaded (masked past n), MR
// broadcasts of A, MR*NR FMAs. Each output is one sequential FMA chain over k.
// With `accumulate`, the tile continues the sums already in c (k-blocking:
// an fp32 store and reload in between does not change any rounding).
template <int MR, int NR>
inline void F32Tile(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                    int64_t bps, float* c, int64_t ldc, int64_t ncols, bool accumulate) {
  __m512 acc[MR][NR];
  __mmask16 mask[NR];
#pragma GCC unroll 8
  for (int n = 0; n < NR; ++n) {
    const int64_t cols = ncols - n * kPanel;
    mask[n] = cols <= 0 ? static_cast<__mmask16>(0) : TailMask(cols);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m)
      acc[m][n] = accumulate ? _mm512_maskz_loadu_ps(mask[n], c + m * ldc + n * kPanel) : _mm512_setzero_ps();
  }
  for (int64_t kk = 0; kk < k; ++kk) {
    __m512 bv[NR];
#pragma GCC unroll 8
    for (int n = 0; n < NR; ++n) bv[n] = _mm512_maskz_loadu_ps(mask[n], b + n * bps + kk * ldb);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m512 av = _mm512_set1_ps(a[m * lda + kk]);
#pragma GCC unroll 8
      for (int n = 0; n < NR; ++n) acc[m][n] = _mm512_fmadd_ps(av, bv[n], acc[m][n]);
    }
  }
#pragma GCC unroll 8
  for (int n = 0; n < NR; ++n)
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) _mm512_mask_storeu_ps(c + m * ldc + n * kPanel, mask[n], acc[m][n]);
}

template <int NR>
inline void F32Rows(int64_t mr, int64_t k, const float* a, int64_t lda, const float* b,
                    int64_t ldb, int64_t bps, float* c, int64_t ldc, int64_t ncols, bool accumulate) {
  switch (mr) {
    case 8: F32Tile<8, NR>(k, a, lda, b, ldb, bps, c, ldc, ncols, accumulate); break;
    case 7: F32Tile<7, NR>(k, a, lda, b, ldb, bps, c, ldc, ncols, accumulate); break;
    case 6: F32Tile<6, NR>(k, a, lda, b, ldb, bps, c, ldc, ncols, accumulate); break;
    case 5: F32Tile<5, NR>(k, a, lda, b, ldb, bps, c, ldc, ncols, accumulate); break;
    case 4: F32Tile<4, NR>(k, a, lda, b, ldb, bps, c, ldc, ncols, accumulate); break;
    case 3: F32Tile<3, NR>(k, a, lda, b, ldb, bps, c, ldc, ncols, accumulate); break;
    case 2: F32Tile<2, NR>(k, a, lda, b, ldb, bps, c, ldc, ncols, accumulate); break;
    default: F32Tile<1, NR>(k, a, lda, b, ldb, bps, c, ldc, ncols, accumulate); break;
  }
}

}  // namespace

void GemmQ8(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd,
            const int32_t* xcorr, const uint8_t* wq, const uint16_t* wd, float* y, int64_t ldy) {
  // 6 x 2 tiles: 12 independent vpdpbusd chains (latency 5 x 2 per cycle
  // needs >= 10 in flight); 12 rows = 2 tiles. Measured ~57% of the vpdpbusd
  // peak at M >= 128: per 32-k block every output also needs cvt + mul + fma
  // (the Q8_0 scales), which caps this loop near 8/11 of the peak.
  constexpr int64_t kMr = 6;
  const int64_t kx = nb * 32;
  const int64_t n_panels = (n + kPanel - 1) / kPanel;
  for (int64_t m0 = 0; m0 < m; m0 += kRowChunk) {
    const int64_t m1 = m0 + kRowChunk < m ? m0 + kRowChunk : m;
    for (int64_t p = 0; p < n_panels; p += 2) {
      const uint8_t* wqp = wq + p * nb * kQ8PanelBytes;
      const uint16_t* wdp = wd + p * nb * kPanel;
      const int64_t ncols = n - p * kPanel;
      for (int64_t i = m0; i < m1; i += kMr) {
        const int64_t mr = m1 - i < kMr ? m1 - i : kMr;
        if (p + 1 < n_panels) {
          Q8Rows<2>(mr, nb, xq + i * kx, xd + i * nb, xcorr + i * nb, wqp, wdp, y + i * ldy + p * kPanel, ldy, ncols);
        } else {
          Q8Rows<1>(mr, nb, xq + i * kx, xd + i * nb, xcorr + i * nb, wqp, wdp, y + i * ldy + p * kPanel, ldy, ncols);
        }
      }
    }
  }
}

void GemmF32(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
             int64_t ldb, int64_t bps, float* c, int64_t ldc) {
  constexpr int64_t kMr = 8;
  const int64_t n_panels = (n + kPanel - 1) / kPanel;
  if (m <= 2) {
    // Few rows: 4 panels per tile, so there are enough independent FMA
    // chains (m * 4) to hide the FMA latency. B is streamed once anyway.
    int64_t p = 0;
    for (; p + 4 <= n_panels; p += 4) {
      if (m == 2) {
        F32Tile<2, 4>(k, a, lda, b + p * bps, ldb, bps, c + p * kPanel, ldc, n - p * kPanel, false);
      } else {
        F32Tile<1, 4>(k, a, lda, b + p * bps, ldb, bps, c + p * kPanel, ldc, n - p * kPanel, false);
      }
    }
    for (; p < n_panels; ++p)
      F32Rows<1>(m, k, a, lda, b + p * bps, ldb, bps, c + p * kPanel, ldc, n - p * kPanel, false);
    return;
  }
  // Blocks of kF32KBlock along k keep the B strip (kF32KBlock x 32 floats)
  // in L1 and the A chunk in L2 while every row tile reuses them; without
  // it a long k (attention's P.V over 2048 keys) re-streams B from L3.
  for (int64_t m0 = 0; m0 < m; m0 += kF32RowChunk) {
    const int64_t m1 = m0 + kF32RowChunk < m ? m0 + kF32RowChunk : m;
    for (int64_t k0 = 0; k0 < k; k0 += kF32KBlock) {
      const int64_t kc = k - k0 < kF32KBlock ? k - k0 : kF32KBlock;
      const bool acc = k0 > 0;
      for (int64_t p = 0; p < n_panels; p += 2) {
        const int64_t ncols = n - p * kPanel;
        const float* bp = b + p * bps + k0 * ldb;
        for (int64_t i = m0; i < m1; i += kMr) {
          const int64_t mr = m1 - i < kMr ? m1 - i : kMr;
          if (p + 1 < n_panels) {
            F32Rows<2>(mr, kc, a + i * lda + k0, lda, bp, ldb, bps, c + i * ldc + p * kPanel, ldc, ncols, acc);
          } else {
            F32Rows<1>(mr, kc, a + i * lda + k0, lda, bp, ldb, bps, c + i * ldc + p * kPanel, ldc, ncols, acc);
          }
        }
      }
    }
  }
}

}  // namespace gembed::avx512vnni
