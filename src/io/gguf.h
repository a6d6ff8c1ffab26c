// GGUF v2/v3 reader (bounds-checked, zero-copy over a read-only mmap) and writer.
//
// File layout (little-endian):
//   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv      (v1 used u32 counts: rejected)
//   n_kv x { gguf_string key | u32 value_type | value }
//   n_tensors x { gguf_string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to `general.alignment` (default 32)
//   tensor data; each tensor's offset is relative to the data start and aligned.
// gguf_string = u64 length + bytes (no NUL). Arrays = u32 elem_type + u64 count + elems.
// v2 and v3 have the same layout (v3 only allowed big-endian files, which
// gembed rejects with an "unsupported ... big-endian" error).
//
// The reader never trusts a count or length: every read is checked against
// the bytes left, and every failure is a Status (kCorruptFile / kUnsupported),
// never a crash, hang or huge allocation. A count is compared with the bytes
// left (times the smallest encoding of one element) *before* anything is
// reserved, so memory stays proportional to the file size (at most ~8x for a
// u8 array, whose elements are widened to u64 in GgufValue).
//
// Rules the reader enforces (decisions where the GGUF spec is silent):
//   * version must be 2 or 3: 1 and anything else -> kUnsupported "unsupported GGUF version N".
//   * metadata keys and tensor names: non-empty, valid UTF-8, no NUL byte;
//     keys at most 65535 bytes, tensor names at most 63 bytes (llama.cpp's
//     GGML_MAX_NAME limit, so every file we accept llama.cpp accepts too).
//     Duplicate keys / duplicate tensor names are errors.
//   * string VALUES are opaque bytes: embedded NULs and invalid UTF-8 are kept
//     as they are (a vocabulary may hold any bytes; consumers validate what
//     they need, `gembed inspect` escapes them for display).
//   * bool values must be the byte 0 or 1; any other byte is kCorruptFile.
//   * value type ids must be 0..12; an array's element type must not be an
//     array (arrays of arrays are kUnsupported).
//   * well-known keys must have their documented type (general.alignment u32,
//     general.architecture string, tokenizer.ggml.tokens string array, ...;
//     see kKnownKeys in gguf.cc). general.alignment must be a non-zero power of two.
//   * tensors: 1..4 dims, every ne >= 1, element count fits int64, ne[0] a
//     whole number of blocks, ggml type known (else kUnsupported
//     "unsupported tensor type N"), offset a multiple of the alignment,
//     offset+size not overflowing, data inside the file, no two tensors
//     overlapping. Gaps between tensors and trailing bytes are allowed.
//
// Threading: a GgufFile is immutable after Open/FromBytes; any number of
// threads may read it concurrently. GgufWriter is not thread-safe.
#pragma once

#include <array>
#include <cstddef>
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
// "u8", "i32", "f32", "bool", "string", "array", ...; "?" for ids outside 0..12.
std::string_view GgufTypeName(GgufType t);

// Renders arbitrary bytes for error messages and `gembed inspect`: valid UTF-8
// is kept, `\` `"` and control characters are backslash-escaped, bytes that are
// not valid UTF-8 become \xNN. At most `max_chars` characters of `s` are
// rendered; if there are more, "..." is appended.
std::string GgufEscapeString(std::string_view s, size_t max_chars = SIZE_MAX);

// One metadata value. Arrays hold their elements typed; string arrays keep
// string_views into the mapped file (reader: arr_string_view) or owned
// strings (writer: arr_string).
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
  std::vector<std::string> arr_string;  // string arrays built by hand (writer side)
  // String arrays parsed by GgufFile: views into the file's bytes, valid while
  // that GgufFile lives (no per-element allocation for a 262k-entry vocab).
  // GgufWriter::Set copies them into arr_string.
  std::vector<std::string_view> arr_string_view;

  size_t array_size() const;
  // Element i of a string array, from whichever of the two vectors holds it.
  std::string_view string_at(size_t i) const;
};

struct GgufTensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  int n_dims = 0;
  std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};
  uint64_t offset = 0;  // relative to the data section start
  uint64_t nbytes = 0;

  int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class MappedFile;  // io/mmap.h

class GgufFile {
 public:
  // Maps and parses `path`. Any malformed input gives a non-OK Status whose
  // message starts with "<path>: ".
  static Result<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses bytes owned by the caller (they must outlive the GgufFile); used
  // by tests and the fuzzer. Tensor data pointers are aligned to the file's
  // alignment only if `data` is (an mmap is page-aligned).
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

  // More getters (same conventions as above).
  Result<int32_t> GetI32(std::string_view key) const;  // any integer type whose value fits
  Result<std::optional<uint64_t>> GetU64Opt(std::string_view key) const;
  Result<std::optional<std::string>> GetStringOpt(std::string_view key) const;

  // Array getters, for the tokenizer (tokenizer.ggml.tokens / scores /
  // token_type). NotFound if absent; kCorruptFile if the key is not an array
  // or its element type does not fit.
  //   GetStringArray: zero-copy views into the file, valid while this GgufFile lives.
  //   GetF32Array:    f32 or f64 elements (f64 rounded to float).
  //   GetI32Array:    any integer element type whose every value fits int32.
  //   GetU32Array:    any integer element type whose every value fits uint32.
  Result<std::vector<std::string_view>> GetStringArray(std::string_view key) const;
  Result<std::vector<float>> GetF32Array(std::string_view key) const;
  Result<std::vector<int32_t>> GetI32Array(std::string_view key) const;
  Result<std::vector<uint32_t>> GetU32Array(std::string_view key) const;

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
//
// Layout: metadata keys in insertion order (Set on an existing key replaces
// its value in place), tensor infos in AddTensor order, tensor data packed in
// the same order, each tensor padded to the alignment (as gguf-py does).
// Alignment: the constructor's value; if it is not 32, a u32
// `general.alignment` key is added first. Setting `general.alignment` to a u32
// later changes the layout alignment too.
//
// Validation: AddTensor checks name, shape and byte size. WriteFile also
// checks the metadata (keys non-empty valid UTF-8 without NUL, values that fit
// their declared type, no nested arrays, a power-of-two alignment) and
// returns InvalidArgument rather than write a file the reader would reject.
// ToBytes does NOT check the metadata: it serialises what it was given (tests
// use it to craft malformed files); an invalid alignment value is written as
// given while the layout falls back to 32.
class GgufWriter {
 public:
  explicit GgufWriter(uint32_t alignment = 32);

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
  // The remaining scalar types.
  void SetU8(const std::string& key, uint8_t v);
  void SetI8(const std::string& key, int8_t v);
  void SetU16(const std::string& key, uint16_t v);
  void SetI16(const std::string& key, int16_t v);
  void SetI64(const std::string& key, int64_t v);
  void SetF64(const std::string& key, double v);
  // Generic: any value (used to copy metadata from another file). Values are
  // narrowed to their declared type by static_cast in ToBytes (WriteFile
  // rejects values that do not fit).
  void Set(const std::string& key, GgufValue v);

  // ne in GGUF order (ne[0] innermost). `bytes` must be DTypeRowBytes-sized.
  // Errors (InvalidArgument): bad or duplicate name, 0 or > 4 dims, ne < 1,
  // element count overflow, ne[0] not a whole number of blocks, unknown
  // dtype, wrong byte count.
  Status AddTensor(const std::string& name, DType dtype, std::vector<int64_t> ne,
                   std::vector<uint8_t> bytes);

  // Serialises to memory (tests) or to a file (io/atomic_file.h: a new
  // temporary file next to path, renamed over it; a target that is not a
  // regular file is refused).
  std::vector<uint8_t> ToBytes() const;
  Status WriteFile(const std::string& path) const;

  uint32_t alignment() const { return alignment_; }
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }

 private:
  uint32_t LayoutAlignment() const;
  std::vector<uint8_t> HeaderBytes() const;  // everything before the data section, padded
  Status ValidateMetadata() const;

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
