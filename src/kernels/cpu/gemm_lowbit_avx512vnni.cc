// AVX-512 VNNI kernels for the compressed weight formats: 4-bit (Q4_0 /
// Q4_1) x Q8 activations, and block-sparse Q8 (zero tiles skipped). Kept apart
// from gemm_avx512vnni.cc (the dense Q8 / fp32 kernels); same tiling ideas
// and the same float operation order as the scalar references, so every
// result is bit-identical to reference.cc.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/isa_kernels.h"

namespace gembed::avx512vnni {
namespace {

constexpr int64_t kPanel = 16;
constexpr int64_t kQ4Bytes = 256;  // 4-bit bytes per (panel, block)
constexpr int64_t kQ8Bytes = 512;
constexpr int64_t kRowChunk = 288;  // activation rows kept in L2 per weight sweep

inline int32_t Load32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline __mmask16 TailMask(int64_t cols) {
  return cols >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << cols) - 1u);
}

// ---- 4-bit ------------------------------------------------------------------
// MR x (NR*16) tile. Per block and panel: 4 loads of 64 bytes; each gives the
// low-nibble operand (k 4g..4g+3, AND) and the high-nibble one (k 16+4g..,
// shift + AND): 12 integer ops feed 8 vpdpbusd per row. Q4_0's -8 offset
// enters as the accumulator's start value -8 * sum(x) = xcorr / 16 (xcorr =
// -128 * sum(x)); Q4_1 adds its min term with one more FMA per block.
template <int MR, int NR, bool kMin>
inline void Q4Tile(int64_t nb, const int8_t* xq, const float* xd, const int32_t* xc, const uint8_t* wq,
                   const uint16_t* wd, const uint16_t* wm, float* y, int64_t ldy, int64_t ncols) {
  const int64_t kx = nb * 32;
  const int64_t wq_ps = nb * kQ4Bytes;
  const int64_t wd_ps = nb * kPanel;
  const __m512i nib = _mm512_set1_epi8(0x0f);
  __m512 acc[MR][NR];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) acc[m][n] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m512i ia[MR][NR];
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m512i c = kMin ? _mm512_setzero_si512() : _mm512_set1_epi32(xc[m * nb + b] >> 4);
      for (int n = 0; n < NR; ++n) ia[m][n] = c;
    }
    const uint8_t* wb = wq + b * kQ4Bytes;
    const int8_t* xb = xq + b * 32;
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) {
      __m512i lo[NR], hi[NR];
      for (int n = 0; n < NR; ++n) {
        const __m512i v = _mm512_load_si512(reinterpret_cast<const void*>(wb + n * wq_ps + g * 64));
        lo[n] = _mm512_and_si512(v, nib);
        hi[n] = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
      }
#pragma GCC unroll 8
      for (int m = 0; m < MR; ++m) {
        const __m512i xl = _mm512_set1_epi32(Load32(xb + m * kx + g * 4));
        const __m512i xh = _mm512_set1_epi32(Load32(xb + m * kx + 16 + g * 4));
        for (int n = 0; n < NR; ++n) {
          ia[m][n] = _mm512_dpbusd_epi32(ia[m][n], lo[n], xl);
          ia[m][n] = _mm512_dpbusd_epi32(ia[m][n], hi[n], xh);
        }
      }
    }
    __m512 dw[NR], mw[NR];
    for (int n = 0; n < NR; ++n) {
      dw[n] = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(wd + n * wd_ps + b * kPanel)));
      if (kMin)
        mw[n] = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(wm + n * wd_ps + b * kPanel)));
    }
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const float dxf = xd[m * nb + b];
      const __m512 dx = _mm512_set1_ps(dxf);
      for (int n = 0; n < NR; ++n)
        acc[m][n] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(ia[m][n]), dw[n]), dx, acc[m][n]);
      if (kMin) {
        const __m512 dxs = _mm512_set1_ps(dxf * static_cast<float>(-(xc[m * nb + b] / 128)));
        for (int n = 0; n < NR; ++n) acc[m][n] = _mm512_fmadd_ps(mw[n], dxs, acc[m][n]);
      }
    }
  }
  for (int n = 0; n < NR; ++n) {
    const int64_t cols = ncols - n * kPanel;
    if (cols <= 0) break;
    const __mmask16 mask = TailMask(cols);
    for (int m = 0; m < MR; ++m) _mm512_mask_storeu_ps(y + m * ldy + n * kPanel, mask, acc[m][n]);
  }
}

template <int NR, bool kMin>
inline void Q4Rows(int64_t mr, int64_t nb, const int8_t* xq, const float* xd, const int32_t* xc, const uint8_t* wq,
                   const uint16_t* wd, const uint16_t* wm, float* y, int64_t ldy, int64_t ncols) {
  switch (mr) {
    case 6: Q4Tile<6, NR, kMin>(nb, xq, xd, xc, wq, wd, wm, y, ldy, ncols); break;
    case 5: Q4Tile<5, NR, kMin>(nb, xq, xd, xc, wq, wd, wm, y, ldy, ncols); break;
    case 4: Q4Tile<4, NR, kMin>(nb, xq, xd, xc, wq, wd, wm, y, ldy, ncols); break;
    case 3: Q4Tile<3, NR, kMin>(nb, xq, xd, xc, wq, wd, wm, y, ldy, ncols); break;
    case 2: Q4Tile<2, NR, kMin>(nb, xq, xd, xc, wq, wd, wm, y, ldy, ncols); break;
    default: Q4Tile<1, NR, kMin>(nb, xq, xd, xc, wq, wd, wm, y, ldy, ncols); break;
  }
}

template <bool kMin>
void GemmQ4Impl(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd, const int32_t* xc,
                const uint8_t* wq, const uint16_t* wd, const uint16_t* wm, float* y, int64_t ldy) {
  constexpr int64_t kMr = 6;
  const int64_t kx = nb * 32;
  const int64_t n_panels = (n + kPanel - 1) / kPanel;
  for (int64_t m0 = 0; m0 < m; m0 += kRowChunk) {
    const int64_t m1 = m0 + kRowChunk < m ? m0 + kRowChunk : m;
    for (int64_t p = 0; p < n_panels; p += 2) {
      const uint8_t* wqp = wq + p * nb * kQ4Bytes;
      const uint16_t* wdp = wd + p * nb * kPanel;
      const uint16_t* wmp = kMin ? wm + p * nb * kPanel : nullptr;
      const int64_t ncols = n - p * kPanel;
      for (int64_t i = m0; i < m1; i += kMr) {
        const int64_t mr = m1 - i < kMr ? m1 - i : kMr;
        if (p + 1 < n_panels) {
          Q4Rows<2, kMin>(mr, nb, xq + i * kx, xd + i * nb, xc + i * nb, wqp, wdp, wmp, y + i * ldy + p * kPanel, ldy,
                          ncols);
        } else {
          Q4Rows<1, kMin>(mr, nb, xq + i * kx, xd + i * nb, xc + i * nb, wqp, wdp, wmp, y + i * ldy + p * kPanel, ldy,
                          ncols);
        }
      }
    }
  }
}

// ---- block-sparse Q8 ----------------------------------------------------------
// One panel, MR rows, over the panel's stored blocks only. Panels have their
// own block lists, so a tile covers one panel; MR up to 12 keeps 12
// independent vpdpbusd chains in flight.
template <int MR>
inline void SparseTile(int64_t nb, const int8_t* xq, const float* xd, const int32_t* xc, const uint8_t* wq,
                       const uint16_t* wd, int32_t e0, int32_t e1, const int32_t* blk, float* y, int64_t ldy,
                       int64_t ncols) {
  const int64_t kx = nb * 32;
  __m512 acc[MR];
#pragma GCC unroll 12
  for (int m = 0; m < MR; ++m) acc[m] = _mm512_setzero_ps();
  for (int32_t e = e0; e < e1; ++e) {
    const int64_t b = blk[e];
    __m512i ia[MR];
#pragma GCC unroll 12
    for (int m = 0; m < MR; ++m) ia[m] = _mm512_set1_epi32(xc[m * nb + b]);
    const uint8_t* wb = wq + static_cast<int64_t>(e) * kQ8Bytes;
    const int8_t* xb = xq + b * 32;
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
      const __m512i w = _mm512_load_si512(reinterpret_cast<const void*>(wb + g * 64));
#pragma GCC unroll 12
      for (int m = 0; m < MR; ++m)
        ia[m] = _mm512_dpbusd_epi32(ia[m], w, _mm512_set1_epi32(Load32(xb + m * kx + g * 4)));
    }
    const __m512 dw =
        _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(wd + static_cast<int64_t>(e) * kPanel)));
#pragma GCC unroll 12
    for (int m = 0; m < MR; ++m)
      acc[m] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(ia[m]), dw), _mm512_set1_ps(xd[m * nb + b]), acc[m]);
  }
  const __mmask16 mask = TailMask(ncols);
  for (int m = 0; m < MR; ++m) _mm512_mask_storeu_ps(y + m * ldy, mask, acc[m]);
}

}  // namespace

void GemmQ4(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd, const int32_t* xcorr,
            const uint8_t* wq, const uint16_t* wd, const uint16_t* wm, float* y, int64_t ldy) {
  if (wm == nullptr) {
    GemmQ4Impl<false>(m, n, nb, xq, xd, xcorr, wq, wd, nullptr, y, ldy);
  } else {
    GemmQ4Impl<true>(m, n, nb, xq, xd, xcorr, wq, wd, wm, y, ldy);
  }
}

void GemmQ8Sparse(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd, const int32_t* xcorr,
                  const uint8_t* wq, const uint16_t* wd, const int32_t* panel_ptr, const int32_t* blk, float* y,
                  int64_t ldy) {
  const int64_t kx = nb * 32;
  const int64_t n_panels = (n + kPanel - 1) / kPanel;
  for (int64_t m0 = 0; m0 < m; m0 += kRowChunk) {
    const int64_t m1 = m0 + kRowChunk < m ? m0 + kRowChunk : m;
    for (int64_t p = 0; p < n_panels; ++p) {
      const int32_t e0 = panel_ptr[p], e1 = panel_ptr[p + 1];
      const int64_t ncols = n - p * kPanel;
      float* yp = y + p * kPanel;
      int64_t i = m0;
      for (; i + 12 <= m1; i += 12)
        SparseTile<12>(nb, xq + i * kx, xd + i * nb, xcorr + i * nb, wq, wd, e0, e1, blk, yp + i * ldy, ldy, ncols);
      const int64_t rest = m1 - i;
      if (rest >= 8) {
        SparseTile<8>(nb, xq + i * kx, xd + i * nb, xcorr + i * nb, wq, wd, e0, e1, blk, yp + i * ldy, ldy, ncols);
        i += 8;
      }
      if (m1 - i >= 4) {
        SparseTile<4>(nb, xq + i * kx, xd + i * nb, xcorr + i * nb, wq, wd, e0, e1, blk, yp + i * ldy, ldy, ncols);
        i += 4;
      }
      if (m1 - i >= 2) {
        SparseTile<2>(nb, xq + i * kx, xd + i * nb, xcorr + i * nb, wq, wd, e0, e1, blk, yp + i * ldy, ldy, ncols);
        i += 2;
      }
      if (m1 - i >= 1)
        SparseTile<1>(nb, xq + i * kx, xd + i * nb, xcorr + i * nb, wq, wd, e0, e1, blk, yp + i * ldy, ldy, ncols);
    }
  }
}

}  // namespace gembed::avx512vnni
