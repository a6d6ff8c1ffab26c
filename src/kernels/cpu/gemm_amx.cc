// The Q8_0 GEMM on Intel AMX (AMX-TILE + AMX-INT8: Sapphire Rapids and later),
// as more variants of the avx512vnni level's gemm_q8 (kernels/tune.h; the
// engine has the tuner measure them when GEMBED_AMX=1 asks: engine/tuning.h). Built with -mamx-tile
// -mamx-int8 on top of the AVX-512 flags; only called after cpu/dispatch.h's
// AmxInt8Usable() (CPUID, the OS's XTILEDATA state and Linux's per-process
// permission).
//
// The packed weights need no new layout: a (panel, block) of PackedMatrix is
// 8 groups of [16 columns x 4 k] bytes, which is exactly an AMX B tile of 8
// rows x 64 bytes (the "VNNI" layout TDPBSUD reads). One TDPBSUD multiplies a
// 16-row x 32-k tile of int8 activations by it: the 16 x 16 int32 dots of one
// 32-block. Weights carry +128 (unsigned), so the vector unit adds each row's
// correction -128*sum(x) to make the dots exact. The Q8_0 scales cannot be
// applied inside the tile unit: every block's dots are stored and scaled on
// the vector unit, acc = fma(float(dot) * d_w, d_x, acc), in block order: the
// same operations as every other gemm_q8, hence bit-identical results.
//
// Two tile sets (C, A, B) alternate between consecutive blocks, and the tile
// unit runs two blocks ahead of the vector unit. Rows that do not fill a
// 16-row tile go to the vpdpbusd kernel.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdint>
#include <span>

#include "kernels/cpu/isa_kernels.h"

namespace gembed::amx {
namespace {

constexpr int64_t kPanel = 16;          // output columns per panel = C tile columns
constexpr int64_t kTileRows = 16;       // activation rows per A / C tile
constexpr int64_t kQ8PanelBytes = 512;  // one B tile: 8 rows x 64 bytes

// Tiles: 0, 1 = C (16 x 16 int32); 2, 3 = A (16 rows x 32 int8); 4, 5 = B
// (8 rows x 64 uint8). Set s uses C s, A 2+s, B 4+s.
struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

TileConfig MakeConfig() {
  TileConfig c;
  for (int t = 0; t < 2; ++t) {
    c.rows[t] = kTileRows;
    c.colsb[t] = 64;
    c.rows[2 + t] = kTileRows;
    c.colsb[2 + t] = 32;
    c.rows[4 + t] = 8;
    c.colsb[4 + t] = 64;
  }
  return c;
}

// Tile set (C, A, B) computes one block's biased dots into `out`. (GCC's tile
// intrinsics take the tile number as a literal: hence a macro.)
#define GEMBED_AMX_ISSUE(C, A, B, a, lda, b, out) \
  do {                                            \
    _tile_zero(C);                                \
    _tile_loadd(A, (a), (lda));                   \
    _tile_loadd(B, (b), 64);                      \
    _tile_dpbsud(C, A, B);                        \
    _tile_stored(C, (out), 64);                   \
  } while (0)

// One 16-row x one-panel output over all nb blocks. The tile unit runs two
// blocks ahead of the vector unit (four dot buffers, the two tile sets in turn).
inline void PanelTile(int64_t nb, const int8_t* xq, int64_t kx, const float* xd, const int32_t* xc,
                      const uint8_t* wq, const uint16_t* wd, float* y, int64_t ldy, int64_t ncols) {
  alignas(64) int32_t dots[4][kTileRows * kPanel];
  __m512 acc[kTileRows];
#pragma GCC unroll 16
  for (int r = 0; r < kTileRows; ++r) acc[r] = _mm512_setzero_ps();
  GEMBED_AMX_ISSUE(0, 2, 4, xq, kx, wq, dots[0]);
  if (nb > 1) GEMBED_AMX_ISSUE(1, 3, 5, xq + 32, kx, wq + kQ8PanelBytes, dots[1]);
  for (int64_t b = 0; b < nb; ++b) {
    if (const int64_t n = b + 2; n < nb) {
      if (n & 1) {
        GEMBED_AMX_ISSUE(1, 3, 5, xq + n * 32, kx, wq + n * kQ8PanelBytes, dots[n & 3]);
      } else {
        GEMBED_AMX_ISSUE(0, 2, 4, xq + n * 32, kx, wq + n * kQ8PanelBytes, dots[n & 3]);
      }
    }
    const int32_t* d = dots[b & 3];
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wd + b * kPanel)));
#pragma GCC unroll 16
    for (int r = 0; r < kTileRows; ++r) {
      // The exact int32 dot: the biased tile result plus -128 * sum(x).
      const __m512i dot = _mm512_add_epi32(_mm512_load_si512(d + r * kPanel), _mm512_set1_epi32(xc[r * nb + b]));
      acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot), dw), _mm512_set1_ps(xd[r * nb + b]), acc[r]);
    }
  }
  const __mmask16 mask =
      ncols >= kPanel ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << ncols) - 1u);
#pragma GCC unroll 16
  for (int r = 0; r < kTileRows; ++r) _mm512_mask_storeu_ps(y + r * ldy, mask, acc[r]);
}

// Row groups of 16 outer (a group's activations stay in L1), panels inner.
void GemmQ8Amx(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd, const int32_t* xcorr,
               const uint8_t* wq, const uint16_t* wd, float* y, int64_t ldy) {
  const int64_t full = m / kTileRows * kTileRows;
  const int64_t kx = nb * 32;
  if (full > 0) {
    static const TileConfig config = MakeConfig();
    _tile_loadconfig(&config);
    const int64_t n_panels = (n + kPanel - 1) / kPanel;
    for (int64_t i = 0; i < full; i += kTileRows) {
      for (int64_t p = 0; p < n_panels; ++p) {
        PanelTile(nb, xq + i * kx, kx, xd + i * nb, xcorr + i * nb, wq + p * nb * kQ8PanelBytes,
                  wd + p * nb * kPanel, y + i * ldy + p * kPanel, ldy, n - p * kPanel);
      }
    }
    _tile_release();
  }
  if (full < m) {  // the last rows: the vpdpbusd kernel (the level's default variant)
    avx512vnni::GemmQ8Variants().front().fn(m - full, n, nb, xq + full * kx, xd + full * nb,
                                            xcorr + full * nb, wq, wd, y + full * ldy, ldy);
  }
}

const GemmQ8Variant kVariants[] = {
    {"amx16x1", GemmQ8Amx},
};

}  // namespace

std::span<const GemmQ8Variant> GemmQ8Variants() { return kVariants; }

}  // namespace gembed::amx
