// AVX2 + FMA + F16C element-wise kernels. Tails use vmaskmovps, so no entry
// touches memory past its n elements.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/isa_kernels.h"

namespace gembed::avx2 {
namespace {

inline __m256i LaneMask(int64_t n) {
  const int c = n < 0 ? 0 : (n > 8 ? 8 : static_cast<int>(n));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline __m256 Load(const float* p, int64_t n) {
  return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, LaneMask(n));
}
inline void Store(float* p, int64_t n, __m256 v) {
  if (n >= 8) {
    _mm256_storeu_ps(p, v);
  } else {
    _mm256_maskstore_ps(p, LaneMask(n), v);
  }
}

inline float HorizontalMax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}
inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline double HorizontalSum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

// exp(x), ~2 ulp: same reduction and polynomial as the AVX-512 version; 2^n
// is applied as two exact power-of-two factors (n split in halves), so
// overflow gives inf and small results underflow gradually, like vscalefps.
inline __m256 Exp(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(89.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 e = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(e, f1), f2);
}

inline double SumSquares(const float* x, int64_t d) {
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  for (int64_t i = 0; i < d; i += 8) {
    const __m256 v = Load(x + i, d - i);
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    acc0 = _mm256_fmadd_pd(lo, lo, acc0);
    acc1 = _mm256_fmadd_pd(hi, hi, acc1);
  }
  return HorizontalSum(_mm256_add_pd(acc0, acc1));
}

inline float InvRms(const float* x, int64_t d, float eps) {
  return static_cast<float>(1.0 / std::sqrt(SumSquares(x, d) / static_cast<double>(d) + eps));
}

// Round half away from zero, exact for |v| < 2^23 (see the AVX-512 version).
inline __m256 RoundHalfAway(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
  const __m256 frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t));
  const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  return _mm256_add_ps(t, _mm256_and_ps(up, _mm256_or_ps(_mm256_set1_ps(1.0f), sign)));
}

}  // namespace

void QuantizeRowQ8(const float* x, int64_t k, int8_t* qs, float* d, int32_t* corr) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < k / 32; ++b) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(x + b * 32 + j * 8);
      amax = _mm256_max_ps(amax, _mm256_and_ps(v[j], abs_mask));
    }
    const float db = HorizontalMax(amax) / 127.0f;
    const float id = db != 0.0f ? 1.0f / db : 0.0f;
    const __m256 idv = _mm256_set1_ps(id);
    __m256i q[4];
    for (int j = 0; j < 4; ++j) q[j] = _mm256_cvttps_epi32(RoundHalfAway(_mm256_mul_ps(v[j], idv)));
    // int32 -> int8 (values are within [-127, 127], so the saturating packs are exact);
    // the packs interleave 128-bit lanes, the permute restores element order.
    const __m256i p16a = _mm256_packs_epi32(q[0], q[1]);
    const __m256i p16b = _mm256_packs_epi32(q[2], q[3]);
    const __m256i p8 = _mm256_packs_epi16(p16a, p16b);
    const __m256i ordered = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + b * 32), ordered);
    const __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    d[b] = db;
    corr[b] = -128 * _mm_cvtsi128_si32(s4);
  }
}

void RmsNormRow(const float* x, int64_t d, const float* gamma, float eps, float* out) {
  const __m256 inv = _mm256_set1_ps(InvRms(x, d, eps));
  for (int64_t i = 0; i < d; i += 8)
    Store(out + i, d - i, _mm256_mul_ps(_mm256_mul_ps(Load(x + i, d - i), inv), Load(gamma + i, d - i)));
}

void RmsNormAddRow(const float* y, int64_t d, const float* gamma, float eps, float* x) {
  const __m256 inv = _mm256_set1_ps(InvRms(y, d, eps));
  for (int64_t i = 0; i < d; i += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_mul_ps(Load(y + i, d - i), inv), Load(gamma + i, d - i));
    Store(x + i, d - i, _mm256_add_ps(Load(x + i, d - i), v));
  }
}

void L2NormalizeRow(float* x, int64_t d) {
  const double ss = SumSquares(x, d);
  if (ss <= 0.0) return;
  const __m256d inv = _mm256_set1_pd(1.0 / std::sqrt(ss));
  for (int64_t i = 0; i < d; i += 8) {
    const __m256 v = Load(x + i, d - i);
    const __m128 lo = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), inv));
    const __m128 hi = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), inv));
    Store(x + i, d - i, _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1));
  }
}

void RopeNeoxRow(float* x, int64_t heads, int64_t dh, const float* cs, const float* sn) {
  const int64_t half = dh / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* xa = x + h * dh;
    float* xb = xa + half;
    for (int64_t i = 0; i < half; i += 8) {
      const int64_t r = half - i;
      const __m256 a = Load(xa + i, r), b = Load(xb + i, r);
      const __m256 c = Load(cs + i, r), s = Load(sn + i, r);
      Store(xa + i, r, _mm256_sub_ps(_mm256_mul_ps(a, c), _mm256_mul_ps(b, s)));
      Store(xb + i, r, _mm256_add_ps(_mm256_mul_ps(a, s), _mm256_mul_ps(b, c)));
    }
  }
}

float SoftmaxRow(float* s, int64_t n, int64_t lo, int64_t hi, float scale) {
  const __m256 sc = _mm256_set1_ps(scale);
  __m256 mx = _mm256_set1_ps(-INFINITY);
  for (int64_t j = lo; j < hi; j += 8) {
    const __m256 v = _mm256_mul_ps(Load(s + j, hi - j), sc);
    const __m256 valid = _mm256_castsi256_ps(LaneMask(hi - j));
    mx = _mm256_max_ps(mx, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), v, valid));
  }
  const __m256 mxv = _mm256_set1_ps(HorizontalMax(mx));
  __m256 sum = _mm256_setzero_ps();
  for (int64_t j = 0; j < lo; ++j) s[j] = 0.0f;
  for (int64_t j = lo; j < hi; j += 8) {
    const __m256 valid = _mm256_castsi256_ps(LaneMask(hi - j));
    const __m256 e = _mm256_and_ps(Exp(_mm256_sub_ps(_mm256_mul_ps(Load(s + j, hi - j), sc), mxv)), valid);
    sum = _mm256_add_ps(sum, e);
    Store(s + j, hi - j, e);
  }
  for (int64_t j = hi; j < n; ++j) s[j] = 0.0f;
  return HorizontalSum(sum);
}

void GeGlu(const float* gate, const float* up, int64_t n, float* out) {
  const __m256 c = _mm256_set1_ps(-2.0f * 0.7978845608028654f);
  const __m256 a = _mm256_set1_ps(0.044715f);
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 z = Load(gate + i, n - i);
    const __m256 u = _mm256_fmadd_ps(_mm256_mul_ps(a, z), _mm256_mul_ps(z, z), z);
    const __m256 g = _mm256_div_ps(z, _mm256_add_ps(one, Exp(_mm256_mul_ps(c, u))));
    Store(out + i, n - i, _mm256_mul_ps(g, Load(up + i, n - i)));
  }
}

void Add(const float* a, const float* b, int64_t n, float* out) {
  for (int64_t i = 0; i < n; i += 8) Store(out + i, n - i, _mm256_add_ps(Load(a + i, n - i), Load(b + i, n - i)));
}

void Scale(const float* x, int64_t n, float s, float* out) {
  const __m256 sv = _mm256_set1_ps(s);
  for (int64_t i = 0; i < n; i += 8) Store(out + i, n - i, _mm256_mul_ps(Load(x + i, n - i), sv));
}

void F16ToF32(const uint16_t* src, int64_t n, float s, float* out) {
  const __m256 sv = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))), sv));
  if (i < n) {
    uint16_t tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(tmp, src + i, static_cast<size_t>(n - i) * 2);
    Store(out + i, n - i, _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tmp))), sv));
  }
}

void Bf16ToF32(const uint16_t* src, int64_t n, float s, float* out) {
  const __m256 sv = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_castsi256_ps(_mm256_slli_epi32(w, 16)), sv));
  }
  if (i < n) {
    uint16_t tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(tmp, src + i, static_cast<size_t>(n - i) * 2);
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tmp)));
    Store(out + i, n - i, _mm256_mul_ps(_mm256_castsi256_ps(_mm256_slli_epi32(w, 16)), sv));
  }
}

void Q8_0ToF32(const BlockQ8_0* src, int64_t n, float s, float* out) {
  const __m256 sv = _mm256_set1_ps(s);
  for (int64_t b = 0; b < n / 32; ++b) {
    const __m256 d = _mm256_cvtph_ps(_mm_set1_epi16(static_cast<short>(src[b].d)));
    for (int h = 0; h < 4; ++h) {
      int64_t q8;
      std::memcpy(&q8, src[b].qs + h * 8, 8);
      const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(q8)));
      _mm256_storeu_ps(out + b * 32 + h * 8, _mm256_mul_ps(_mm256_mul_ps(d, q), sv));
    }
  }
}

}  // namespace gembed::avx2
