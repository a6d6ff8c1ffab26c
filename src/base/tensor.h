// TensorView: a non-owning view of a tensor's bytes. Ownership lives in a
// mapped file, an arena or the weight store. Shapes follow GGUF/ggml order:
// ne[0] is the contiguous (innermost) dimension, so a PyTorch Linear weight
// [out, in] is ne = {in, out}.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/dtype.h"

namespace gembed {

inline constexpr int kMaxDims = 4;

struct TensorView {
  DType dtype = DType::kF32;
  int n_dims = 0;
  std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};  // elements per dim, ne[0] innermost
  const void* data = nullptr;
  uint64_t nbytes = 0;

  int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  // Rows of a 2-D matrix = ne[1]; columns (row length) = ne[0].
  int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  int64_t cols() const { return ne[0]; }
  uint64_t row_bytes() const { return rows() ? nbytes / static_cast<uint64_t>(rows()) : 0; }
  const uint8_t* row(int64_t r) const {
    return static_cast<const uint8_t*>(data) + static_cast<uint64_t>(r) * row_bytes();
  }
};

}  // namespace gembed
