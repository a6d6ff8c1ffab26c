// KernelTable: the single-thread compute kernels of one instruction-set level.
//
// Every entry exists once per ISA level:
//   kGeneric    reference.cc, portable scalar C++ (also the test oracle);
//   kAvx2       cpu/*_avx2.cc, AVX2 + FMA + F16C (Haswell / Zen 1 and later);
//   kAvx512Vnni cpu/*_avx512vnni.cc, AVX-512 F/BW/VL/DQ + VNNI (Ice Lake / Zen 4);
//               on Intel AMX hosts its gemm_q8 has opt-in AMX variants (cpu/gemm_amx.cc).
// Tables are immutable and built into the binary; cpu/dispatch.h picks one at
// start-up (CPUID + XGETBV, GEMBED_ISA override). Nothing here owns threads or
// memory: the Ops object (ops.h) splits work over a ThreadPool and calls these
// entries from several threads at once on disjoint outputs, so every entry is
// reentrant and writes only the memory its arguments name.
//
// Conventions: all activations are fp32 row-major; "row" = one token. Sizes are
// int64_t element counts; ld* are row strides in elements. Outputs never alias
// inputs unless an entry says "in place allowed".
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/dtype.h"

namespace gembed {

enum class Isa : int { kGeneric = 0, kAvx2 = 1, kAvx512Vnni = 2 };

std::string_view IsaName(Isa isa);                        // "generic", "avx2", "avx512vnni"
// Inverse of IsaName (case-insensitive); "avx512" is accepted for avx512vnni.
std::optional<Isa> IsaFromName(std::string_view name);

// Packed weight panels (produced by PackMatrix, ops.h) are column panels of
// kPanelWidth output features. See PackedMatrix for the byte layout.
inline constexpr int64_t kPanelWidth = 16;
// Bytes of int8 weights per (panel, 32-element block): 8 groups of 4 k x 16 rows.
inline constexpr int64_t kQ8PanelBlockBytes = kPanelWidth * kQ8BlockElems;
// Bytes of 4-bit weights per (panel, 32-element block): 4 groups of 64 bytes,
// each byte two weights (see PackedMatrix, kQ4Panels).
inline constexpr int64_t kQ4PanelBlockBytes = kPanelWidth * kQ8BlockElems / 2;

using GemmQ8Fn = void (*)(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd,
                          const int32_t* xcorr, const uint8_t* wq, const uint16_t* wd, float* y,
                          int64_t ldy);

// One implementation of KernelTable::gemm_q8 (a tile shape / vector width /
// prefetch choice). All variants of a level give bit-identical results; the
// tuner (kernels/tune.h) picks the fastest on the running CPU.
struct GemmQ8Variant {
  const char* name;
  GemmQ8Fn fn;
};

struct KernelTable {
  Isa isa = Isa::kGeneric;

  // ---- Q8_0 GEMM ---------------------------------------------------------
  // Quantises one activation row x[k] (k % 32 == 0) with ggml's block_q8_0
  // rule per 32-block: d = max|x| / 127, id = d ? 1/d : 0, q = roundf(x * id)
  // (round half away from zero). Outputs: qs[k] int8, d[k/32] fp32 (kept in
  // fp32, not rounded to fp16), corr[k/32] = -128 * sum(q) over the block (the
  // VNNI kernels add 128 to the weights, see PackedMatrix).
  void (*quantize_row_q8)(const float* x, int64_t k, int8_t* qs, float* d, int32_t* corr);

  // y[i*ldy + j] = sum_b fma-chain( float(dot_b(i, j)) * dw[j][b], dx[i][b] )
  // for i < m, j < n, where dot_b is the exact int32 dot product of block b.
  // Activations: xq [m x nb*32] int8 (row stride nb*32), xd / xcorr [m x nb].
  // Weights: wq / wd point at the first panel of the range; panel p holds
  // columns 16p..16p+15 (wq + p*nb*512 bytes, wd + p*nb*16 fp16 scales).
  // n <= 16 * panels; the last panel may be partial (its padding is read, not written).
  // Float accumulation order is fixed (blocks in order, one fma per block), so
  // every ISA produces bit-identical results.
  GemmQ8Fn gemm_q8;

  // ---- 4-bit GEMM (Q4_0 / Q4_1 weights x Q8 activations) -------------------
  // Same activations and contract as gemm_q8. Weights: panel p, block b is
  // 256 bytes at wq + (p*nb + b)*256, ordered [g = 0..3][j = 0..15][t = 0..3];
  // byte (g, j, t) holds q[16p+j][32b+4g+t] in its low nibble and
  // q[16p+j][32b+16+4g+t] in its high nibble (q in [0, 15]), so one AND and
  // one shift+AND give two 64-byte vpdpbusd operands. Scales wd as gemm_q8.
  //   wm == nullptr (Q4_0): w = d * (q - 8); dot_b = sum (q - 8) x, exact int32;
  //     y = sum_b fma(float(dot_b) * dw, dx, acc).
  //   wm != nullptr (Q4_1): w = d * q + m, mins laid out like wd;
  //     dot_b = sum q x; s_b = sum x (the int8 activations of block b);
  //     acc = fma(float(dot_b) * dw, dx, acc); acc = fma(m, dx * float(s_b), acc).
  // Fixed float order (blocks in order): every ISA is bit-identical.
  void (*gemm_q4)(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd,
                  const int32_t* xcorr, const uint8_t* wq, const uint16_t* wd, const uint16_t* wm,
                  float* y, int64_t ldy);

  // ---- block-sparse Q8 GEMM --------------------------------------------------
  // gemm_q8 over a matrix whose all-zero (panel, block) tiles are not stored:
  // panel p (p < ceil(n/16), counted from the first panel of the range) owns
  // entries e in [panel_ptr[p], panel_ptr[p+1]); entry e is block blk[e] (blocks
  // ascending within a panel), its 512 weight bytes at wq + e*512 and its 16
  // fp16 scales at wd + e*16 (wq / wd are the matrix's entry arrays; entry
  // indices are absolute). A skipped block adds exactly 0, so the result is
  // bit-identical to gemm_q8 on the dense matrix.
  void (*gemm_q8_sparse)(int64_t m, int64_t n, int64_t nb, const int8_t* xq, const float* xd,
                         const int32_t* xcorr, const uint8_t* wq, const uint16_t* wd,
                         const int32_t* panel_ptr, const int32_t* blk, float* y, int64_t ldy);

  // ---- fp32 GEMM -----------------------------------------------------------
  // c[i*ldc + j] = sum_kk a[i*lda + kk] * B(kk, j) for i < m, j < n (overwrites c).
  // B is given as column panels of 16: B(kk, j) = b[(j/16)*b_panel_stride + kk*ldb + j%16].
  // Only columns j < n are read. Accumulation is fp32, sequential over kk.
  // Used for packed F32/F16/BF16 weights (ldb = 16, panel stride 16*k), for
  // attention scores against packed K^T and for P.V against V rows directly.
  void (*gemm_f32)(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                   int64_t ldb, int64_t b_panel_stride, float* c, int64_t ldc);

  // ---- normalisation -------------------------------------------------------
  // out[i] = x[i] * inv * gamma[i], inv = float(1 / sqrt(sum(x^2)/d + eps)),
  // sum of squares accumulated in double. In place (out == x) allowed.
  void (*rmsnorm_row)(const float* x, int64_t d, const float* gamma, float eps, float* out);
  // x[i] += y[i] * inv(y) * gamma[i]: the sandwich norm's residual add.
  void (*rmsnorm_add_row)(const float* y, int64_t d, const float* gamma, float eps, float* x);
  // x[0..d) /= ||x||_2 (double sum); a zero vector stays zero. In place.
  void (*l2_normalize_row)(float* x, int64_t d);

  // ---- position / attention helpers ---------------------------------------
  // NeoX RoPE of one token: x [heads x dh], rotating (x[i], x[i+dh/2]) of every
  // head by the angle whose cos/sin are cs[i], sn[i] (i < dh/2). In place.
  void (*rope_neox_row)(float* x, int64_t heads, int64_t dh, const float* cs, const float* sn);
  // Softmax helper for one score row s[0..n): entries j in [lo, hi) become
  // exp(s[j]*scale - max), all others 0; returns the sum of the kept entries
  // (the caller divides). max is taken over [lo, hi); requires lo < hi.
  float (*softmax_row)(float* s, int64_t n, int64_t lo, int64_t hi, float scale);

  // ---- element-wise --------------------------------------------------------
  // out = gelu_tanh(gate) * up, gelu_tanh(z) = 0.5 z (1 + tanh(c (z + 0.044715 z^3))),
  // evaluated as z / (1 + exp(-2 c (z + 0.044715 z^3))) (the same function
  // without the 1 + tanh cancellation), fp32 with an accurate exp.
  void (*geglu)(const float* gate, const float* up, int64_t n, float* out);
  void (*add)(const float* a, const float* b, int64_t n, float* out);  // out may alias a or b
  void (*scale)(const float* x, int64_t n, float s, float* out);      // out may alias x

  // ---- conversions (embedding rows) ----------------------------------------
  // out[i] = float(src[i]) * s for fp16 / bf16 sources, and d * q * s for
  // Q8_0 blocks (n % 32 == 0; block scale d is fp16).
  void (*f16_to_f32)(const uint16_t* src, int64_t n, float s, float* out);
  void (*bf16_to_f32)(const uint16_t* src, int64_t n, float s, float* out);
  void (*q8_0_to_f32)(const BlockQ8_0* src, int64_t n, float s, float* out);
  // d * (q - 8) * s and (d * q + m) * s for Q4_0 / Q4_1 blocks (n % 32 == 0).
  void (*q4_0_to_f32)(const BlockQ4_0* src, int64_t n, float s, float* out);
  void (*q4_1_to_f32)(const BlockQ4_1* src, int64_t n, float s, float* out);
};

// The table of one level. Only meaningful for levels the host supports
// (see cpu/dispatch.h); calling an unsupported level's kernels faults.
const KernelTable& GetKernelTable(Isa isa);

}  // namespace gembed
