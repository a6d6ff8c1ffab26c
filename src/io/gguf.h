// GGUF v2/v3 reader (bounds-checked, zero-copy over a read-only mmap) and writer.
//
// File layout (little-endian):
//   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv      (v1 used u32 counts: rejected)
//   n_kv x { gguf_string key | u32 value_type | value }
//   n_tensors x { gguf_string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to `general.alignment` (default 32)
//   tensor data; each tensor's offset is relative to the data start and aligned.
// gguf_string = u64 length + bytes (no NUL). Arrays = u32 elem_type + u64 count + elems.
//
// The reader never trusts a count or length: every read is checked against
// the bytes left, and every failure is a Status (kCorruptFile / kUnsupported),
// never a crash, hang or huge allocation.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"
#include "base/tensor.h"

namespace gembed {

enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6,
  kBool = 7, kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
std::string_view GgufTypeName(GgufType t);

// One metadata value. Arrays hold their elements typed; string arrays keep
// string_views into the mapped file (reader) or owned strings (writer).
struct GgufValue {
  GgufType type = GgufType::kU32;
  GgufType array_type = GgufType::kU8;  // element type when type == kArray
  // Scalars: unsigned/signed/float/bool/string.
  std::variant<uint64_t, int64_t, double, bool, std::string> scalar;
  // Arrays (exactly one of these is used, by array_type):
  std::vector<uint64_t> arr_uint;      // u8/u16/u32/u64
  std::vector<int64_t> arr_int;        // i8/i16/i32/i64
  std::vector<double> arr_float;       // f32/f64
  std::vector<bool> arr_bool;
  std::vector<std::string> arr_string;

  size_t array_size() const;
};

struct GgufTensorInfo {
  std::string name;
  DType dtype;
  int n_dims;
  std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};
  uint64_t offset;  // relative to the data section start
  uint64_t nbytes;
};

class MappedFile;  // io/mmap.h

class GgufFile {
 public:
  // Maps and parses `path`. Any malformed input gives a non-OK Status.
  static Result<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses bytes owned by the caller (they must outlive the GgufFile); used
  // by tests and the fuzzer.
  static Result<std::unique_ptr<GgufFile>> FromBytes(const uint8_t* data, size_t size);
  ~GgufFile();

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute file offset of the data section
  uint64_t file_size() const { return size_; }

  // Metadata, in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* Find(std::string_view key) const;

  // Typed getters: NotFound if absent, InvalidArgument-style kCorruptFile if
  // the stored type does not fit (u32 accepts any unsigned/signed integer
  // type whose value fits; f32 accepts f32/f64).
  Result<uint32_t> GetU32(std::string_view key) const;
  Result<uint64_t> GetU64(std::string_view key) const;
  Result<float> GetF32(std::string_view key) const;
  Result<bool> GetBool(std::string_view key) const;
  Result<std::string> GetString(std::string_view key) const;
  // Optional variants: nullopt if absent, error if present with a wrong type.
  Result<std::optional<uint32_t>> GetU32Opt(std::string_view key) const;
  Result<std::optional<float>> GetF32Opt(std::string_view key) const;
  Result<std::optional<bool>> GetBoolOpt(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(std::string_view name) const;
  // Zero-copy view of a tensor's bytes (valid while this GgufFile lives).
  TensorView View(const GgufTensorInfo& info) const;

 private:
  GgufFile() = default;
  Status Parse();

  std::unique_ptr<MappedFile> map_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// GgufWriter: builds a GGUF v3 file. Tensors are added with their bytes
// already in the target dtype (quantisation happens elsewhere).
class GgufWriter {
 public:
  explicit GgufWriter(uint32_t alignment = 32) : alignment_(alignment) {}

  void SetU32(const std::string& key, uint32_t v);
  void SetI32(const std::string& key, int32_t v);
  void SetU64(const std::string& key, uint64_t v);
  void SetF32(const std::string& key, float v);
  void SetBool(const std::string& key, bool v);
  void SetString(const std::string& key, const std::string& v);
  void SetStringArray(const std::string& key, const std::vector<std::string>& v);
  void SetF32Array(const std::string& key, const std::vector<float>& v);
  void SetI32Array(const std::string& key, const std::vector<int32_t>& v);
  void SetU32Array(const std::string& key, const std::vector<uint32_t>& v);
  // Generic: any value (used to copy metadata from another file).
  void Set(const std::string& key, GgufValue v);

  // ne in GGUF order (ne[0] innermost). `bytes` must be DTypeRowBytes-sized.
  Status AddTensor(const std::string& name, DType dtype, std::vector<int64_t> ne,
                   std::vector<uint8_t> bytes);

  // Serialises to memory (tests) or to a file (written to path.tmp, then renamed).
  std::vector<uint8_t> ToBytes() const;
  Status WriteFile(const std::string& path) const;

 private:
  uint32_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  struct PendingTensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> ne;
    std::vector<uint8_t> bytes;
  };
  std::vector<PendingTensor> tensors_;
};

}  // namespace gembed
