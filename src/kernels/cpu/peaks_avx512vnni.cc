// The AVX-512 loops behind kernels/peaks.h (built with the AVX-512 flags).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/peaks.h"

namespace gembed {

// 16 independent vpdpbusd chains in registers: enough to cover latency x
// throughput. `a` and `b` are hidden from the optimiser so nothing folds.
__attribute__((noinline)) int64_t Int8PeakLoop(int64_t iters) {
  __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  __asm__ volatile("" : "+v"(a), "+v"(b));  // opaque to the optimiser
  __m512i c[16];
  // Distinct start values, so the compiler cannot merge identical chains.
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) c[i] = _mm512_set1_epi32(i);
  for (int64_t it = 0; it < iters; ++it) {
    __asm__ volatile("" : "+v"(a));
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) c[i] = _mm512_dpbusd_epi32(c[i], a, b);
  }
  __m512i s = c[0];
#pragma GCC unroll 16
  for (int i = 1; i < 16; ++i) s = _mm512_add_epi32(s, c[i]);
  return _mm512_reduce_add_epi32(s);
}

__attribute__((noinline)) float StreamReadLoop(const float* p, size_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

}  // namespace gembed
