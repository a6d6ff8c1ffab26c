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
#include <span>

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

[[maybe_unused]] inline __mmask16 TailMask(int64_t cols) {
  return cols >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << cols) - 1u);
}

// ---- Q8 ---------------------------------------------------------------------
// Vector traits: the same tile code runs on 512-bit (zmm, one 16-column panel
// per vector) and 256-bit registers (ymm via AVX-512VL, half a panel per
// vector). On cores that execute a 512-bit op as two 256-bit halves (Zen 4)
// the ymm form issues twice the instructions for the same MACs but may keep
// more independent chains in flight; which wins is measured (cpu/tune.h).
struct Zmm {
  using I = __m512i;
  using F = __m512;
  static constexpr int kLanes = 16;
  static I Set1(int32_t v) { return _mm512_set1_epi32(v); }
  static I LoadW(const uint8_t* p) { return _mm512_load_si512(reinterpret_cast<const void*>(p)); }
  static I Dot(I acc, I w, I x) { return _mm512_dpbusd_epi32(acc, w, x); }
  static F Zero() { return _mm512_setzero_ps(); }
  static F Scales(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static F Step(F acc, I dot, F dw, float dx) {
    return _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot), dw), _mm512_set1_ps(dx), acc);
  }
  static void Store(float* y, int64_t cols, F v) {
    const __mmask16 mask = cols >= 16 ? static_cast<__mmask16>(0xffff)
                                      : static_cast<__mmask16>((1u << cols) - 1u);
    _mm512_mask_storeu_ps(y, mask, v);
  }
};

struct Ymm {
  using I = __m256i;
  using F = __m256;
  static constexpr int kLanes = 8;
  static I Set1(int32_t v) { return _mm256_set1_epi32(v); }
  static I LoadW(const uint8_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
  static I Dot(I acc, I w, I x) { return _mm256_dpbusd_epi32(acc, w, x); }
  static F Zero() { return _mm256_setzero_ps(); }
  static F Scales(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static F Step(F acc, I dot, F dw, float dx) {
    return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dot), dw), _mm256_set1_ps(dx), acc);
  }
  static void Store(float* y, int64_t cols, F v) {
    const __mmask8 mask = cols >= 8 ? static_cast<__mmask8>(0xff)
                                    : static_cast<__mmask8>((1u << cols) - 1u);
    _mm256_mask_storeu_ps(y, mask, v);
  }
};

// One MR x (NV vectors) output tile over all nb blocks. Vector v covers
// columns v*kLanes.. of the tile: panel v / (16/kLanes), lanes
// (v % (16/kLanes)) * kLanes.. within it.
// Per block: int32 accumulators start at the activation's -128*sum(x) (which
// cancels the +128 weight bias), 8 vpdpbusd steps of 4 k each (weights u8 in
// a register, 4 activation bytes broadcast from memory), then
// acc = fma(float(dot) * d_w, d_x, acc): the same operation order as the
// scalar reference, hence bit-identical results whatever the vector width or
// tile shape. With kPrefetch, the block kPrefetch blocks ahead is prefetched
// from each weight stream (0 = rely on the hardware prefetcher).
template <class V, int MR, int NV, int kPrefetch>
inline void Q8Tile(int64_t nb, const int8_t* xq, const float* xd, const int32_t* xc,
                   const uint8_t* wq, const uint16_t* wd, float* y, int64_t ldy, int64_t ncols) {
  constexpr int kPerPanel = 16 / V::kLanes;
  const int64_t kx = nb * 32;
  const int64_t wq_ps = nb * kQ8PanelBytes;
  const int64_t wd_ps = nb * kPanel;
  const uint8_t* wv[NV];
  const uint16_t* dv[NV];
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) {
    wv[v] = wq + (v / kPerPanel) * wq_ps + (v % kPerPanel) * V::kLanes * 4;
    dv[v] = wd + (v / kPerPanel) * wd_ps + (v % kPerPanel) * V::kLanes;
  }
  typename V::F acc[MR][NV];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[m][v] = V::Zero();
  for (int64_t b = 0; b < nb; ++b) {
    if constexpr (kPrefetch > 0) {
#pragma GCC unroll 16
      for (int v = 0; v < NV; v += kPerPanel) {
        const uint8_t* pf = wv[v] + (b + kPrefetch) * kQ8PanelBytes;
        _mm_prefetch(reinterpret_cast<const char*>(pf), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(pf + 64), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(pf + 128), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(pf + 192), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(pf + 256), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(pf + 320), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(pf + 384), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(pf + 448), _MM_HINT_T0);
      }
    }
    typename V::I ia[MR][NV];
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const typename V::I c = V::Set1(xc[m * nb + b]);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) ia[m][v] = c;
    }
    const int8_t* xb = xq + b * 32;
#pragma GCC unroll 16
    for (int g = 0; g < 8; ++g) {
      typename V::I w[NV];
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) w[v] = V::LoadW(wv[v] + b * kQ8PanelBytes + g * 64);
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) {
        const typename V::I xv = V::Set1(Load32(xb + m * kx + g * 4));
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) ia[m][v] = V::Dot(ia[m][v], w[v], xv);
      }
    }
    typename V::F dw[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) dw[v] = V::Scales(dv[v] + b * kPanel);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const float dx = xd[m * nb + b];
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[m][v] = V::Step(acc[m][v], ia[m][v], dw[v], dx);
    }
  }
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) {
    const int64_t col = (v / kPerPanel) * kPanel + (v % kPerPanel) * V::kLanes;
    const int64_t cols = ncols - col;
    if (cols <= 0) break;
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) V::Store(y + m * ldy + col, cols, acc[m][v]);
  }
}

// Rows 1..MR of a tile with NV vectors (mr <= MR chosen at run time).
template <class V, int MR, int NV, int kPrefetch>
inline void Q8Rows(int64_t mr, int64_t nb, const int8_t* xq, const float* xd, const int32_t* xc,
                   const uint8_t* wq, const uint16_t* wd, float* y, int64_t ldy, int64_t ncols) {
  if constexpr (MR > 1) {
    if (mr < MR) {
      Q8Rows<V, MR - 1, NV, kPrefetch>(mr, nb, xq, xd, xc, wq, wd, y, ldy, ncols);
      return;
    }
  }
  Q8Tile<V, MR, NV, kPrefetch>(nb, xq, xd, xc, wq, wd, y, ldy, ncols);
}

// Tiles of NV vectors; a last group of panels narrower than the tile runs
// with as many vectors as it has panels for (never reading a panel that does
// not exist).
template <class V, int MR, int NV, int kPrefetch>
inline void Q8Cols(int64_t nv, int64_t mr, int64_t nb, const int8_t* xq, const float* xd,
                   const int32_t* xc, const uint8_t* wq, const uint16_t* wd, float* y, int64_t ldy,
                   int64_t ncols) {
  if constexpr (NV > 1) {
    if (nv < NV) {
      Q8Cols<V, MR, NV - 1, kPrefetch>(nv, mr, nb, xq, xd, xc, wq, wd, y, ldy, ncols);
      return;
    }
  }
  Q8Rows<V, MR, NV, kPrefetch>(mr, nb, xq, xd, xc, wq, wd, y, ldy, ncols);
}

// The GEMM driver for one tile shape: rows in chunks that stay in L2, for
// each group of panels the tile covers, every row tile of the chunk (the
// weight strip is reused from L1 by all of them).
// Rows of the activation kept hot while a thread walks its panel range: the
// chunk (<= 288 x k bytes, <= 324 KiB) stays in L2 while each weight strip
// is reused from L1 by every row tile of the chunk; the weights are streamed
// once per chunk.
template <class V, int MR, int NV, int kPrefetch>
void GemmQ8Shape(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd,
                 const int32_t* xcorr, const uint8_t* wq, const uint16_t* wd, float* y,
                 int64_t ldy) {
  constexpr int64_t kVecPerPanel = 16 / V::kLanes;
  static_assert(NV % kVecPerPanel == 0, "a tile covers whole panels");
  constexpr int64_t kPanelsPerTile = NV / kVecPerPanel;
  const int64_t kx = nb * 32;
  const int64_t n_panels = (n + kPanel - 1) / kPanel;
  for (int64_t m0 = 0; m0 < m; m0 += kRowChunk) {
    const int64_t m1 = m0 + kRowChunk < m ? m0 + kRowChunk : m;
    for (int64_t p = 0; p < n_panels; p += kPanelsPerTile) {
      const uint8_t* wqp = wq + p * nb * kQ8PanelBytes;
      const uint16_t* wdp = wd + p * nb * kPanel;
      const int64_t ncols = n - p * kPanel;
      const int64_t panels = n_panels - p < kPanelsPerTile ? n_panels - p : kPanelsPerTile;
      for (int64_t i = m0; i < m1; i += MR) {
        const int64_t mr = m1 - i < MR ? m1 - i : MR;
        Q8Cols<V, MR, NV, kPrefetch>(panels * kVecPerPanel, mr, nb, xq + i * kx, xd + i * nb,
                                     xcorr + i * nb, wqp, wdp, y + i * ldy + p * kPanel, ldy,
                                     ncols);
      }
    }
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

// The shapes the tuner chooses among (cpu/tune.h), all bit-identical. The
// first is the default before any tuning: 6 x 2 zmm tiles, 12 independent
// vpdpbusd chains (latency 5 x 2 per cycle needs >= 10 in flight); per 32-k
// block every output also needs cvt + mul + fma (the Q8_0 scales), which caps
// the loop near 8/11 of the vpdpbusd peak.
const GemmQ8Variant kGemmQ8Variants[] = {
    {"zmm6x2", GemmQ8Shape<Zmm, 6, 2, 0>},
    {"zmm4x3", GemmQ8Shape<Zmm, 4, 3, 0>},
    {"zmm6x2pf16", GemmQ8Shape<Zmm, 6, 2, 16>},
    // One tile as tall as a short text (12 rows) reads each weight once, with
    // software prefetch ahead of the stream: the short-input candidates.
    {"zmm12x1pf", GemmQ8Shape<Zmm, 12, 1, 8>},
    {"zmm12x1pf16", GemmQ8Shape<Zmm, 12, 1, 16>},
    {"zmm8x1pf", GemmQ8Shape<Zmm, 8, 1, 8>},
    // 256-bit forms (AVX-512VL): for cores that split 512-bit operations.
    {"ymm6x2", GemmQ8Shape<Ymm, 6, 2, 0>},
    {"ymm3x4", GemmQ8Shape<Ymm, 3, 4, 0>},
};

std::span<const GemmQ8Variant> GemmQ8Variants() { return kGemmQ8Variants; }

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
