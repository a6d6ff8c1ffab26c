// AVX2 + FMA GEMM kernels (the level for x86-64 CPUs without AVX-512).
//
// Q8: AVX2 has no vpdpbusd; the int8 dot uses vpmaddubsw, which multiplies
// unsigned by signed bytes with int16 saturation. Feeding it |w| (u8, at most
// 128) and x carrying w's sign (|x| <= 127) keeps every pair sum within
// 2*128*127 = 32512, so it never saturates; vpmaddwd with ones widens to int32.
// The packed weights are stored biased (+128, see PackedMatrix); xor 0x80
// restores the signed value. Float accumulation order equals the reference,
// so results are bit-identical to it.
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <span>

#include "kernels/cpu/isa_kernels.h"

namespace gembed::avx2 {
namespace {

constexpr int64_t kPanel = 16;
constexpr int64_t kQ8PanelBytes = 512;
constexpr int64_t kRowChunk = 64;
constexpr int64_t kF32KBlock = 256;  // fp32 GEMM k-block (see GemmF32)

inline int32_t Load32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Lane mask (all-ones lanes) for the first `cols` of 8 columns.
inline __m256i LaneMask(int64_t cols) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int c = cols < 0 ? 0 : (cols > 8 ? 8 : static_cast<int>(cols));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), idx);
}

// MR rows x one 16-column panel (two 8-lane halves).
template <int MR>
inline void Q8Tile(int64_t nb, const int8_t* xq, const float* xd, const uint8_t* wq,
                   const uint16_t* wd, float* y, int64_t ldy, int64_t ncols) {
  const int64_t kx = nb * 32;
  const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[MR][2];
  #pragma GCC unroll 8
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m256i ia[MR][2];
    #pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) ia[m][0] = ia[m][1] = _mm256_setzero_si256();
    const uint8_t* wb = wq + b * kQ8PanelBytes;
    const int8_t* xb = xq + b * 32;
    #pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
      __m256i ws[2], wa[2];
      #pragma GCC unroll 8
      for (int h = 0; h < 2; ++h) {
        ws[h] = _mm256_xor_si256(
            _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + g * 64 + h * 32)), bias);
        wa[h] = _mm256_abs_epi8(ws[h]);  // |-128| = 0x80 = 128 read as unsigned
      }
      #pragma GCC unroll 8
      for (int m = 0; m < MR; ++m) {
        const __m256i xv = _mm256_set1_epi32(Load32(xb + m * kx + g * 4));
        #pragma GCC unroll 8
        for (int h = 0; h < 2; ++h) {
          const __m256i sx = _mm256_sign_epi8(xv, ws[h]);
          const __m256i p16 = _mm256_maddubs_epi16(wa[h], sx);
          ia[m][h] = _mm256_add_epi32(ia[m][h], _mm256_madd_epi16(p16, ones));
        }
      }
    }
    const __m256 dw0 = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(wd + b * kPanel)));
    const __m256 dw1 = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(wd + b * kPanel + 8)));
    #pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m256 dx = _mm256_set1_ps(xd[m * nb + b]);
      acc[m][0] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(ia[m][0]), dw0), dx, acc[m][0]);
      acc[m][1] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(ia[m][1]), dw1), dx, acc[m][1]);
    }
  }
  #pragma GCC unroll 8
  for (int h = 0; h < 2; ++h) {
    const int64_t cols = ncols - h * 8;
    if (cols <= 0) break;
    #pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      if (cols >= 8) {
        _mm256_storeu_ps(y + m * ldy + h * 8, acc[m][h]);
      } else {
        _mm256_maskstore_ps(y + m * ldy + h * 8, LaneMask(cols), acc[m][h]);
      }
    }
  }
}

// MR rows x one 16-column panel of fp32; masked loads past ncols. With
// `accumulate` the tile continues the sums in c (k-blocking; exact).
template <int MR>
inline void F32Tile(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                    float* c, int64_t ldc, int64_t ncols, bool accumulate) {
  const __m256i m0 = LaneMask(ncols), m1 = LaneMask(ncols - 8);
  __m256 acc[MR][2];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m) {
    if (accumulate) {
      acc[m][0] = _mm256_maskload_ps(c + m * ldc, m0);
      acc[m][1] = _mm256_maskload_ps(c + m * ldc + 8, m1);
    } else {
      acc[m][0] = acc[m][1] = _mm256_setzero_ps();
    }
  }
  if (ncols >= 16) {
    for (int64_t kk = 0; kk < k; ++kk) {
      const __m256 b0 = _mm256_loadu_ps(b + kk * ldb), b1 = _mm256_loadu_ps(b + kk * ldb + 8);
#pragma GCC unroll 8
      for (int m = 0; m < MR; ++m) {
        const __m256 av = _mm256_broadcast_ss(a + m * lda + kk);
        acc[m][0] = _mm256_fmadd_ps(av, b0, acc[m][0]);
        acc[m][1] = _mm256_fmadd_ps(av, b1, acc[m][1]);
      }
    }
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      _mm256_storeu_ps(c + m * ldc, acc[m][0]);
      _mm256_storeu_ps(c + m * ldc + 8, acc[m][1]);
    }
    return;
  }
  for (int64_t kk = 0; kk < k; ++kk) {
    const __m256 b0 = _mm256_maskload_ps(b + kk * ldb, m0);
    const __m256 b1 = _mm256_maskload_ps(b + kk * ldb + 8, m1);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m256 av = _mm256_broadcast_ss(a + m * lda + kk);
      acc[m][0] = _mm256_fmadd_ps(av, b0, acc[m][0]);
      acc[m][1] = _mm256_fmadd_ps(av, b1, acc[m][1]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m) {
    _mm256_maskstore_ps(c + m * ldc, m0, acc[m][0]);
    _mm256_maskstore_ps(c + m * ldc + 8, m1, acc[m][1]);
  }
}

// The driver for tiles of MR rows x one panel (MR is the tuner's choice:
// 16 ymm registers hold 2*MR accumulators of each kind plus the weights).
template <int MR>
void GemmQ8Rows(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd,
                const int32_t* xcorr, const uint8_t* wq, const uint16_t* wd, float* y,
                int64_t ldy) {
  (void)xcorr;  // the sign trick works on signed weights: no bias correction
  const int64_t kx = nb * 32;
  const int64_t n_panels = (n + kPanel - 1) / kPanel;
  for (int64_t m0 = 0; m0 < m; m0 += kRowChunk) {
    const int64_t m1 = m0 + kRowChunk < m ? m0 + kRowChunk : m;
    for (int64_t p = 0; p < n_panels; ++p) {
      const uint8_t* wqp = wq + p * nb * kQ8PanelBytes;
      const uint16_t* wdp = wd + p * nb * kPanel;
      const int64_t ncols = n - p * kPanel;
      for (int64_t i = m0; i < m1; i += MR) {
        const int64_t mr = m1 - i < MR ? m1 - i : MR;
        if (mr == MR) {
          Q8Tile<MR>(nb, xq + i * kx, xd + i * nb, wqp, wdp, y + i * ldy + p * kPanel, ldy, ncols);
        } else if constexpr (MR > 2) {
          if (mr == 2) {
            Q8Tile<2>(nb, xq + i * kx, xd + i * nb, wqp, wdp, y + i * ldy + p * kPanel, ldy, ncols);
          } else {
            Q8Tile<1>(nb, xq + i * kx, xd + i * nb, wqp, wdp, y + i * ldy + p * kPanel, ldy, ncols);
          }
        } else {
          Q8Tile<1>(nb, xq + i * kx, xd + i * nb, wqp, wdp, y + i * ldy + p * kPanel, ldy, ncols);
        }
      }
    }
  }
}

// The tuner's choices (cpu/tune.h); all bit-identical. The first is the
// default: 2 rows x 1 panel.
const GemmQ8Variant kGemmQ8Variants[] = {
    {"ymm2x2", GemmQ8Rows<2>},
    {"ymm1x2", GemmQ8Rows<1>},
    {"ymm3x2", GemmQ8Rows<3>},
};

}  // namespace

std::span<const GemmQ8Variant> GemmQ8Variants() { return kGemmQ8Variants; }

void GemmF32(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
             int64_t ldb, int64_t bps, float* c, int64_t ldc) {
  constexpr int64_t kMr = 6;
  const int64_t n_panels = (n + kPanel - 1) / kPanel;
  // k-blocks keep the B strip in L1 while every row tile reuses it.
  for (int64_t m0 = 0; m0 < m; m0 += kRowChunk) {
    const int64_t m1 = m0 + kRowChunk < m ? m0 + kRowChunk : m;
    for (int64_t k0 = 0; k0 < k; k0 += kF32KBlock) {
      const int64_t kc = k - k0 < kF32KBlock ? k - k0 : kF32KBlock;
      const bool acc = k0 > 0;
      for (int64_t p = 0; p < n_panels; ++p) {
        const int64_t ncols = n - p * kPanel;
        const float* bp = b + p * bps + k0 * ldb;
        for (int64_t i = m0; i < m1; i += kMr) {
          const int64_t mr = m1 - i < kMr ? m1 - i : kMr;
          float* cp = c + i * ldc + p * kPanel;
          const float* ap = a + i * lda + k0;
          switch (mr) {
            case 6: F32Tile<6>(kc, ap, lda, bp, ldb, cp, ldc, ncols, acc); break;
            case 5: F32Tile<5>(kc, ap, lda, bp, ldb, cp, ldc, ncols, acc); break;
            case 4: F32Tile<4>(kc, ap, lda, bp, ldb, cp, ldc, ncols, acc); break;
            case 3: F32Tile<3>(kc, ap, lda, bp, ldb, cp, ldc, ncols, acc); break;
            case 2: F32Tile<2>(kc, ap, lda, bp, ldb, cp, ldc, ncols, acc); break;
            default: F32Tile<1>(kc, ap, lda, bp, ldb, cp, ldc, ncols, acc); break;
          }
        }
      }
    }
  }
}

}  // namespace gembed::avx2
