// Test helpers for GGUF: a little-endian byte builder for handcrafting
// (possibly malformed) GGUF files field by field. Independent of
// io/gguf.cc on purpose: the layout is spelled out here from the format
// description, so the reader is checked against bytes it did not write.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace gembed::testing {

// GGUF value type ids (the format's numbers, repeated here on purpose).
enum GgufTypeId : uint32_t {
  kTypeU8 = 0, kTypeI8 = 1, kTypeU16 = 2, kTypeI16 = 3, kTypeU32 = 4, kTypeI32 = 5,
  kTypeF32 = 6, kTypeBool = 7, kTypeString = 8, kTypeArray = 9, kTypeU64 = 10,
  kTypeI64 = 11, kTypeF64 = 12,
};

class ByteBuilder {
 public:
  template <typename T>
  ByteBuilder& Put(T v) {
    const size_t n = bytes_.size();
    bytes_.resize(n + sizeof(T));
    std::memcpy(bytes_.data() + n, &v, sizeof(T));
    return *this;
  }
  ByteBuilder& U8(uint8_t v) { return Put(v); }
  ByteBuilder& U32(uint32_t v) { return Put(v); }
  ByteBuilder& U64(uint64_t v) { return Put(v); }
  ByteBuilder& Raw(std::string_view s) {
    bytes_.insert(bytes_.end(), s.begin(), s.end());
    return *this;
  }
  // gguf_string: u64 length + bytes.
  ByteBuilder& Str(std::string_view s) { return U64(s.size()).Raw(s); }

  // "GGUF" | version | n_tensors | n_kv
  ByteBuilder& Header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    return Raw("GGUF").U32(version).U64(n_tensors).U64(n_kv);
  }
  // Key + type id; the caller appends the value.
  ByteBuilder& Key(std::string_view key, uint32_t type) { return Str(key).U32(type); }
  ByteBuilder& KvU32(std::string_view key, uint32_t v) { return Key(key, kTypeU32).U32(v); }
  ByteBuilder& KvStr(std::string_view key, std::string_view v) { return Key(key, kTypeString).Str(v); }
  // Tensor info: name | n_dims | ne... | ggml type | offset.
  ByteBuilder& TensorInfo(std::string_view name, const std::vector<uint64_t>& ne, uint32_t type,
                          uint64_t offset) {
    Str(name).U32(static_cast<uint32_t>(ne.size()));
    for (uint64_t n : ne) U64(n);
    return U32(type).U64(offset);
  }
  ByteBuilder& PadTo(size_t alignment, uint8_t fill = 0) {
    while (bytes_.size() % alignment != 0) bytes_.push_back(fill);
    return *this;
  }
  ByteBuilder& Fill(size_t n, uint8_t v) {
    bytes_.insert(bytes_.end(), n, v);
    return *this;
  }

  size_t size() const { return bytes_.size(); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace gembed::testing
