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
#if defined(__linux__)
#include <sys/mman.h>
#endif
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
  // huge_pages: 2 MiB aligned and advised for transparent huge pages (Linux
  // MADV_HUGEPAGE, honoured when THP is in "madvise" or "always" mode):
  // fewer page faults when first touched and fewer TLB misses when streamed
  // (packed weights); a no-op hint elsewhere.
  bool Reserve(size_t bytes, bool huge_pages = false) {
    if (bytes <= size_) return true;
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    const size_t align = huge_pages ? kHugePage : kAlignment;
    // aligned_alloc needs a size that is a multiple of the alignment.
    const size_t rounded = (bytes + align - 1) / align * align;
    void* p = std::aligned_alloc(align, rounded);
    if (p == nullptr) return false;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (huge_pages) madvise(p, rounded, MADV_HUGEPAGE);
#endif
    data_ = static_cast<uint8_t*>(p);
    size_ = rounded;
    return true;
  }
  static constexpr size_t kHugePage = size_t{2} << 20;

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
