// AVX-512 element-wise kernels: activation quantisation, norms, RoPE,
// softmax, GeGLU, conversions. Tails use masked loads/stores, so no entry
// touches memory past its n elements.
// GCC 12's AVX-512 headers (reduce / extract helpers built on _mm512_undefined_*)
// trip -W(maybe-)uninitialized; the values are fully defined.
#if defined(__GNUC__) && !defined(__clang__)  // GCC-only warning group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "kernels/cpu/isa_kernels.h"

namespace gembed::avx512vnni {
namespace {

inline __mmask16 TailMask(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1u);
}

// exp(x) for fp32 lanes, within ~2 ulp of the correctly rounded result:
// Cody-Waite reduction x = n ln2 + r (|r| <= ln2/2, ln2 split in a hi part
// exact in fp32 and a lo correction), a degree-6 polynomial for e^r (Cephes
// expf coefficients), and 2^n applied with vscalefps, which also produces
// the overflow (inf) and gradual underflow (denormal, 0) results.
inline __m512 Exp(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(89.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 r2 = _mm512_mul_ps(r, r);
  const __m512 e = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(e, n);
}

// Sum of squares of x[0..d) in double (8 lanes, then a fixed reduction).
inline double SumSquares(const float* x, int64_t d) {
  __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
    acc0 = _mm512_fmadd_pd(lo, lo, acc0);
    acc1 = _mm512_fmadd_pd(hi, hi, acc1);
  }
  if (i < d) {
    const __m512 v = _mm512_maskz_loadu_ps(TailMask(d - i), x + i);
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
    acc0 = _mm512_fmadd_pd(lo, lo, acc0);
    acc1 = _mm512_fmadd_pd(hi, hi, acc1);
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
}

inline float InvRms(const float* x, int64_t d, float eps) {
  return static_cast<float>(1.0 / std::sqrt(SumSquares(x, d) / static_cast<double>(d) + eps));
}

// Round half away from zero of integral-range values (|v| < 2^23), exactly:
// truncate, then step away from zero when the dropped fraction is >= 0.5.
inline __m512 RoundHalfAway(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
  const __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512 one = _mm512_castsi512_ps(_mm512_or_si512(
      _mm512_castps_si512(_mm512_set1_ps(1.0f)),
      _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(static_cast<int32_t>(0x80000000u)))));
  return _mm512_mask_add_ps(t, up, t, one);
}

struct MaxOp {
  __m512 operator()(__m512 a, __m512 b) const { return _mm512_max_ps(a, b); }
};
struct AddOp {
  __m512 operator()(__m512 a, __m512 b) const { return _mm512_add_ps(a, b); }
};

// Reduces 16 vectors at once: lane i of the result = op over the 16 lanes of
// v[i]. Four shuffle levels (128-bit lane pairs, lanes, element pairs,
// elements) take 15 ops instead of 16 separate horizontal reductions; a final
// permute restores the order. op must be associative and commutative on the
// values involved (max; add of exactly representable integers).
template <typename Op>
inline __m512 Reduce16(const __m512 (&v)[16], Op op) {
  __m512 t[8], u[4], w[2];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i)  // lanes 0-1: v[2i], lanes 2-3: v[2i+1]
    t[i] = op(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
              _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i)  // lane j: 4 partials of v[4i + j]
    u[i] = op(_mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0x88),
              _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0xDD));
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i)  // lane j: 2 partials each of v[8i + j], v[8i + 4 + j]
    w[i] = op(_mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0x44),
              _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0xEE));
  // lane j, element e: the reduction of v[4e + j]
  const __m512 r = op(_mm512_shuffle_ps(w[0], w[1], 0x88), _mm512_shuffle_ps(w[0], w[1], 0xDD));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_ps(order, r);
}

}  // namespace

void QuantizeRowQ8(const float* x, int64_t k, int8_t* qs, float* d, int32_t* corr) {
  const int64_t nb = k / 32;
  const __m512 zero = _mm512_setzero_ps();
  // Groups of 16 blocks: the per-block max and sum reductions of a group are
  // done together (Reduce16), and d = amax/127, id = 1/d as one vector each.
  // Every operation is exact or the same IEEE operation as in the scalar
  // rule, so the output is bit-identical to reference::QuantizeRowQ8.
  for (int64_t b0 = 0; b0 < nb; b0 += 16) {
    const int n = nb - b0 < 16 ? static_cast<int>(nb - b0) : 16;
    __m512 am[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      const int64_t b = b0 + (i < n ? i : 0);  // spare lanes repeat block b0
      am[i] = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + b * 32)),
                            _mm512_abs_ps(_mm512_loadu_ps(x + b * 32 + 16)));
    }
    const __m512 dv = _mm512_div_ps(Reduce16(am, MaxOp()), _mm512_set1_ps(127.0f));
    const __mmask16 nonzero = _mm512_cmp_ps_mask(dv, zero, _CMP_NEQ_OQ);
    const __m512 idv = _mm512_maskz_div_ps(nonzero, _mm512_set1_ps(1.0f), dv);
    const __mmask16 valid = TailMask(n);
    _mm512_mask_storeu_ps(d + b0, valid, dv);
    alignas(64) float ids[16];
    _mm512_store_ps(ids, idv);
    __m512 sums[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      if (i >= n) {
        sums[i] = zero;
        continue;
      }
      const int64_t b = b0 + i;
      const __m512 id = _mm512_set1_ps(ids[i]);
      const __m512 r0 = RoundHalfAway(_mm512_mul_ps(_mm512_loadu_ps(x + b * 32), id));
      const __m512 r1 = RoundHalfAway(_mm512_mul_ps(_mm512_loadu_ps(x + b * 32 + 16), id));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + b * 32), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(r0)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + b * 32 + 16), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(r1)));
      sums[i] = _mm512_add_ps(r0, r1);  // integers of magnitude <= 32 * 127: exact in fp32
    }
    const __m512i total = _mm512_cvttps_epi32(Reduce16(sums, AddOp()));
    _mm512_mask_storeu_epi32(corr + b0, valid, _mm512_mullo_epi32(total, _mm512_set1_epi32(-128)));
  }
}

void RmsNormRow(const float* x, int64_t d, const float* gamma, float eps, float* out) {
  const __m512 inv = _mm512_set1_ps(InvRms(x, d, eps));
  for (int64_t i = 0; i < d; i += 16) {
    const __mmask16 m = TailMask(d - i);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv);
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, gamma + i)));
  }
}

void RmsNormAddRow(const float* y, int64_t d, const float* gamma, float eps, float* x) {
  const __m512 inv = _mm512_set1_ps(InvRms(y, d, eps));
  for (int64_t i = 0; i < d; i += 16) {
    const __mmask16 m = TailMask(d - i);
    const __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), inv),
                                   _mm512_maskz_loadu_ps(m, gamma + i));
    _mm512_mask_storeu_ps(x + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, x + i), v));
  }
}

void L2NormalizeRow(float* x, int64_t d) {
  const double ss = SumSquares(x, d);
  if (ss <= 0.0) return;
  const __m512d inv = _mm512_set1_pd(1.0 / std::sqrt(ss));
  for (int64_t i = 0; i < d; i += 8) {
    const __mmask8 m = static_cast<__mmask8>(d - i >= 8 ? 0xff : (1u << (d - i)) - 1u);
    const __m512d v = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, x + i));
    _mm256_mask_storeu_ps(x + i, m, _mm512_cvtpd_ps(_mm512_mul_pd(v, inv)));
  }
}

void RopeNeoxRow(float* x, int64_t heads, int64_t dh, const float* cs, const float* sn) {
  const int64_t half = dh / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* xa = x + h * dh;
    float* xb = xa + half;
    for (int64_t i = 0; i < half; i += 16) {
      const __mmask16 m = TailMask(half - i);
      const __m512 a = _mm512_maskz_loadu_ps(m, xa + i), b = _mm512_maskz_loadu_ps(m, xb + i);
      const __m512 c = _mm512_maskz_loadu_ps(m, cs + i), s = _mm512_maskz_loadu_ps(m, sn + i);
      // Same unfused operations as the reference, so results are identical.
      _mm512_mask_storeu_ps(xa + i, m, _mm512_sub_ps(_mm512_mul_ps(a, c), _mm512_mul_ps(b, s)));
      _mm512_mask_storeu_ps(xb + i, m, _mm512_add_ps(_mm512_mul_ps(a, s), _mm512_mul_ps(b, c)));
    }
  }
}

float SoftmaxRow(float* s, int64_t n, int64_t lo, int64_t hi, float scale) {
  const __m512 sc = _mm512_set1_ps(scale);
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t j = lo; j < hi; j += 16) {
    const __mmask16 m = TailMask(hi - j);
    mx = _mm512_mask_max_ps(mx, m, mx, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + j), sc));
  }
  const __m512 mxv = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  __m512 sum = _mm512_setzero_ps();
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t j = 0; j < lo; j += 16) _mm512_mask_storeu_ps(s + j, TailMask(lo - j), zero);
  for (int64_t j = lo; j < hi; j += 16) {
    const __mmask16 m = TailMask(hi - j);
    const __m512 e = Exp(_mm512_sub_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + j), sc), mxv));
    sum = _mm512_mask_add_ps(sum, m, sum, e);
    _mm512_mask_storeu_ps(s + j, m, e);
  }
  for (int64_t j = hi; j < n; j += 16) _mm512_mask_storeu_ps(s + j, TailMask(n - j), zero);
  return _mm512_reduce_add_ps(sum);
}

void GeGlu(const float* gate, const float* up, int64_t n, float* out) {
  const __m512 c = _mm512_set1_ps(-2.0f * 0.7978845608028654f);
  const __m512 a = _mm512_set1_ps(0.044715f);
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    const __m512 z = _mm512_maskz_loadu_ps(m, gate + i);
    // u = z + 0.044715 z^3; gelu = z / (1 + exp(-2 sqrt(2/pi) u)).
    const __m512 u = _mm512_fmadd_ps(_mm512_mul_ps(a, z), _mm512_mul_ps(z, z), z);
    const __m512 g = _mm512_div_ps(z, _mm512_add_ps(one, Exp(_mm512_mul_ps(c, u))));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(g, _mm512_maskz_loadu_ps(m, up + i)));
  }
}

void Add(const float* a, const float* b, int64_t n, float* out) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    _mm512_mask_storeu_ps(out + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
  }
}

void Scale(const float* x, int64_t n, float s, float* out) {
  const __m512 sv = _mm512_set1_ps(s);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), sv));
  }
}

void F16ToF32(const uint16_t* src, int64_t n, float s, float* out) {
  const __m512 sv = _mm512_set1_ps(s);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    const __m512 v = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + i));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(v, sv));
  }
}

void Bf16ToF32(const uint16_t* src, int64_t n, float s, float* out) {
  const __m512 sv = _mm512_set1_ps(s);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src + i));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w, 16)), sv));
  }
}

void Q8_0ToF32(const BlockQ8_0* src, int64_t n, float s, float* out) {
  const __m512 sv = _mm512_set1_ps(s);
  for (int64_t b = 0; b < n / 32; ++b) {
    const __m512 d = _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<short>(src[b].d)));
    for (int h = 0; h < 2; ++h) {
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src[b].qs + h * 16));
      const __m512 v = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)));
      _mm512_storeu_ps(out + b * 32 + h * 16, _mm512_mul_ps(v, sv));
    }
  }
}

}  // namespace gembed::avx512vnni
