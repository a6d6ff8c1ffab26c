// AlignedBuffer: an owning, move-only, 64-byte aligned byte buffer.
//
// Used for packed weights (PackedMatrix) and for the scratch memory an Ops
// object keeps between calls. Reserve() only reallocates when the request
// grows, so steady-state calls with the same shapes never allocate. Contents
// are NOT preserved across a growing Reserve() (scratch semantics).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>

namespace gembed {

class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 64;

  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes) { Reserve(bytes); }
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }

  // Ensures at least `bytes` of capacity; returns false (leaving the buffer
  // empty) if the allocation fails. Old contents are discarded on growth.
  bool Reserve(size_t bytes) {
    if (bytes <= size_) return true;
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    // aligned_alloc needs a size that is a multiple of the alignment.
    const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* p = std::aligned_alloc(kAlignment, rounded);
    if (p == nullptr) return false;
    data_ = static_cast<uint8_t*>(p);
    size_ = rounded;
    return true;
  }

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  template <typename T>
  T* as() {
    return reinterpret_cast<T*>(data_);
  }
  template <typename T>
  const T* as() const {
    return reinterpret_cast<const T*>(data_);
  }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace gembed
