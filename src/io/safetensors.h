// safetensors reader (bounds-checked, zero-copy over a read-only mmap), a
// small writer (tests, synthetic Hugging Face folders) and sharded models
// (model.safetensors.index.json).
//
// File layout (https://github.com/huggingface/safetensors, "Format"):
//   u64 N (little-endian)        header length in bytes
//   N bytes of UTF-8 JSON         the header; writers pad it with spaces
//   data section                  the rest of the file: tensor bytes, packed
// Header JSON:
//   { "__metadata__": {"format": "pt", ...},            optional, string -> string
//     "<tensor name>": { "dtype": "F32",
//                        "shape": [3072, 768],           row-major, PyTorch order
//                        "data_offsets": [begin, end] }, relative to the data section
//     ... }
// Tensor bytes are little-endian, C-contiguous (row-major).
//
// SHAPE ORDER. safetensors stores shapes in PyTorch order, outermost first: a
// Linear weight is [out, in]. gembed's TensorView (base/tensor.h) uses ggml
// order, ne[0] innermost. View() therefore REVERSES the shape:
//   safetensors shape [3072, 768]  ->  TensorView ne = {768, 3072, 1, 1}
// SafetensorsTensorInfo::shape keeps the file's (PyTorch) order.
//
// The reader never trusts a length or offset, and every failure is a Status
// (never a crash, hang or huge allocation). Rules it enforces (those of the
// reference Rust implementation, plus a few of gembed's, marked *):
//   * the file holds at least the 8-byte length; N <= file size - 8 and
//     N <= 100,000,000 (the reference's MAX_HEADER_SIZE) -> else kCorruptFile.
//   * the header starts with '{' and is one JSON object, nothing after it but
//     whitespace; malformed JSON is kCorruptFile with the parser's position.
//   * * duplicate keys at any level are kCorruptFile (a JSON parser would
//     silently keep one of them); nesting deeper than the schema (3 levels)
//     is kCorruptFile.
//   * "__metadata__", when present, is an object of string values.
//   * every tensor entry is an object with "dtype" (string), "shape" (array
//     of non-negative integers) and "data_offsets" (exactly two non-negative
//     integers); other fields are ignored (*) if their value is a scalar.
//   * dtype names are the format's (F32, F16, BF16, F64, I64, I32, I16, I8,
//     U8, U16, U32, U64, BOOL, F8_E4M3, F8_E5M2, F8_E8M0, F6_E2M3, F6_E3M2,
//     F4, C64); any other name is kUnsupported "unknown dtype".
//   * element count = product(shape) and byte size = count * bits / 8 must
//     not overflow (kCorruptFile), bits * count must be a whole number of
//     bytes, and end - begin must equal the byte size; begin <= end.
//   * offsets lie inside the data section; tensors do not overlap; and, as
//     the format requires, the tensors cover the data section exactly: no
//     holes, no trailing bytes (this stops polyglot files).
//   * * rank at most 64 (kUnsupported beyond: no real tensor has it).
// Zero-sized tensors (a 0 in the shape, begin == end) and scalars (shape [])
// are valid.
//
// Compute dtypes: gembed computes with F32, F16 and BF16 tensors only. The
// others are parsed and their bytes available through Bytes(); View() on
// them returns kUnsupported "... unsupported for compute".
//
// Alignment: the data section starts 8 + N bytes into the file (writers pad N
// to a multiple of 8). A tensor's data is aligned to its element size only if
// the writer laid it out so (SafetensorsWriter and the reference writers put
// larger elements first); consumers that need alignment must check.
//
// Threading: SafetensorsFile and SafetensorsModel are immutable after opening;
// any number of threads may read them. SafetensorsWriter is not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"
#include "base/tensor.h"

namespace gembed {

enum class SafetensorsDType : uint8_t {
  kBool, kU8, kI8, kF8_E5M2, kF8_E4M3, kF8_E8M0, kI16, kU16, kF16, kBF16,
  kI32, kU32, kF32, kF64, kI64, kU64, kF4, kF6_E2M3, kF6_E3M2, kC64,
};

// The format's spelling ("F32", "BF16", "F8_E4M3", ...).
std::string_view SafetensorsDTypeName(SafetensorsDType t);
// Exact (case-sensitive, as the format) name lookup; nullopt if unknown.
std::optional<SafetensorsDType> SafetensorsDTypeFromName(std::string_view name);
// Bits per element (4 for F4, 6 for F6_*, 8 for U8, 64 for C64, ...).
uint32_t SafetensorsDTypeBits(SafetensorsDType t);
// gembed's DType for the same element format (F32, F16, BF16, F64, I8, I16,
// I32); nullopt where gembed has none (BOOL, U8, I64, F8, ...).
std::optional<DType> SafetensorsToDType(SafetensorsDType t);
// Whether gembed computes with it: F32, F16, BF16.
bool SafetensorsDTypeIsComputable(SafetensorsDType t);

inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;
inline constexpr size_t kSafetensorsMaxRank = 64;

struct SafetensorsTensorInfo {
  std::string name;
  SafetensorsDType dtype = SafetensorsDType::kF32;
  std::vector<int64_t> shape;  // PyTorch order: shape[0] outermost (slowest)
  uint64_t begin = 0;          // byte offsets relative to the data section
  uint64_t end = 0;
  int64_t elements = 0;        // product of shape (1 for a scalar)

  uint64_t nbytes() const { return end - begin; }
};

class MappedFile;  // io/mmap.h

class SafetensorsFile {
 public:
  // Maps and parses `path`. Errors start with "<path>: ".
  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // Parses bytes owned by the caller (they must outlive the object); used by
  // tests and the fuzzer.
  static Result<std::unique_ptr<SafetensorsFile>> FromBytes(const uint8_t* data, size_t size);
  ~SafetensorsFile();

  uint64_t header_bytes() const { return header_bytes_; }  // N
  uint64_t data_offset() const { return 8 + header_bytes_; }  // absolute file offset of the data
  uint64_t file_size() const { return size_; }
  const std::string& path() const { return path_; }  // empty for FromBytes

  // "__metadata__" (empty if absent).
  const std::map<std::string, std::string, std::less<>>& metadata() const { return metadata_; }
  // Tensors in data order (by begin offset, then name).
  const std::vector<SafetensorsTensorInfo>& tensors() const { return tensors_; }
  const SafetensorsTensorInfo* FindTensor(std::string_view name) const;

  // Raw bytes of any tensor, whatever its dtype (valid while this object lives).
  std::span<const uint8_t> Bytes(const SafetensorsTensorInfo& info) const;
  // Zero-copy view with the shape REVERSED into ggml order (see top of file).
  // kUnsupported for dtypes gembed does not compute with and for rank > 4.
  Result<TensorView> View(const SafetensorsTensorInfo& info) const;

 private:
  SafetensorsFile() = default;
  Status Parse();

  std::unique_ptr<MappedFile> map_;
  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint64_t header_bytes_ = 0;
  std::map<std::string, std::string, std::less<>> metadata_;
  std::vector<SafetensorsTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

// A model stored as one or more safetensors files.
//
// Open(path) accepts:
//   * a .safetensors file;
//   * a model.safetensors.index.json (Hugging Face sharding):
//       {"metadata": {...}, "weight_map": {"<tensor>": "<shard file>", ...}}
//     shard names are relative to the index's folder and may not be absolute
//     or contain "..". Each shard is opened once. Errors: missing or
//     unreadable shard; a tensor listed twice in weight_map; a listed tensor
//     missing from its shard; a tensor present in a shard but not listed for
//     that shard (also: in two shards); a malformed index.
//   * a folder holding model.safetensors.index.json (preferred) or
//     model.safetensors.
// Tensor names are unique across the model.
class SafetensorsModel {
 public:
  static Result<std::unique_ptr<SafetensorsModel>> Open(const std::string& path);

  struct Entry {
    const SafetensorsFile* file;
    const SafetensorsTensorInfo* info;
  };
  // All tensors, sorted by name.
  const std::vector<Entry>& tensors() const { return tensors_; }
  const Entry* Find(std::string_view name) const;
  // View of a tensor by name: NotFound if absent, else SafetensorsFile::View.
  Result<TensorView> View(std::string_view name) const;

  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }
  // The index's "metadata" values rendered as JSON text (e.g. total_size ->
  // "1211452416"); empty without an index.
  const std::map<std::string, std::string, std::less<>>& index_metadata() const {
    return index_metadata_;
  }

 private:
  SafetensorsModel() = default;
  Status AddShard(std::unique_ptr<SafetensorsFile> f);
  void Finish();

  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::vector<Entry> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string, std::less<>> index_metadata_;
};

// Builds a safetensors file. Layout as the reference writer: tensors ordered
// by element size (largest first), then by name, so every tensor is aligned
// to its element size; the header is padded with spaces so the data section
// starts at a multiple of 8.
class SafetensorsWriter {
 public:
  // Adds or replaces a "__metadata__" entry. InvalidArgument if the key or
  // value is not valid UTF-8 (JSON cannot carry it).
  Status SetMetadata(const std::string& key, const std::string& value);
  // shape in PyTorch order (row-major); bytes must be exactly
  // product(shape) * bits / 8. Errors (InvalidArgument): duplicate name,
  // name "__metadata__" or not valid UTF-8, negative dimension, wrong byte
  // count, rank > kSafetensorsMaxRank, overflow.
  Status AddTensor(const std::string& name, SafetensorsDType dtype, std::vector<int64_t> shape,
                   std::vector<uint8_t> bytes);

  std::vector<uint8_t> ToBytes() const;
  // Writes a new temporary file next to path, then renames it over path
  // (io/atomic_file.h; a target that is not a regular file is refused).
  Status WriteFile(const std::string& path) const;

 private:
  std::map<std::string, std::string> metadata_;
  struct Pending {
    std::string name;
    SafetensorsDType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<Pending> tensors_;
};

}  // namespace gembed
