// AVX2 kernels for the compressed weight formats: 4-bit (Q4_0 / Q4_1) x Q8
// activations, and block-sparse Q8. AVX2 has no vpdpbusd: vpmaddubsw
// multiplies the unsigned nibbles (0..15) by the signed activations (pair sums
// <= 2 * 15 * 128, no saturation) and vpmaddwd widens to int32. The sparse
// kernel uses the sign trick of gemm_avx2.cc's Q8 kernel. Float order equals
// the references (bit-identical results).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/isa_kernels.h"

namespace gembed::avx2 {
namespace {

constexpr int64_t kPanel = 16;
constexpr int64_t kQ4Bytes = 256;
constexpr int64_t kQ8Bytes = 512;
constexpr int64_t kRowChunk = 64;

inline int32_t Load32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline __m256i LaneMask(int64_t cols) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int c = cols < 0 ? 0 : (cols > 8 ? 8 : static_cast<int>(cols));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), idx);
}

template <int MR>
inline void Store(float* y, int64_t ldy, int64_t ncols, __m256 (&acc)[MR][2]) {
#pragma GCC unroll 4
  for (int h = 0; h < 2; ++h) {
    const int64_t cols = ncols - h * 8;
    if (cols <= 0) break;
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) {
      if (cols >= 8) {
        _mm256_storeu_ps(y + m * ldy + h * 8, acc[m][h]);
      } else {
        _mm256_maskstore_ps(y + m * ldy + h * 8, LaneMask(cols), acc[m][h]);
      }
    }
  }
}

// MR rows x one 16-column panel (two 8-lane halves) of 4-bit weights.
template <int MR, bool kMin>
inline void Q4Tile(int64_t nb, const int8_t* xq, const float* xd, const int32_t* xc, const uint8_t* wq,
                   const uint16_t* wd, const uint16_t* wm, float* y, int64_t ldy, int64_t ncols) {
  const int64_t kx = nb * 32;
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[MR][2];
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m256i ia[MR][2];
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) {
      const __m256i c = kMin ? _mm256_setzero_si256() : _mm256_set1_epi32(xc[m * nb + b] >> 4);
      ia[m][0] = ia[m][1] = c;
    }
    const uint8_t* wb = wq + b * kQ4Bytes;
    const int8_t* xb = xq + b * 32;
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) {
      __m256i lo[2], hi[2];
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + g * 64 + h * 32));
        lo[h] = _mm256_and_si256(v, nib);
        hi[h] = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
      }
#pragma GCC unroll 4
      for (int m = 0; m < MR; ++m) {
        const __m256i xl = _mm256_set1_epi32(Load32(xb + m * kx + g * 4));
        const __m256i xh = _mm256_set1_epi32(Load32(xb + m * kx + 16 + g * 4));
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo[h], xl), _mm256_maddubs_epi16(hi[h], xh));
          ia[m][h] = _mm256_add_epi32(ia[m][h], _mm256_madd_epi16(p, ones));
        }
      }
    }
    const __m256 dw0 = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(wd + b * kPanel)));
    const __m256 dw1 = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(wd + b * kPanel + 8)));
    __m256 mw0 = _mm256_setzero_ps(), mw1 = _mm256_setzero_ps();
    if (kMin) {
      mw0 = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(wm + b * kPanel)));
      mw1 = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(wm + b * kPanel + 8)));
    }
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) {
      const float dxf = xd[m * nb + b];
      const __m256 dx = _mm256_set1_ps(dxf);
      acc[m][0] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(ia[m][0]), dw0), dx, acc[m][0]);
      acc[m][1] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(ia[m][1]), dw1), dx, acc[m][1]);
      if (kMin) {
        const __m256 dxs = _mm256_set1_ps(dxf * static_cast<float>(-(xc[m * nb + b] / 128)));
        acc[m][0] = _mm256_fmadd_ps(mw0, dxs, acc[m][0]);
        acc[m][1] = _mm256_fmadd_ps(mw1, dxs, acc[m][1]);
      }
    }
  }
  Store<MR>(y, ldy, ncols, acc);
}

// The pair sum of maddubs is at most 2 * 15 * 128 = 3840 per 16-bit lane, and
// the lo + hi sum above at most 7680: no int16 overflow.

template <bool kMin>
void GemmQ4Impl(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd, const int32_t* xc,
                const uint8_t* wq, const uint16_t* wd, const uint16_t* wm, float* y, int64_t ldy) {
  const int64_t kx = nb * 32;
  const int64_t n_panels = (n + kPanel - 1) / kPanel;
  for (int64_t m0 = 0; m0 < m; m0 += kRowChunk) {
    const int64_t m1 = m0 + kRowChunk < m ? m0 + kRowChunk : m;
    for (int64_t p = 0; p < n_panels; ++p) {
      const uint8_t* wqp = wq + p * nb * kQ4Bytes;
      const uint16_t* wdp = wd + p * nb * kPanel;
      const uint16_t* wmp = kMin ? wm + p * nb * kPanel : nullptr;
      const int64_t ncols = n - p * kPanel;
      for (int64_t i = m0; i < m1; i += 2) {
        if (m1 - i >= 2) {
          Q4Tile<2, kMin>(nb, xq + i * kx, xd + i * nb, xc + i * nb, wqp, wdp, wmp, y + i * ldy + p * kPanel, ldy,
                          ncols);
        } else {
          Q4Tile<1, kMin>(nb, xq + i * kx, xd + i * nb, xc + i * nb, wqp, wdp, wmp, y + i * ldy + p * kPanel, ldy,
                          ncols);
        }
      }
    }
  }
}

// Block-sparse Q8: MR rows x one panel over the panel's stored blocks.
template <int MR>
inline void SparseTile(int64_t nb, const int8_t* xq, const float* xd, const uint8_t* wq, const uint16_t* wd,
                       int32_t e0, int32_t e1, const int32_t* blk, float* y, int64_t ldy, int64_t ncols) {
  const int64_t kx = nb * 32;
  const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[MR][2];
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  for (int32_t e = e0; e < e1; ++e) {
    const int64_t b = blk[e];
    __m256i ia[MR][2];
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) ia[m][0] = ia[m][1] = _mm256_setzero_si256();
    const uint8_t* wb = wq + static_cast<int64_t>(e) * kQ8Bytes;
    const int8_t* xb = xq + b * 32;
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
      __m256i ws[2], wa[2];
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        ws[h] = _mm256_xor_si256(_mm256_load_si256(reinterpret_cast<const __m256i*>(wb + g * 64 + h * 32)), bias);
        wa[h] = _mm256_abs_epi8(ws[h]);
      }
#pragma GCC unroll 4
      for (int m = 0; m < MR; ++m) {
        const __m256i xv = _mm256_set1_epi32(Load32(xb + m * kx + g * 4));
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          const __m256i p16 = _mm256_maddubs_epi16(wa[h], _mm256_sign_epi8(xv, ws[h]));
          ia[m][h] = _mm256_add_epi32(ia[m][h], _mm256_madd_epi16(p16, ones));
        }
      }
    }
    const uint16_t* sc = wd + static_cast<int64_t>(e) * kPanel;
    const __m256 dw0 = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(sc)));
    const __m256 dw1 = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(sc + 8)));
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) {
      const __m256 dx = _mm256_set1_ps(xd[m * nb + b]);
      acc[m][0] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(ia[m][0]), dw0), dx, acc[m][0]);
      acc[m][1] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(ia[m][1]), dw1), dx, acc[m][1]);
    }
  }
  Store<MR>(y, ldy, ncols, acc);
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
  (void)xcorr;  // signed weights through the sign trick: no bias correction
  const int64_t kx = nb * 32;
  const int64_t n_panels = (n + kPanel - 1) / kPanel;
  for (int64_t m0 = 0; m0 < m; m0 += kRowChunk) {
    const int64_t m1 = m0 + kRowChunk < m ? m0 + kRowChunk : m;
    for (int64_t p = 0; p < n_panels; ++p) {
      const int64_t ncols = n - p * kPanel;
      for (int64_t i = m0; i < m1; i += 2) {
        float* yp = y + i * ldy + p * kPanel;
        if (m1 - i >= 2) {
          SparseTile<2>(nb, xq + i * kx, xd + i * nb, wq, wd, panel_ptr[p], panel_ptr[p + 1], blk, yp, ldy, ncols);
        } else {
          SparseTile<1>(nb, xq + i * kx, xd + i * nb, wq, wd, panel_ptr[p], panel_ptr[p + 1], blk, yp, ldy, ncols);
        }
      }
    }
  }
}

}  // namespace gembed::avx2
