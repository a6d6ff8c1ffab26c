#include "kernels/reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "base/half.h"
#include "kernels/kernels.h"

namespace gembed::reference {
namespace {
// sqrt(2/pi) rounded to fp32, the GELU-tanh constant.
constexpr float kGeluC = 0.7978845608028654f;
constexpr float kGeluA = 0.044715f;
}  // namespace

float RoundHalfAway(float v) { return std::round(v); }  // std::round rounds half away from zero

void QuantizeRowQ8(const float* x, int64_t k, int8_t* qs, float* d, int32_t* corr) {
  for (int64_t b = 0; b < k / kQ8BlockElems; ++b) {
    const float* xb = x + b * kQ8BlockElems;
    float amax = 0.0f;
    for (int t = 0; t < kQ8BlockElems; ++t) amax = std::max(amax, std::fabs(xb[t]));
    const float db = amax / 127.0f;
    const float id = db != 0.0f ? 1.0f / db : 0.0f;
    int32_t sum = 0;
    for (int t = 0; t < kQ8BlockElems; ++t) {
      const int q = static_cast<int>(RoundHalfAway(xb[t] * id));
      qs[b * kQ8BlockElems + t] = static_cast<int8_t>(q);
      sum += q;
    }
    d[b] = db;
    corr[b] = -128 * sum;
  }
}

void QuantizeRowQ8_0(const float* x, int64_t k, BlockQ8_0* out) {
  for (int64_t b = 0; b < k / kQ8BlockElems; ++b) {
    const float* xb = x + b * kQ8BlockElems;
    float amax = 0.0f;
    for (int t = 0; t < kQ8BlockElems; ++t) amax = std::max(amax, std::fabs(xb[t]));
    const float db = amax / 127.0f;
    const float id = db != 0.0f ? 1.0f / db : 0.0f;
    out[b].d = F32ToF16(db);
    for (int t = 0; t < kQ8BlockElems; ++t)
      out[b].qs[t] = static_cast<int8_t>(RoundHalfAway(xb[t] * id));
  }
}

void GemmQ8(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd,
            const int32_t* xcorr, const uint8_t* wq, const uint16_t* wd, float* y, int64_t ldy) {
  (void)xcorr;  // the reference removes the +128 weight bias directly
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const int64_t p = j / kPanelWidth, r = j % kPanelWidth;
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* wb = wq + (p * nb + b) * (kPanelWidth * kQ8BlockElems);
        const int8_t* xb = xq + i * nb * kQ8BlockElems + b * kQ8BlockElems;
        int32_t dot = 0;
        for (int t = 0; t < kQ8BlockElems; ++t) {
          const int g = t / 4, s = t % 4;
          const int w = static_cast<int>(wb[(g * kPanelWidth + r) * 4 + s]) - 128;
          dot += w * static_cast<int>(xb[t]);
        }
        const float dw = gembed::F16ToF32(wd[(p * nb + b) * kPanelWidth + r]);
        acc = std::fma(static_cast<float>(dot) * dw, xd[i * nb + b], acc);
      }
      y[i * ldy + j] = acc;
    }
  }
}

void GemmF32(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
             int64_t ldb, int64_t b_panel_stride, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const float* bp = b + (j / kPanelWidth) * b_panel_stride + j % kPanelWidth;
      float acc = 0.0f;
      for (int64_t kk = 0; kk < k; ++kk) acc += a[i * lda + kk] * bp[kk * ldb];
      c[i * ldc + j] = acc;
    }
  }
}

namespace {
float InvRms(const float* x, int64_t d, float eps) {
  double ss = 0.0;
  for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(x[i]) * x[i];
  return static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(d) + eps));
}
}  // namespace

void RmsNormRow(const float* x, int64_t d, const float* gamma, float eps, float* out) {
  const float inv = InvRms(x, d, eps);
  for (int64_t i = 0; i < d; ++i) out[i] = x[i] * inv * gamma[i];
}

void RmsNormAddRow(const float* y, int64_t d, const float* gamma, float eps, float* x) {
  const float inv = InvRms(y, d, eps);
  for (int64_t i = 0; i < d; ++i) x[i] += y[i] * inv * gamma[i];
}

void L2NormalizeRow(float* x, int64_t d) {
  double ss = 0.0;
  for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(x[i]) * x[i];
  if (ss <= 0.0) return;  // zero vector stays zero
  const double inv = 1.0 / std::sqrt(ss);
  for (int64_t i = 0; i < d; ++i) x[i] = static_cast<float>(x[i] * inv);
}

void RopeNeoxRow(float* x, int64_t heads, int64_t dh, const float* cs, const float* sn) {
  const int64_t half = dh / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* xh = x + h * dh;
    for (int64_t i = 0; i < half; ++i) {
      const float a = xh[i], b = xh[i + half];
      xh[i] = a * cs[i] - b * sn[i];
      xh[i + half] = a * sn[i] + b * cs[i];
    }
  }
}

float SoftmaxRow(float* s, int64_t n, int64_t lo, int64_t hi, float scale) {
  float mx = -INFINITY;
  for (int64_t j = lo; j < hi; ++j) mx = std::max(mx, s[j] * scale);
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    if (j < lo || j >= hi) {
      s[j] = 0.0f;
      continue;
    }
    s[j] = std::exp(s[j] * scale - mx);
    sum += s[j];
  }
  return sum;
}

void GeGlu(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float z = gate[i];
    const float u = kGeluC * (z + kGeluA * z * z * z);
    // 0.5 z (1 + tanh(u)) == z / (1 + exp(-2u)); exp overflow gives -0 / +0.
    out[i] = z / (1.0f + std::exp(-2.0f * u)) * up[i];
  }
}

void Add(const float* a, const float* b, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void Scale(const float* x, int64_t n, float s, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * s;
}

void F16ToF32(const uint16_t* src, int64_t n, float s, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = gembed::F16ToF32(src[i]) * s;
}

void Bf16ToF32(const uint16_t* src, int64_t n, float s, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = gembed::Bf16ToF32(src[i]) * s;
}

void Q8_0ToF32(const BlockQ8_0* src, int64_t n, float s, float* out) {
  for (int64_t b = 0; b < n / kQ8BlockElems; ++b) {
    const float d = gembed::F16ToF32(src[b].d);
    for (int t = 0; t < kQ8BlockElems; ++t)
      out[b * kQ8BlockElems + t] = d * static_cast<float>(src[b].qs[t]) * s;
  }
}

void Attention(const float* q, const float* k, const float* v, const int32_t* cu_seqlens,
               int64_t n_seqs, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
               int64_t window, float scale, float* out) {
  const int64_t group = n_heads / n_kv_heads;
  const int64_t q_stride = n_heads * head_dim, kv_stride = n_kv_heads * head_dim;
  std::vector<float> p;
  for (int64_t s = 0; s < n_seqs; ++s) {
    const int64_t begin = cu_seqlens[s], end = cu_seqlens[s + 1];
    p.resize(static_cast<size_t>(end - begin));
    for (int64_t h = 0; h < n_heads; ++h) {
      const int64_t g = h / group;
      for (int64_t i = begin; i < end; ++i) {
        const float* qi = q + i * q_stride + h * head_dim;
        float mx = -INFINITY;
        for (int64_t j = begin; j < end; ++j) {
          float& pj = p[static_cast<size_t>(j - begin)];
          if (window >= 0 && std::abs(i - j) > window) {
            pj = -INFINITY;
            continue;
          }
          const float* kj = k + j * kv_stride + g * head_dim;
          float dot = 0.0f;
          for (int64_t c = 0; c < head_dim; ++c) dot += qi[c] * kj[c];
          pj = dot * scale;
          mx = std::max(mx, pj);
        }
        float sum = 0.0f;
        for (float& pj : p) {
          pj = pj == -INFINITY ? 0.0f : std::exp(pj - mx);
          sum += pj;
        }
        float* oi = out + i * q_stride + h * head_dim;
        for (int64_t c = 0; c < head_dim; ++c) {
          float acc = 0.0f;
          for (int64_t j = begin; j < end; ++j)
            acc += p[static_cast<size_t>(j - begin)] * v[j * kv_stride + g * head_dim + c];
          oi[c] = acc / sum;
        }
      }
    }
  }
}

void MeanPool(const float* x, int64_t d, const int32_t* cu_seqlens, int64_t n_seqs, float* out) {
  std::vector<double> acc(static_cast<size_t>(d));
  for (int64_t s = 0; s < n_seqs; ++s) {
    std::fill(acc.begin(), acc.end(), 0.0);
    const int64_t begin = cu_seqlens[s], end = cu_seqlens[s + 1];
    for (int64_t t = begin; t < end; ++t)
      for (int64_t c = 0; c < d; ++c) acc[static_cast<size_t>(c)] += x[t * d + c];
    const double inv = end > begin ? 1.0 / static_cast<double>(end - begin) : 0.0;
    for (int64_t c = 0; c < d; ++c) out[s * d + c] = static_cast<float>(acc[static_cast<size_t>(c)] * inv);
  }
}

}  // namespace gembed::reference

// ---- 4-bit and block-sparse entries ------------------------------------------
namespace gembed::reference {

void QuantizeRowQ4_0(const float* x, int64_t k, BlockQ4_0* out) {
  for (int64_t b = 0; b < k / kQ4BlockElems; ++b) {
    const float* xb = x + b * kQ4BlockElems;
    float amax = 0.0f, max = 0.0f;
    for (int t = 0; t < kQ4BlockElems; ++t) {
      if (amax < std::fabs(xb[t])) {
        amax = std::fabs(xb[t]);
        max = xb[t];
      }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = gembed::F32ToF16(d);
    for (int t = 0; t < kQ4BlockElems / 2; ++t) {
      const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(xb[t] * id + 8.5f)));
      const int hi = std::min(15, static_cast<int>(static_cast<int8_t>(xb[t + 16] * id + 8.5f)));
      out[b].qs[t] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void QuantizeRowQ4_1(const float* x, int64_t k, BlockQ4_1* out) {
  for (int64_t b = 0; b < k / kQ4BlockElems; ++b) {
    const float* xb = x + b * kQ4BlockElems;
    float mn = std::numeric_limits<float>::max(), mx = -std::numeric_limits<float>::max();
    for (int t = 0; t < kQ4BlockElems; ++t) {
      mn = std::min(mn, xb[t]);
      mx = std::max(mx, xb[t]);
    }
    const float d = (mx - mn) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = gembed::F32ToF16(d);
    out[b].m = gembed::F32ToF16(mn);
    for (int t = 0; t < kQ4BlockElems / 2; ++t) {
      const int lo = std::min(15, static_cast<int>(static_cast<int8_t>((xb[t] - mn) * id + 0.5f)));
      const int hi = std::min(15, static_cast<int>(static_cast<int8_t>((xb[t + 16] - mn) * id + 0.5f)));
      out[b].qs[t] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void Q4_0ToF32(const BlockQ4_0* src, int64_t n, float s, float* out) {
  for (int64_t b = 0; b < n / kQ4BlockElems; ++b) {
    const float d = gembed::F16ToF32(src[b].d);
    for (int t = 0; t < kQ4BlockElems / 2; ++t) {
      out[b * kQ4BlockElems + t] = d * static_cast<float>((src[b].qs[t] & 15) - 8) * s;
      out[b * kQ4BlockElems + t + 16] = d * static_cast<float>((src[b].qs[t] >> 4) - 8) * s;
    }
  }
}

void Q4_1ToF32(const BlockQ4_1* src, int64_t n, float s, float* out) {
  for (int64_t b = 0; b < n / kQ4BlockElems; ++b) {
    const float d = gembed::F16ToF32(src[b].d), m = gembed::F16ToF32(src[b].m);
    for (int t = 0; t < kQ4BlockElems / 2; ++t) {
      out[b * kQ4BlockElems + t] = (d * static_cast<float>(src[b].qs[t] & 15) + m) * s;
      out[b * kQ4BlockElems + t + 16] = (d * static_cast<float>(src[b].qs[t] >> 4) + m) * s;
    }
  }
}

void GemmQ4(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd, const int32_t* xcorr,
            const uint8_t* wq, const uint16_t* wd, const uint16_t* wm, float* y, int64_t ldy) {
  (void)xcorr;  // the reference sums the activations itself
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const int64_t p = j / kPanelWidth, r = j % kPanelWidth;
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* wb = wq + (p * nb + b) * kQ4PanelBlockBytes;
        const int8_t* xb = xq + i * nb * kQ8BlockElems + b * kQ8BlockElems;
        int32_t dot = 0, sum = 0;
        for (int t = 0; t < kQ8BlockElems; ++t) {
          const int kk = t % 16, g = kk / 4, s = kk % 4;
          const uint8_t byte = wb[(g * kPanelWidth + r) * 4 + s];
          int q = t < 16 ? (byte & 15) : (byte >> 4);
          if (wm == nullptr) q -= 8;
          dot += q * static_cast<int>(xb[t]);
          sum += xb[t];
        }
        const int64_t si = (p * nb + b) * kPanelWidth + r;
        const float dx = xd[i * nb + b];
        acc = std::fma(static_cast<float>(dot) * gembed::F16ToF32(wd[si]), dx, acc);
        if (wm != nullptr) acc = std::fma(gembed::F16ToF32(wm[si]), dx * static_cast<float>(sum), acc);
      }
      y[i * ldy + j] = acc;
    }
  }
}

void GemmQ8Sparse(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd, const int32_t* xcorr,
                  const uint8_t* wq, const uint16_t* wd, const int32_t* panel_ptr, const int32_t* blk, float* y,
                  int64_t ldy) {
  (void)xcorr;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const int64_t p = j / kPanelWidth, r = j % kPanelWidth;
      float acc = 0.0f;
      for (int32_t e = panel_ptr[p]; e < panel_ptr[p + 1]; ++e) {
        const int64_t b = blk[e];
        const uint8_t* wb = wq + static_cast<int64_t>(e) * kQ8PanelBlockBytes;
        const int8_t* xb = xq + i * nb * kQ8BlockElems + b * kQ8BlockElems;
        int32_t dot = 0;
        for (int t = 0; t < kQ8BlockElems; ++t) {
          const int g = t / 4, s = t % 4;
          dot += (static_cast<int>(wb[(g * kPanelWidth + r) * 4 + s]) - 128) * static_cast<int>(xb[t]);
        }
        const float dw = gembed::F16ToF32(wd[static_cast<int64_t>(e) * kPanelWidth + r]);
        acc = std::fma(static_cast<float>(dot) * dw, xd[i * nb + b], acc);
      }
      y[i * ldy + j] = acc;
    }
  }
}

}  // namespace gembed::reference
