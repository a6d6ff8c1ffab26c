// Ops: the multi-threaded operator API the forward pass calls.
//
// An Ops object bundles one KernelTable (the ISA level), a ThreadPool and the
// scratch memory the operators need (quantised activations, attention score
// tiles). Scratch grows on first use and is then reused, so steady-state calls
// with the same shapes do not allocate.
//
// Threading contract: one caller thread at a time per Ops object (like the
// ThreadPool it drives); each call blocks until the work is done, and the
// caller thread computes too. Results never depend on the number of threads:
// every output element is computed by exactly one thread in a fixed order, so
// a pool of 1, 2 or 3 threads gives bit-identical outputs.
//
// Tensors: activations are fp32, row-major, one row per token; T is the total
// number of tokens of all packed sequences (TEI-style flat batch), and
// cu_seqlens = {0, len0, len0+len1, ...} (n_seqs + 1 entries, non-decreasing).
// Shape mismatches between arguments the caller controls (m, k, n) are
// programmer errors (GEMBED_DCHECK); anything derived from user input (token
// ids, sequence lengths, positions) is validated and reported as a Status.
// Scratch growth that runs out of memory is fatal (GEMBED_CHECK): the engine
// bounds batch sizes, so this is an environment failure, not bad input.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"
#include "base/tensor.h"
#include "base/thread_pool.h"
#include "kernels/aligned_buffer.h"
#include "kernels/kernels.h"

namespace gembed {

// How a PackedMatrix stores its weights.
enum class PackedFormat : int {
  kF32Panels = 0,        // F32 / F16 / BF16 sources (and Q8_0 / Q4_x with widen_q8), widened to fp32
  kQ8Panels = 1,         // Q8_0 sources, int8 repacked for VNNI, fp16 block scales kept
  kQ4Panels = 2,         // Q4_0 / Q4_1 sources, nibbles repacked for VNNI, fp16 scales (and mins) kept
  kQ8SparsePanels = 3,   // Q8_0 sources with enough all-zero 16 x 32 tiles: only the others stored
};

// A 2-D weight W [n x k] (GGUF ne0 = k input features, ne1 = n output rows)
// repacked once at load time into column panels of kPanelWidth (16) output
// rows; n is padded up to a multiple of 16 with zero rows.
//
// kF32Panels: panel p is float[k][16]: element (kk, j) = W[16p + j][kk].
//   Packed bytes: 4 * 16 * k per panel.
// kQ8Panels (k % 32 == 0, nb = k/32 blocks per row):
//   q8_qs: panel p, block b occupy 512 bytes at (p*nb + b)*512, ordered
//          [g = 0..7][j = 0..15][t = 0..3] -> uint8(W_q[16p+j][32b+4g+t] + 128):
//          the 4 consecutive k of one output row form one 32-bit lane, the
//          layout vpdpbusd consumes (16 rows per 512-bit register). The +128
//          bias turns the weights into the unsigned operand of vpdpbusd, so
//          the signed activations can be broadcast straight from memory; the
//          bias is removed exactly through the activation block sums
//          (dot = sum (w+128) x - 128 sum x).
//   q8_scales: fp16 block scales, panel p block b row j at (p*nb + b)*16 + j.
//   34 bytes per 32 weights, as in the GGUF file.
// kQ4Panels (k % 32 == 0): q4_qs: panel p, block b occupy 256 bytes at
//   (p*nb + b)*256, ordered [g = 0..3][j = 0..15][t = 0..3]; the byte holds
//   q[16p+j][32b+4g+t] (low nibble) and q[16p+j][32b+16+4g+t] (high nibble),
//   i.e. GGUF byte qs[4g+t] of row 16p+j's block b moved, not changed. Then the
//   fp16 scales (as q8_scales) and, for Q4_1, the fp16 mins in the same order.
//   18 (Q4_0) or 20 (Q4_1) bytes per 32 weights. Padding rows: q 0, d 0, m 0.
// kQ8SparsePanels: a kQ8Panels matrix without its all-zero (panel, block)
//   tiles (every int8 weight of the 16 rows x 32 k is 0). Entry e (in panel
//   order, blocks ascending) stores one kept tile: 512 bytes at e*512, then
//   after all entries its 16 fp16 scales at e*16. panel_ptr[p]..panel_ptr[p+1]
//   are panel p's entries, blk[e] the block index of entry e. Chosen by
//   PackMatrix when at least PackOptions::sparse_min_zero_fraction of the
//   tiles are zero; gemm_q8_sparse skips the rest, bit-identical to dense.
struct PackedMatrix {
  PackedFormat format = PackedFormat::kF32Panels;
  DType source_dtype = DType::kF32;  // dtype of the GGUF tensor this came from
  int64_t k = 0;                     // input features (GGUF ne0)
  int64_t n = 0;                     // output features (GGUF ne1)
  int64_t panels = 0;                // ceil(n / 16)
  // The packed bytes: f32 panels, or q8 qs followed by scales. They live in
  // `owned` (PackMatrix without storage) or in caller-provided storage (a
  // model's weight arena), which must outlive the matrix.
  AlignedBuffer owned;
  uint8_t* storage = nullptr;

  // kQ8SparsePanels only: panels + 1 entry offsets, and the block of each entry.
  std::vector<int32_t> panel_ptr, blk;

  int64_t blocks() const { return k / kQ8BlockElems; }  // Q8 / Q4: blocks per row
  const uint8_t* bytes() const { return storage; }
  const float* f32_panels() const { return reinterpret_cast<const float*>(storage); }
  const uint8_t* q8_qs() const { return storage; }
  const uint16_t* q8_scales() const {
    return reinterpret_cast<const uint16_t*>(storage + panels * blocks() * kQ8PanelBlockBytes);
  }
  const uint8_t* q4_qs() const { return storage; }
  const uint16_t* q4_scales() const {
    return reinterpret_cast<const uint16_t*>(storage + panels * blocks() * kQ4PanelBlockBytes);
  }
  // Q4_1's mins; nullptr for Q4_0.
  const uint16_t* q4_mins() const {
    return source_dtype == DType::kQ4_1 ? q4_scales() + panels * blocks() * kPanelWidth : nullptr;
  }
  int64_t sparse_entries() const { return static_cast<int64_t>(blk.size()); }
  const uint8_t* sparse_qs() const { return storage; }
  const uint16_t* sparse_scales() const {
    return reinterpret_cast<const uint16_t*>(storage + sparse_entries() * kQ8PanelBlockBytes);
  }
  // Whether MatMul feeds this matrix Q8 activations (all but kF32Panels).
  bool wants_q8() const { return format != PackedFormat::kF32Panels; }
  size_t packed_bytes() const;
};

struct PackOptions {
  // Q8_0 sources become kF32Panels holding d * q, exactly (an fp16 scale
  // times an int8 fits fp32's 24-bit significand): MatMul then keeps the
  // activations in fp32 instead of rounding them to int8 ("high precision").
  // Costs 4 bytes per weight instead of 34/32, and the fp32 GEMM's speed.
  bool widen_q8 = false;
  // A Q8_0 matrix whose all-zero 16 x 32 tiles make up at least this fraction
  // is packed as kQ8SparsePanels (> 1: never).
  double sparse_min_zero_fraction = 0.2;
};

// Packs a 2-D weight (n_dims == 2, or higher with ne[2] == ne[3] == 1) of
// dtype F32, F16, BF16, Q8_0, Q4_0 or Q4_1. Independent of the ISA level: any Ops can use
// the result. Errors: kUnsupported for other dtypes, kInvalidArgument for bad
// shapes or a byte size that does not match the shape, kResourceExhausted if
// memory runs out. With a pool, panels are packed in parallel (the result does
// not depend on it); without, on the calling thread.
// `storage` (optional): pack into these bytes (64-byte aligned, at least
// PackedSize(w, options) long, outliving the result) instead of allocating.
Result<PackedMatrix> PackMatrix(const TensorView& w, const PackOptions& options = {},
                                ThreadPool* pool = nullptr, uint8_t* storage = nullptr);
// Bytes PackMatrix will use for `w` (0 if `w` cannot be packed).
size_t PackedSize(const TensorView& w, const PackOptions& options = {});

// One output of MatMulShared: y [m x w->n] = x . w^T.
struct MatMulOutput {
  const PackedMatrix* w = nullptr;
  float* y = nullptr;
};

// Activation rows [m x k] in the form(s) MatMulPrepared needs: fp32 rows for
// kF32Panels weights, Q8_0 rows for kQ8Panels weights (qs [m x k] int8, block
// scales d and bias corrections corr [m x k/32], as quantize_row_q8 writes).
// The same struct is the destination of the fused row ops (RmsNormTo, ...):
// they write every non-null form, so one pass over a row produces exactly
// what the next MatMul reads. Writing f32 and q8 at once gives the same q8
// as quantising the f32 rows afterwards.
struct RowsOut {
  float* f32 = nullptr;
  int8_t* qs = nullptr;
  float* d = nullptr;
  int32_t* corr = nullptr;
  bool has_q8() const { return qs != nullptr; }
};

class Ops {
 public:
  // `table` and `pool` must outlive the Ops.
  Ops(const KernelTable& table, ThreadPool& pool);
  Ops(const Ops&) = delete;
  Ops& operator=(const Ops&) = delete;

  const KernelTable& table() const { return *table_; }
  ThreadPool& pool() const { return *pool_; }
  Isa isa() const { return table_->isa; }

  // The Q8 GEMM used for calls of at most `small_m_max` rows and the one for
  // larger calls (variants of this table's level, see kernels/tune.h; null =
  // the table's gemm_q8). All variants give bit-identical results.
  void SetGemmQ8(GemmQ8Fn small, GemmQ8Fn large, int64_t small_m_max);

  // out [ids.size() x D] = dequant(table row ids[t]) * scale, for a table
  // TensorView with ne0 = D, ne1 = vocabulary rows (F32, F16, BF16 or Q8_0),
  // used in place (e.g. from the mmap). Errors: an id outside [0, rows)
  // (kOutOfRange), an unsupported dtype (kUnsupported), a view whose byte size
  // does not match its shape (kInvalidArgument).
  Status EmbeddingLookup(const TensorView& table, std::span<const int32_t> ids, float scale,
                         float* out);

  // y [m x w.n] = x [m x w.k] . W^T; x and y contiguous rows, no aliasing.
  // F32 panels: fp32 FMA accumulation. Q8 panels: x is quantised once per call
  // to Q8_0 blocks (fp32 block scales), int8 dot products with exact int32
  // block sums, fp32 accumulation of d_w * d_x * dot (llama.cpp's precision).
  // Threads split rows (m >= 32 per thread) or output columns; m = 0 is a no-op.
  void MatMul(const PackedMatrix& w, const float* x, int64_t m, float* y);

  // Several matrices with the same k applied to the same input (q/k/v,
  // gate/up): the input is quantised once and all outputs share one parallel
  // loop. Outputs must not alias x or each other.
  void MatMulShared(const float* x, int64_t m, std::span<const MatMulOutput> outputs);

  // The same products from activations prepared by a fused row op: every Q8
  // weight reads x.qs/d/corr, every fp32 weight reads x.f32 (each must be set
  // where needed). Results are bit-identical to MatMulShared on the fp32 rows.
  // Threads take dynamic chunks of rows (large m) or of output panels (small m).
  void MatMulPrepared(const RowsOut& x, int64_t m, int64_t k, std::span<const MatMulOutput> outputs);

  // ---- fused row ops: one parallel pass, each row stays in L1 ------------
  // out <- RmsNorm(x) * gamma, rows [m x d] (d % 32 == 0 when out has q8).
  void RmsNormTo(const float* x, int64_t m, int64_t d, const float* gamma, float eps,
                 const RowsOut& out);
  // x += RmsNorm(y) * gamma_add (the sandwich norm's residual add); then, if
  // gamma_next is set, out <- RmsNorm(x) * gamma_next (the next block's
  // input norm). out.f32 may be x itself (in-place final norm).
  void AddRmsNormTo(const float* y, float* x, int64_t m, int64_t d, const float* gamma_add,
                    const float* gamma_next, float eps, const RowsOut& out);
  // out <- gelu_tanh(gate) * up, rows [m x n]; out.f32 may alias gate or up.
  void GeGluTo(const float* gate, const float* up, int64_t m, int64_t n, const RowsOut& out);
  // out.q8 <- Q8_0(x) for rows [m x k] (out.f32 is ignored: x is the fp32 form).
  void QuantizeTo(const float* x, int64_t m, int64_t k, const RowsOut& out);
  // Per-head RmsNorm (gains gq / gk [dh]) then NeoX RoPE of q [m x hq x dh]
  // and k [m x hkv x dh], in place, one pass per token. Same results as
  // HeadRmsNorm followed by RopeNeox. Errors: as RopeNeox.
  Status QkNormRope(float* q, float* k, int64_t m, int64_t hq, int64_t hkv, int64_t dh,
                    const float* gq, const float* gk, float eps, std::span<const int32_t> positions,
                    float base);

  // out [m x d] = RmsNorm(x) * gamma, row-wise (see KernelTable::rmsnorm_row).
  // In place (out == x) allowed.
  void RmsNorm(const float* x, int64_t m, int64_t d, const float* gamma, float eps, float* out);
  // x [m x d] += RmsNorm(y) * gamma (Gemma3's post-attention / post-FFN norm).
  void RmsNormAdd(const float* y, int64_t m, int64_t d, const float* gamma, float eps, float* x);
  // Per-head norm in place: x [m x heads x dh], every dh-row normalised with
  // the same gamma [dh] (q_norm / k_norm).
  void HeadRmsNorm(float* x, int64_t m, int64_t heads, int64_t dh, const float* gamma, float eps);

  // NeoX rotary embedding in place on x [m x heads x dh] (dh even): for
  // i < dh/2, theta = positions[t] * base^(-2i/dh),
  // (a, b) = (x[i], x[i+dh/2]) -> (a cos - b sin, a sin + b cos).
  // Angles are computed in double; cos/sin tables for positions < 2048 are
  // cached per (base, dh) inside this Ops. Errors: positions.size() != m or a
  // negative position (kInvalidArgument).
  Status RopeNeox(float* x, int64_t m, int64_t heads, int64_t dh,
                  std::span<const int32_t> positions, float base);

  // Bidirectional multi-head attention with GQA over packed sequences.
  //   q   [T x n_heads    x head_dim]
  //   k,v [T x n_kv_heads x head_dim]   (n_heads % n_kv_heads == 0; query head
  //                                      h uses kv head h / (n_heads/n_kv_heads))
  //   out [T x n_heads x head_dim]
  // Token p of a sequence attends to tokens j of the same sequence with
  // window < 0 (global) or |p - j| <= window (sliding). scores = scale * q.k,
  // fp32 softmax with max subtraction; key blocks outside the window are
  // skipped. Threads take (sequence, head, 32-query block) items.
  // Errors: cu_seqlens empty, not starting at 0, decreasing, or its last entry
  // != the T the caller passes (kInvalidArgument).
  // With `out_q8` (its q8 fields set; q_width % 32 == 0), the output rows are
  // also quantised for the next MatMul, by the items themselves when one item
  // covers whole rows (a single KV head), else in a pass afterwards.
  Status Attention(const float* q, const float* k, const float* v, int64_t t,
                   std::span<const int32_t> cu_seqlens, int64_t n_heads, int64_t n_kv_heads,
                   int64_t head_dim, int64_t window, float scale, float* out,
                   const RowsOut* out_q8 = nullptr);

  // out = gelu_tanh(gate) * up over n elements (see KernelTable::geglu); out may alias gate or up.
  void GeGlu(const float* gate, const float* up, int64_t n, float* out);
  // out = a + b (n elements); out may alias a or b.
  void Add(const float* a, const float* b, int64_t n, float* out);
  // x *= s (n elements) in place.
  void Scale(float* x, int64_t n, float s);

  // out [n_seqs x d] = mean over the tokens of each sequence of x [T x d]
  // (double accumulation). An empty sequence gives a zero row. Errors: as
  // for Attention's cu_seqlens (T = cu_seqlens.back()).
  Status MeanPool(const float* x, int64_t d, std::span<const int32_t> cu_seqlens, float* out);
  // Every row of x [rows x d] scaled to unit L2 norm (double sum); zero rows stay zero.
  void L2Normalize(float* x, int64_t rows, int64_t d);

 private:
  struct RopeTable {
    double base = 0;
    int64_t dh = 0;
    std::vector<float> cos, sin;  // [kRopeCachedPositions x dh/2]
    // cos/sin rows of position p: from the table, or computed into tmp
    // (dh floats) for positions beyond it.
    void At(int64_t p, float* tmp, const float** cs, const float** sn) const;
  };
  const RopeTable& GetRopeTable(float base, int64_t dh);
  // GetRopeTable, with every thread's scratch able to hold one position's
  // angles (RopeTable::At's tmp) beforehand.
  const RopeTable& PrepareRope(float base, int64_t dh);
  // Quantised activations of the current MatMul: qs [m x k] int8, d and corr [m x k/32].
  struct ActQ8 {
    int8_t* qs = nullptr;
    float* d = nullptr;
    int32_t* corr = nullptr;
  };
  ActQ8 ReserveActivations(int64_t m, int64_t k);
  void RunMatMuls(const float* x, int64_t m, std::span<const MatMulOutput> outputs);
  // Per-thread fp32 row buffers of at least `floats` (fused row ops).
  void ReserveRowScratch(int64_t floats);
  float* RowScratch(int thread) { return row_scratch_[static_cast<size_t>(thread)].as<float>(); }

  const KernelTable* table_;
  ThreadPool* pool_;
  GemmQ8Fn gemm_q8_small_;
  GemmQ8Fn gemm_q8_large_;
  int64_t gemm_q8_small_m_max_ = 0;
  AlignedBuffer act_q8_;  // storage of ActQ8
  // Attention: K^T panels of all sequences, and per-thread score/rope scratch.
  AlignedBuffer kt_panels_, v_panels_;
  std::vector<AlignedBuffer> thread_scratch_;
  std::vector<AlignedBuffer> row_scratch_;
  std::vector<int64_t> seq_panel_base_, seq_item_base_;
  std::vector<RopeTable> rope_tables_;
};

}  // namespace gembed
