// PackMatrix: GGUF weight -> PackedMatrix (layouts documented in ops.h).
#include <cstring>

#include "base/half.h"
#include "kernels/ops.h"

namespace gembed {
namespace {

// Widens row r of a F32/F16/BF16 matrix to fp32.
void RowToF32(const TensorView& w, int64_t r, float* out) {
  const int64_t k = w.ne[0];
  const uint8_t* src = static_cast<const uint8_t*>(w.data);
  switch (w.dtype) {
    case DType::kF32:
      std::memcpy(out, src + r * k * 4, static_cast<size_t>(k) * 4);
      break;
    case DType::kF16: {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(src + r * k * 2);
      for (int64_t i = 0; i < k; ++i) {
        uint16_t bits;
        std::memcpy(&bits, h + i, 2);  // GGUF data is only 32-byte aligned per tensor
        out[i] = F16ToF32(bits);
      }
      break;
    }
    case DType::kBF16: {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(src + r * k * 2);
      for (int64_t i = 0; i < k; ++i) {
        uint16_t bits;
        std::memcpy(&bits, h + i, 2);
        out[i] = Bf16ToF32(bits);
      }
      break;
    }
    default:
      break;
  }
}

}  // namespace

size_t PackedMatrix::packed_bytes() const {
  if (format == PackedFormat::kF32Panels)
    return static_cast<size_t>(panels * kPanelWidth * k) * sizeof(float);
  return static_cast<size_t>(panels * blocks()) * (kQ8PanelBlockBytes + kPanelWidth * 2);
}

Result<PackedMatrix> PackMatrix(const TensorView& w) {
  if (w.n_dims < 1 || w.n_dims > kMaxDims || w.ne[2] != 1 || w.ne[3] != 1)
    return InvalidArgument("PackMatrix: expected a 2-D weight, got {} dims", w.n_dims);
  const int64_t k = w.ne[0], n = w.ne[1];
  if (k <= 0 || n <= 0) return InvalidArgument("PackMatrix: empty weight {}x{}", k, n);
  if (w.data == nullptr) return InvalidArgument("PackMatrix: weight has no data");
  const DType dt = w.dtype;
  if (dt != DType::kF32 && dt != DType::kF16 && dt != DType::kBF16 && dt != DType::kQ8_0)
    return Unsupported("PackMatrix: dtype {} (supported: F32, F16, BF16, Q8_0)", DTypeName(dt));
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
  pm.format = dt == DType::kQ8_0 ? PackedFormat::kQ8Panels : PackedFormat::kF32Panels;
  const size_t bytes = pm.packed_bytes();
  if (!pm.data.Reserve(bytes))
    return Status(StatusCode::kResourceExhausted,
                  fmt::format("PackMatrix: cannot allocate {} bytes", bytes));
  std::memset(pm.data.data(), 0, pm.data.size());

  if (pm.format == PackedFormat::kF32Panels) {
    std::vector<float> row(static_cast<size_t>(k));
    float* panels = pm.data.as<float>();
    for (int64_t r = 0; r < n; ++r) {
      RowToF32(w, r, row.data());
      float* panel = panels + (r / kPanelWidth) * kPanelWidth * k;
      const int64_t j = r % kPanelWidth;
      for (int64_t kk = 0; kk < k; ++kk) panel[kk * kPanelWidth + j] = row[static_cast<size_t>(kk)];
    }
    return pm;
  }

  // Q8_0: padding rows keep weight 0 (stored as the biased byte 128) and scale 0.
  const int64_t nb = pm.blocks();
  uint8_t* qs = pm.data.data();
  std::memset(qs, 128, static_cast<size_t>(pm.panels * nb * kQ8PanelBlockBytes));
  uint16_t* scales = reinterpret_cast<uint16_t*>(qs + pm.panels * nb * kQ8PanelBlockBytes);
  const uint8_t* src = static_cast<const uint8_t*>(w.data);
  for (int64_t r = 0; r < n; ++r) {
    const int64_t p = r / kPanelWidth, j = r % kPanelWidth;
    for (int64_t b = 0; b < nb; ++b) {
      BlockQ8_0 blk;
      std::memcpy(&blk, src + (r * nb + b) * sizeof(BlockQ8_0), sizeof(BlockQ8_0));
      uint8_t* dst = qs + (p * nb + b) * kQ8PanelBlockBytes;
      for (int t = 0; t < kQ8BlockElems; ++t) {
        const int g = t / 4, s = t % 4;
        dst[(g * kPanelWidth + j) * 4 + s] = static_cast<uint8_t>(blk.qs[t] + 128);
      }
      scales[(p * nb + b) * kPanelWidth + j] = blk.d;
    }
  }
  return pm;
}

}  // namespace gembed
