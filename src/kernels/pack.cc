// PackMatrix: GGUF weight -> PackedMatrix (layouts documented in ops.h).
//
// Packing runs once per matrix at model load, so it is on the start-up path
// (~107 MB of Q8_0 for EmbeddingGemma-300M): panels are independent, so a
// pool packs them in parallel, and only the padding of a partial last panel
// is initialised separately (every other byte is written exactly once).
#include <algorithm>
#include <cstring>

#include "base/half.h"
#include "kernels/ops.h"

namespace gembed {
namespace {

// Widens row r of a F32/F16/BF16/Q8_0/Q4_0/Q4_1 matrix to fp32 (Q8_0, Q4_0: d * q, exact;
// Q4_1: d * q + m rounded once).
void RowToF32(const TensorView& w, int64_t r, uint64_t row_bytes, float* out) {
  const int64_t k = w.ne[0];
  const uint8_t* src = static_cast<const uint8_t*>(w.data) + static_cast<uint64_t>(r) * row_bytes;
  switch (w.dtype) {
    case DType::kF32:
      std::memcpy(out, src, static_cast<size_t>(k) * 4);
      break;
    case DType::kF16:
      for (int64_t i = 0; i < k; ++i) {
        uint16_t bits;
        std::memcpy(&bits, src + 2 * i, 2);  // GGUF data is only 32-byte aligned per tensor
        out[i] = F16ToF32(bits);
      }
      break;
    case DType::kBF16:
      for (int64_t i = 0; i < k; ++i) {
        uint16_t bits;
        std::memcpy(&bits, src + 2 * i, 2);
        out[i] = Bf16ToF32(bits);
      }
      break;
    case DType::kQ8_0:
      for (int64_t b = 0; b < k / kQ8BlockElems; ++b) {
        BlockQ8_0 blk;
        std::memcpy(&blk, src + b * static_cast<int64_t>(sizeof(BlockQ8_0)), sizeof(BlockQ8_0));
        const float d = F16ToF32(blk.d);
        for (int t = 0; t < kQ8BlockElems; ++t) out[b * kQ8BlockElems + t] = d * static_cast<float>(blk.qs[t]);
      }
      break;
    case DType::kQ4_0:
    case DType::kQ4_1: {
      const int64_t bb = DTypeBlockBytes(w.dtype);
      for (int64_t b = 0; b < k / kQ4BlockElems; ++b) {
        const uint8_t* blk = src + b * bb;
        uint16_t dh = 0, mh = 0;
        std::memcpy(&dh, blk, 2);
        if (w.dtype == DType::kQ4_1) std::memcpy(&mh, blk + 2, 2);
        const uint8_t* qs = blk + (w.dtype == DType::kQ4_1 ? 4 : 2);
        const float d = F16ToF32(dh), mn = F16ToF32(mh);
        for (int t = 0; t < kQ4BlockElems / 2; ++t) {
          const int lo = qs[t] & 15, hi = qs[t] >> 4;
          if (w.dtype == DType::kQ4_0) {
            out[b * kQ4BlockElems + t] = d * static_cast<float>(lo - 8);
            out[b * kQ4BlockElems + t + 16] = d * static_cast<float>(hi - 8);
          } else {
            out[b * kQ4BlockElems + t] = d * static_cast<float>(lo) + mn;
            out[b * kQ4BlockElems + t + 16] = d * static_cast<float>(hi) + mn;
          }
        }
      }
      break;
    }
    default:
      break;
  }
}

// F32 panels [p0, p1): panel p is float[k][16], element (kk, j) = W[16p + j][kk].
void PackF32Panels(const TensorView& w, uint64_t row_bytes, int64_t p0, int64_t p1, float* panels,
                   std::vector<float>& row) {
  const int64_t k = w.ne[0], n = w.ne[1];
  row.resize(static_cast<size_t>(k));
  for (int64_t p = p0; p < p1; ++p) {
    float* panel = panels + p * kPanelWidth * k;
    for (int64_t j = 0; j < kPanelWidth; ++j) {
      const int64_t r = p * kPanelWidth + j;
      if (r >= n) {  // padding rows are zero
        for (int64_t kk = 0; kk < k; ++kk) panel[kk * kPanelWidth + j] = 0.0f;
        continue;
      }
      RowToF32(w, r, row_bytes, row.data());
      for (int64_t kk = 0; kk < k; ++kk) panel[kk * kPanelWidth + j] = row[static_cast<size_t>(kk)];
    }
  }
}

// Q8 panels [p0, p1): the 4 bytes of group g of row j land at (g*16 + j)*4 of
// the block's 512 bytes, each biased by +128 (x ^ 0x80 on the two's
// complement byte). Padding rows: weight 0 (byte 128), scale 0.
void PackQ8Panels(const TensorView& w, int64_t p0, int64_t p1, uint8_t* qs, uint16_t* scales) {
  const int64_t n = w.ne[1], nb = w.ne[0] / kQ8BlockElems;
  const uint8_t* src = static_cast<const uint8_t*>(w.data);
  for (int64_t p = p0; p < p1; ++p) {
    for (int64_t j = 0; j < kPanelWidth; ++j) {
      const int64_t r = p * kPanelWidth + j;
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t* dst = qs + (p * nb + b) * kQ8PanelBlockBytes + j * 4;
        uint16_t* scale = scales + (p * nb + b) * kPanelWidth + j;
        if (r >= n) {
          for (int g = 0; g < 8; ++g) std::memset(dst + g * kPanelWidth * 4, 0x80, 4);
          *scale = 0;
          continue;
        }
        const uint8_t* blk = src + (r * nb + b) * static_cast<int64_t>(sizeof(BlockQ8_0));
        std::memcpy(scale, blk, 2);
        for (int g = 0; g < 8; ++g) {
          uint32_t word;
          std::memcpy(&word, blk + 2 + 4 * g, 4);
          word ^= 0x80808080u;
          std::memcpy(dst + g * kPanelWidth * 4, &word, 4);
        }
      }
    }
  }
}

// Q4 panels [p0, p1): byte (g, j, t) of block b = GGUF byte qs[4g + t] of
// row 16p + j's block b (the low / high nibble pairing k and k + 16 is
// ggml's already). Padding rows: byte 0, scale 0, min 0.
void PackQ4Panels(const TensorView& w, int64_t p0, int64_t p1, uint8_t* qs, uint16_t* scales, uint16_t* mins) {
  const int64_t n = w.ne[1], nb = w.ne[0] / kQ4BlockElems;
  const int64_t bb = DTypeBlockBytes(w.dtype);
  const int64_t qs_off = w.dtype == DType::kQ4_1 ? 4 : 2;
  const uint8_t* src = static_cast<const uint8_t*>(w.data);
  for (int64_t p = p0; p < p1; ++p) {
    for (int64_t j = 0; j < kPanelWidth; ++j) {
      const int64_t r = p * kPanelWidth + j;
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t* dst = qs + (p * nb + b) * kQ4PanelBlockBytes + j * 4;
        const int64_t si = (p * nb + b) * kPanelWidth + j;
        if (r >= n) {
          for (int g = 0; g < 4; ++g) std::memset(dst + g * kPanelWidth * 4, 0, 4);
          scales[si] = 0;
          if (mins != nullptr) mins[si] = 0;
          continue;
        }
        const uint8_t* blk = src + (r * nb + b) * bb;
        std::memcpy(&scales[si], blk, 2);
        if (mins != nullptr) std::memcpy(&mins[si], blk + 2, 2);
        for (int g = 0; g < 4; ++g) std::memcpy(dst + g * kPanelWidth * 4, blk + qs_off + 4 * g, 4);
      }
    }
  }
}

// Whether tile (panel p, block b) of a Q8_0 matrix has only zero weights.
bool Q8TileIsZero(const TensorView& w, int64_t p, int64_t b) {
  const int64_t n = w.ne[1], nb = w.ne[0] / kQ8BlockElems;
  const uint8_t* src = static_cast<const uint8_t*>(w.data);
  for (int64_t j = 0; j < kPanelWidth; ++j) {
    const int64_t r = p * kPanelWidth + j;
    if (r >= n) break;
    const uint8_t* qs = src + (r * nb + b) * static_cast<int64_t>(sizeof(BlockQ8_0)) + 2;
    for (int t = 0; t < kQ8BlockElems; ++t)
      if (qs[t] != 0) return false;
  }
  return true;
}

// The kept tiles of a Q8_0 matrix, or false when too few are zero to pay.
bool SparseLayout(const TensorView& w, const PackOptions& options, std::vector<int32_t>* panel_ptr,
                  std::vector<int32_t>* blk) {
  if (w.dtype != DType::kQ8_0 || options.widen_q8 || options.sparse_min_zero_fraction > 1.0) return false;
  const int64_t nb = w.ne[0] / kQ8BlockElems, panels = (w.ne[1] + kPanelWidth - 1) / kPanelWidth;
  if (panels * nb >= (int64_t{1} << 31)) return false;
  panel_ptr->assign(1, 0);
  blk->clear();
  for (int64_t p = 0; p < panels; ++p) {
    for (int64_t b = 0; b < nb; ++b)
      if (!Q8TileIsZero(w, p, b)) blk->push_back(static_cast<int32_t>(b));
    panel_ptr->push_back(static_cast<int32_t>(blk->size()));
  }
  const double zero = 1.0 - static_cast<double>(blk->size()) / static_cast<double>(panels * nb);
  return zero >= options.sparse_min_zero_fraction;
}

// Sparse entries of panels [p0, p1): the kept tiles in Q8 panel layout.
void PackQ8Sparse(const TensorView& w, const PackedMatrix& pm, int64_t p0, int64_t p1, uint8_t* qs,
                  uint16_t* scales) {
  const int64_t n = w.ne[1], nb = w.ne[0] / kQ8BlockElems;
  const uint8_t* src = static_cast<const uint8_t*>(w.data);
  for (int64_t p = p0; p < p1; ++p) {
    for (int32_t e = pm.panel_ptr[static_cast<size_t>(p)]; e < pm.panel_ptr[static_cast<size_t>(p) + 1]; ++e) {
      const int64_t b = pm.blk[static_cast<size_t>(e)];
      for (int64_t j = 0; j < kPanelWidth; ++j) {
        const int64_t r = p * kPanelWidth + j;
        uint8_t* dst = qs + static_cast<int64_t>(e) * kQ8PanelBlockBytes + j * 4;
        uint16_t* scale = scales + static_cast<int64_t>(e) * kPanelWidth + j;
        if (r >= n) {
          for (int g = 0; g < 8; ++g) std::memset(dst + g * kPanelWidth * 4, 0x80, 4);
          *scale = 0;
          continue;
        }
        const uint8_t* blk = src + (r * nb + b) * static_cast<int64_t>(sizeof(BlockQ8_0));
        std::memcpy(scale, blk, 2);
        for (int g = 0; g < 8; ++g) {
          uint32_t word;
          std::memcpy(&word, blk + 2 + 4 * g, 4);
          word ^= 0x80808080u;
          std::memcpy(dst + g * kPanelWidth * 4, &word, 4);
        }
      }
    }
  }
}

PackedFormat FormatFor(DType dt, const PackOptions& options, bool sparse) {
  if (options.widen_q8) return PackedFormat::kF32Panels;
  if (dt == DType::kQ8_0) return sparse ? PackedFormat::kQ8SparsePanels : PackedFormat::kQ8Panels;
  if (dt == DType::kQ4_0 || dt == DType::kQ4_1) return PackedFormat::kQ4Panels;
  return PackedFormat::kF32Panels;
}

}  // namespace

size_t PackedMatrix::packed_bytes() const {
  switch (format) {
    case PackedFormat::kF32Panels:
      return static_cast<size_t>(panels * kPanelWidth * k) * sizeof(float);
    case PackedFormat::kQ8Panels:
      return static_cast<size_t>(panels * blocks()) * (kQ8PanelBlockBytes + kPanelWidth * 2);
    case PackedFormat::kQ4Panels:
      return static_cast<size_t>(panels * blocks()) *
             (kQ4PanelBlockBytes + kPanelWidth * 2 * (source_dtype == DType::kQ4_1 ? 2 : 1));
    case PackedFormat::kQ8SparsePanels:
      return static_cast<size_t>(sparse_entries()) * (kQ8PanelBlockBytes + kPanelWidth * 2);
  }
  return 0;
}

size_t PackedSize(const TensorView& w, const PackOptions& options) {
  if (w.n_dims < 1 || w.n_dims > kMaxDims || w.ne[0] <= 0 || w.ne[1] <= 0) return 0;
  const bool quant = w.dtype == DType::kQ8_0 || w.dtype == DType::kQ4_0 || w.dtype == DType::kQ4_1;
  if (quant && w.ne[0] % kQ8BlockElems != 0) return 0;
  PackedMatrix pm;
  pm.source_dtype = w.dtype;
  pm.k = w.ne[0];
  pm.n = w.ne[1];
  pm.panels = (pm.n + kPanelWidth - 1) / kPanelWidth;
  const std::optional<uint64_t> row_bytes = DTypeRowBytes(w.dtype, static_cast<uint64_t>(pm.k));
  const bool viewable = w.data != nullptr && row_bytes && w.nbytes == *row_bytes * static_cast<uint64_t>(pm.n);
  const bool sparse = viewable && SparseLayout(w, options, &pm.panel_ptr, &pm.blk);
  pm.format = FormatFor(w.dtype, options, sparse);
  return pm.packed_bytes();
}

Result<PackedMatrix> PackMatrix(const TensorView& w, const PackOptions& options, ThreadPool* pool,
                                uint8_t* storage) {
  if (w.n_dims < 1 || w.n_dims > kMaxDims || w.ne[2] != 1 || w.ne[3] != 1)
    return InvalidArgument("PackMatrix: expected a 2-D weight, got {} dims", w.n_dims);
  const int64_t k = w.ne[0], n = w.ne[1];
  if (k <= 0 || n <= 0) return InvalidArgument("PackMatrix: empty weight {}x{}", k, n);
  if (w.data == nullptr) return InvalidArgument("PackMatrix: weight has no data");
  const DType dt = w.dtype;
  if (dt != DType::kF32 && dt != DType::kF16 && dt != DType::kBF16 && dt != DType::kQ8_0 && dt != DType::kQ4_0 &&
      dt != DType::kQ4_1)
    return Unsupported("PackMatrix: dtype {} (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)", DTypeName(dt));
  const std::optional<uint64_t> row_bytes = DTypeRowBytes(dt, static_cast<uint64_t>(k));
  if (!row_bytes)
    return InvalidArgument("PackMatrix: row of {} elements is not a whole number of {} blocks", k,
                           DTypeName(dt));
  if (w.nbytes != *row_bytes * static_cast<uint64_t>(n))
    return InvalidArgument("PackMatrix: {} bytes for a {}x{} {} matrix (expected {})", w.nbytes, n,
                           k, DTypeName(dt), *row_bytes * static_cast<uint64_t>(n));

  PackedMatrix pm;
  pm.source_dtype = dt;
  pm.k = k;
  pm.n = n;
  pm.panels = (n + kPanelWidth - 1) / kPanelWidth;
  const bool sparse = SparseLayout(w, options, &pm.panel_ptr, &pm.blk);
  if (!sparse) {
    pm.panel_ptr.clear();
    pm.blk.clear();
  }
  pm.format = FormatFor(dt, options, sparse);
  const size_t bytes = pm.packed_bytes();
  if (storage != nullptr) {
    pm.storage = storage;
  } else {
    if (!pm.owned.Reserve(bytes))
      return Status(StatusCode::kResourceExhausted, fmt::format("PackMatrix: cannot allocate {} bytes", bytes));
    pm.storage = pm.owned.data();
  }

  // Panels per chunk: ~256 KiB of packed output each.
  const int64_t panel_bytes = static_cast<int64_t>(bytes) / pm.panels;
  const int64_t grain = std::max<int64_t>(1, (int64_t{256} << 10) / std::max<int64_t>(1, panel_bytes));
  if (pm.format == PackedFormat::kF32Panels) {
    float* panels = reinterpret_cast<float*>(pm.storage);
    if (pool != nullptr && pool->size() > 1) {
      std::vector<std::vector<float>> rows(static_cast<size_t>(pool->size()));
      pool->ParallelFor(pm.panels, grain, [&](int64_t b, int64_t e, int t) {
        PackF32Panels(w, *row_bytes, b, e, panels, rows[static_cast<size_t>(t)]);
      });
    } else {
      std::vector<float> row;
      PackF32Panels(w, *row_bytes, 0, pm.panels, panels, row);
    }
    return pm;
  }
  if (pm.format == PackedFormat::kQ4Panels) {
    uint8_t* qs = pm.storage;
    uint16_t* scales = const_cast<uint16_t*>(pm.q4_scales());
    uint16_t* mins = const_cast<uint16_t*>(pm.q4_mins());
    auto body = [&](int64_t b, int64_t e, int) { PackQ4Panels(w, b, e, qs, scales, mins); };
    if (pool != nullptr && pool->size() > 1) {
      pool->ParallelFor(pm.panels, grain, body);
    } else {
      body(0, pm.panels, 0);
    }
    return pm;
  }
  if (pm.format == PackedFormat::kQ8SparsePanels) {
    uint8_t* qs = pm.storage;
    uint16_t* scales = const_cast<uint16_t*>(pm.sparse_scales());
    auto body = [&](int64_t b, int64_t e, int) { PackQ8Sparse(w, pm, b, e, qs, scales); };
    if (pool != nullptr && pool->size() > 1) {
      pool->ParallelFor(pm.panels, std::max<int64_t>(1, grain), body);
    } else {
      body(0, pm.panels, 0);
    }
    return pm;
  }
  uint8_t* qs = pm.storage;
  uint16_t* scales = reinterpret_cast<uint16_t*>(qs + pm.panels * pm.blocks() * kQ8PanelBlockBytes);
  if (pool != nullptr && pool->size() > 1) {
    pool->ParallelFor(pm.panels, grain,
                      [&](int64_t b, int64_t e, int) { PackQ8Panels(w, b, e, qs, scales); });
  } else {
    PackQ8Panels(w, 0, pm.panels, qs, scales);
  }
  return pm;
}

}  // namespace gembed
