// GGUF reader and writer. See gguf.h for the format and the validation rules.
//
// The reader walks the header with a bounds-checked cursor; every length or
// count read from the file is compared with the bytes that remain before it
// is used to size anything. Tensor data is never copied: a TensorView points
// into the mapping.
#include "io/gguf.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>

#include "base/check.h"
#include "io/atomic_file.h"
#include "io/mmap.h"

namespace gembed {

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader/writer assumes a little-endian host");

namespace {

constexpr uint8_t kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kWriteVersion = 3;
constexpr uint32_t kDefaultAlignment = 32;
constexpr uint64_t kMaxKeyBytes = 65535;
constexpr uint64_t kMaxTensorNameBytes = 63;  // ggml's GGML_MAX_NAME (64) minus the NUL
constexpr uint32_t kNumValueTypes = 13;       // ids 0..12
// Smallest possible encodings, used to reject absurd counts before reserving:
// key (u64 len + >= 1 byte) + u32 type + >= 1 value byte.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
// name (u64 len + >= 1 byte) + u32 n_dims + >= 1 u64 ne + u32 type + u64 offset.
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;

constexpr const char* kAlignmentKey = "general.alignment";

// Keys whose type GGUF consumers (llama.cpp, gembed) rely on. A file that
// stores one of them with another type is rejected at load, so a wrong type
// surfaces as "key X has type Y, expected Z" instead of a confusing failure
// later. elem is the array element type when type == kArray.
struct KnownKey {
  std::string_view key;
  GgufType type;
  GgufType elem;
};
constexpr KnownKey kKnownKeys[] = {
    {"general.architecture", GgufType::kString, GgufType::kU8},
    {"general.alignment", GgufType::kU32, GgufType::kU8},
    {"general.name", GgufType::kString, GgufType::kU8},
    {"general.basename", GgufType::kString, GgufType::kU8},
    {"general.size_label", GgufType::kString, GgufType::kU8},
    {"general.license", GgufType::kString, GgufType::kU8},
    {"general.file_type", GgufType::kU32, GgufType::kU8},
    {"general.quantization_version", GgufType::kU32, GgufType::kU8},
    {"tokenizer.ggml.model", GgufType::kString, GgufType::kU8},
    {"tokenizer.ggml.pre", GgufType::kString, GgufType::kU8},
    {"tokenizer.ggml.tokens", GgufType::kArray, GgufType::kString},
    {"tokenizer.ggml.scores", GgufType::kArray, GgufType::kF32},
    {"tokenizer.ggml.token_type", GgufType::kArray, GgufType::kI32},
    {"tokenizer.ggml.merges", GgufType::kArray, GgufType::kString},
    {"tokenizer.ggml.bos_token_id", GgufType::kU32, GgufType::kU8},
    {"tokenizer.ggml.eos_token_id", GgufType::kU32, GgufType::kU8},
    {"tokenizer.ggml.unknown_token_id", GgufType::kU32, GgufType::kU8},
    {"tokenizer.ggml.padding_token_id", GgufType::kU32, GgufType::kU8},
    {"tokenizer.ggml.seperator_token_id", GgufType::kU32, GgufType::kU8},  // sic (llama.cpp)
    {"tokenizer.ggml.mask_token_id", GgufType::kU32, GgufType::kU8},
    {"tokenizer.ggml.add_bos_token", GgufType::kBool, GgufType::kU8},
    {"tokenizer.ggml.add_eos_token", GgufType::kBool, GgufType::kU8},
    {"tokenizer.ggml.add_sep_token", GgufType::kBool, GgufType::kU8},
    {"tokenizer.ggml.add_space_prefix", GgufType::kBool, GgufType::kU8},
};

const KnownKey* FindKnownKey(std::string_view key) {
  for (const KnownKey& k : kKnownKeys)
    if (k.key == key) return &k;
  return nullptr;
}

bool IsValidType(uint32_t t) { return t < kNumValueTypes; }

// Encoded size of one value of a fixed-size type; 0 for string and array.
uint64_t FixedSize(GgufType t) {
  switch (t) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kBool: return 1;
    case GgufType::kU16: case GgufType::kI16: return 2;
    case GgufType::kU32: case GgufType::kI32: case GgufType::kF32: return 4;
    case GgufType::kU64: case GgufType::kI64: case GgufType::kF64: return 8;
    case GgufType::kString: case GgufType::kArray: return 0;
  }
  return 0;
}

bool IsUnsigned(GgufType t) {
  return t == GgufType::kU8 || t == GgufType::kU16 || t == GgufType::kU32 || t == GgufType::kU64;
}
bool IsSigned(GgufType t) {
  return t == GgufType::kI8 || t == GgufType::kI16 || t == GgufType::kI32 || t == GgufType::kI64;
}
bool IsFloat(GgufType t) { return t == GgufType::kF32 || t == GgufType::kF64; }

std::string TypeDescription(const GgufValue& v) {
  if (v.type == GgufType::kArray)
    return fmt::format("array of {}", GgufTypeName(v.array_type));
  return std::string(GgufTypeName(v.type));
}
std::string TypeDescription(GgufType type, GgufType elem) {
  if (type == GgufType::kArray) return fmt::format("array of {}", GgufTypeName(elem));
  return std::string(GgufTypeName(type));
}

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
// Returns the length of the valid sequence starting at s[i], or 0.
size_t Utf8SeqLen(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (s.size() - i < n) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  static constexpr uint32_t kMinCp[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinCp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const size_t n = Utf8SeqLen(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// Shared rule for keys and tensor names (see gguf.h).
Status CheckName(std::string_view name, uint64_t max_bytes, const char* what) {
  if (name.empty()) return CorruptFile("empty {}", what);
  if (name.size() > max_bytes)
    return CorruptFile("{} \"{}\" is {} bytes long (at most {} allowed)", what,
                       GgufEscapeString(name, 40), name.size(), max_bytes);
  if (name.find('\0') != std::string_view::npos)
    return CorruptFile("{} \"{}\" contains a NUL byte", what, GgufEscapeString(name, 80));
  if (!IsValidUtf8(name))
    return CorruptFile("{} \"{}\" is not valid UTF-8", what, GgufEscapeString(name, 80));
  return Status::Ok();
}

Status CheckKnownKeyType(std::string_view key, const GgufValue& v) {
  const KnownKey* k = FindKnownKey(key);
  if (!k) return Status::Ok();
  const bool ok = v.type == k->type && (v.type != GgufType::kArray || v.array_type == k->elem);
  if (ok) return Status::Ok();
  return CorruptFile("key '{}' has type {}, expected {}", key, TypeDescription(v),
                     TypeDescription(k->type, k->elem));
}

// Bounds-checked little-endian cursor over the file's bytes.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  bool Has(uint64_t n) const { return n <= size_ - pos_; }
  const uint8_t* here() const { return data_ + pos_; }
  void Skip(uint64_t n) { pos_ += n; }  // caller checked Has(n)

  Status Truncated(uint64_t need, std::string_view what) const {
    return CorruptFile("truncated file: {} needs {} bytes at offset {}, only {} left", what, need,
                       pos_, left());
  }

  template <typename T>
  Status Read(T* out, std::string_view what) {
    if (!Has(sizeof(T))) return Truncated(sizeof(T), what);
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }

  // gguf_string: u64 length + bytes. The view points into the file.
  Status ReadString(std::string_view* out, std::string_view what) {
    uint64_t n = 0;
    GEMBED_RETURN_IF_ERROR(Read(&n, what));
    if (!Has(n))
      return CorruptFile("{}: string length {} at offset {} exceeds the {} bytes left", what, n,
                         pos_ - 8, left());
    *out = std::string_view(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return Status::Ok();
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

template <typename T>
T LoadLE(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Reads one fixed-size scalar of type t at p into v->scalar.
Status DecodeFixed(GgufType t, const uint8_t* p, GgufValue* v) {
  switch (t) {
    case GgufType::kU8: v->scalar = uint64_t{LoadLE<uint8_t>(p)}; break;
    case GgufType::kU16: v->scalar = uint64_t{LoadLE<uint16_t>(p)}; break;
    case GgufType::kU32: v->scalar = uint64_t{LoadLE<uint32_t>(p)}; break;
    case GgufType::kU64: v->scalar = LoadLE<uint64_t>(p); break;
    case GgufType::kI8: v->scalar = int64_t{LoadLE<int8_t>(p)}; break;
    case GgufType::kI16: v->scalar = int64_t{LoadLE<int16_t>(p)}; break;
    case GgufType::kI32: v->scalar = int64_t{LoadLE<int32_t>(p)}; break;
    case GgufType::kI64: v->scalar = LoadLE<int64_t>(p); break;
    case GgufType::kF32: v->scalar = double{LoadLE<float>(p)}; break;
    case GgufType::kF64: v->scalar = LoadLE<double>(p); break;
    case GgufType::kBool: {
      const uint8_t b = *p;
      if (b > 1) return CorruptFile("bool value is the byte {} (must be 0 or 1)", b);
      v->scalar = b == 1;
      break;
    }
    default: return Internal("DecodeFixed on a variable-size type");
  }
  return Status::Ok();
}

// Reads `count` fixed-size elements of type T from the cursor into out.
template <typename T, typename Dst>
void ReadArrayElems(Cursor& c, uint64_t count, std::vector<Dst>* out) {
  out->resize(count);
  const uint8_t* p = c.here();
  for (uint64_t i = 0; i < count; ++i) (*out)[i] = static_cast<Dst>(LoadLE<T>(p + i * sizeof(T)));
  c.Skip(count * sizeof(T));
}

Status ReadArray(Cursor& c, GgufValue* v) {
  uint32_t et_raw = 0;
  uint64_t count = 0;
  GEMBED_RETURN_IF_ERROR(c.Read(&et_raw, "array element type"));
  if (!IsValidType(et_raw)) return CorruptFile("invalid array element type {}", et_raw);
  const GgufType et = static_cast<GgufType>(et_raw);
  if (et == GgufType::kArray) return Unsupported("arrays of arrays are not supported");
  GEMBED_RETURN_IF_ERROR(c.Read(&count, "array length"));
  v->array_type = et;
  // Reject absurd counts before allocating anything: every element takes at
  // least its fixed size (strings at least their u64 length).
  const uint64_t min_elem = et == GgufType::kString ? 8 : FixedSize(et);
  if (count > c.left() / min_elem)
    return CorruptFile("array of {} {} elements needs at least {} bytes, only {} left", count,
                       GgufTypeName(et),
                       count > UINT64_MAX / min_elem ? UINT64_MAX : count * min_elem, c.left());
  switch (et) {
    case GgufType::kU8: ReadArrayElems<uint8_t>(c, count, &v->arr_uint); break;
    case GgufType::kU16: ReadArrayElems<uint16_t>(c, count, &v->arr_uint); break;
    case GgufType::kU32: ReadArrayElems<uint32_t>(c, count, &v->arr_uint); break;
    case GgufType::kU64: ReadArrayElems<uint64_t>(c, count, &v->arr_uint); break;
    case GgufType::kI8: ReadArrayElems<int8_t>(c, count, &v->arr_int); break;
    case GgufType::kI16: ReadArrayElems<int16_t>(c, count, &v->arr_int); break;
    case GgufType::kI32: ReadArrayElems<int32_t>(c, count, &v->arr_int); break;
    case GgufType::kI64: ReadArrayElems<int64_t>(c, count, &v->arr_int); break;
    case GgufType::kF32: ReadArrayElems<float>(c, count, &v->arr_float); break;
    case GgufType::kF64: ReadArrayElems<double>(c, count, &v->arr_float); break;
    case GgufType::kBool: {
      const uint8_t* p = c.here();
      v->arr_bool.resize(count);
      for (uint64_t i = 0; i < count; ++i) {
        if (p[i] > 1)
          return CorruptFile("array element {}: bool value is the byte {} (must be 0 or 1)", i,
                             p[i]);
        v->arr_bool[i] = p[i] == 1;
      }
      c.Skip(count);
      break;
    }
    case GgufType::kString: {
      // Hot path for a 262k-entry vocabulary: views only, no allocation per element.
      v->arr_string_view.resize(count);
      for (uint64_t i = 0; i < count; ++i) {
        if (!c.Has(8)) return c.Truncated(8, fmt::format("string {} of the array", i));
        const uint64_t n = LoadLE<uint64_t>(c.here());
        c.Skip(8);
        if (!c.Has(n))
          return CorruptFile("array element {}: string length {} exceeds the {} bytes left", i, n,
                             c.left());
        v->arr_string_view[i] = std::string_view(reinterpret_cast<const char*>(c.here()), n);
        c.Skip(n);
      }
      break;
    }
    case GgufType::kArray: break;  // rejected above
  }
  return Status::Ok();
}

Status ReadValue(Cursor& c, GgufType type, GgufValue* v) {
  v->type = type;
  if (type == GgufType::kArray) return ReadArray(c, v);
  if (type == GgufType::kString) {
    std::string_view s;
    GEMBED_RETURN_IF_ERROR(c.ReadString(&s, "string value"));
    v->scalar = std::string(s);
    return Status::Ok();
  }
  const uint64_t n = FixedSize(type);
  if (!c.Has(n)) return c.Truncated(n, fmt::format("{} value", GgufTypeName(type)));
  GEMBED_RETURN_IF_ERROR(DecodeFixed(type, c.here(), v));
  c.Skip(n);
  return Status::Ok();
}

uint64_t AlignUp(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }  // a > 0, no overflow for file offsets
bool IsPowerOfTwo(uint64_t a) { return a != 0 && (a & (a - 1)) == 0; }

// Integer views of a scalar value, whatever its integer type. Bool, float and
// string values are not integers.
std::optional<uint64_t> AsU64(const GgufValue& v) {
  if (IsUnsigned(v.type)) {
    if (const auto* u = std::get_if<uint64_t>(&v.scalar)) return *u;
  } else if (IsSigned(v.type)) {
    if (const auto* i = std::get_if<int64_t>(&v.scalar); i && *i >= 0)
      return static_cast<uint64_t>(*i);
  }
  return std::nullopt;
}
std::optional<int64_t> AsI64(const GgufValue& v) {
  if (IsSigned(v.type)) {
    if (const auto* i = std::get_if<int64_t>(&v.scalar)) return *i;
  } else if (IsUnsigned(v.type)) {
    if (const auto* u = std::get_if<uint64_t>(&v.scalar);
        u && *u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return static_cast<int64_t>(*u);
  }
  return std::nullopt;
}

std::string ScalarToString(const GgufValue& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return "\"" + GgufEscapeString(x, 40) + "\"";
        } else {
          return fmt::format("{}", x);
        }
      },
      v.scalar);
}

Status WrongType(std::string_view key, const GgufValue& v, std::string_view expected) {
  return CorruptFile("key '{}' has type {}, expected {}", key, TypeDescription(v), expected);
}

}  // namespace

// ---------------------------------------------------------------------------
// Free helpers

std::string_view GgufTypeName(GgufType t) {
  switch (t) {
    case GgufType::kU8: return "u8";
    case GgufType::kI8: return "i8";
    case GgufType::kU16: return "u16";
    case GgufType::kI16: return "i16";
    case GgufType::kU32: return "u32";
    case GgufType::kI32: return "i32";
    case GgufType::kF32: return "f32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kU64: return "u64";
    case GgufType::kI64: return "i64";
    case GgufType::kF64: return "f64";
  }
  return "?";
}

std::string GgufEscapeString(std::string_view s, size_t max_chars) {
  std::string out;
  out.reserve(std::min(s.size(), max_chars) + 8);
  size_t i = 0, chars = 0;
  while (i < s.size()) {
    if (chars == max_chars) {
      out += "...";
      break;
    }
    const auto c = static_cast<uint8_t>(s[i]);
    const size_t n = Utf8SeqLen(s, i);
    if (n == 1) {
      switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20 || c == 0x7F) {
            out += fmt::format("\\x{:02x}", c);
          } else {
            out += static_cast<char>(c);
          }
      }
      i += 1;
    } else if (n > 1) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += fmt::format("\\x{:02x}", c);
      i += 1;
    }
    ++chars;
  }
  return out;
}

size_t GgufValue::array_size() const {
  if (type != GgufType::kArray) return 0;
  if (IsUnsigned(array_type)) return arr_uint.size();
  if (IsSigned(array_type)) return arr_int.size();
  if (IsFloat(array_type)) return arr_float.size();
  if (array_type == GgufType::kBool) return arr_bool.size();
  if (array_type == GgufType::kString)
    return arr_string_view.empty() ? arr_string.size() : arr_string_view.size();
  return 0;
}

std::string_view GgufValue::string_at(size_t i) const {
  if (!arr_string_view.empty()) return arr_string_view[i];
  return arr_string[i];
}

// ---------------------------------------------------------------------------
// GgufFile

GgufFile::~GgufFile() = default;

Result<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  GEMBED_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> map, MappedFile::Open(path));
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->base_ = map->data();
  f->size_ = map->size();
  f->map_ = std::move(map);
  Status st = f->Parse();
  if (!st.ok()) return st.WithContext(path);
  return f;
}

Result<std::unique_ptr<GgufFile>> GgufFile::FromBytes(const uint8_t* data, size_t size) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->base_ = data;
  f->size_ = data ? size : 0;
  GEMBED_RETURN_IF_ERROR(f->Parse());
  return f;
}

Status GgufFile::Parse() {
  Cursor c(base_, size_);

  // Header.
  if (size_ < 4)
    return CorruptFile("truncated header: file is {} bytes, too short for the GGUF magic", size_);
  if (std::memcmp(base_, kMagic, 4) != 0)
    return CorruptFile("bad magic \"{}\" (expected \"GGUF\"): not a GGUF file",
                       GgufEscapeString(std::string_view(reinterpret_cast<const char*>(base_), 4)));
  c.Skip(4);
  uint32_t version = 0;
  GEMBED_RETURN_IF_ERROR(c.Read(&version, "header version").WithContext("truncated header"));
  if (version != 2 && version != 3) {
    const uint32_t swapped = __builtin_bswap32(version);
    if (swapped == 2 || swapped == 3)
      return Unsupported("unsupported GGUF version: big-endian GGUF v{} files are not supported",
                         swapped);
    if (version == 1)
      return Unsupported("unsupported GGUF version 1 (v1 used 32-bit counts; only 2 and 3 are read)");
    return Unsupported("unsupported GGUF version {} (only 2 and 3 are read)", version);
  }
  version_ = version;
  uint64_t n_tensors = 0, n_kv = 0;
  GEMBED_RETURN_IF_ERROR(c.Read(&n_tensors, "tensor count").WithContext("truncated header"));
  GEMBED_RETURN_IF_ERROR(c.Read(&n_kv, "metadata count").WithContext("truncated header"));
  if (n_kv > c.left() / kMinKvBytes)
    return CorruptFile("metadata count n_kv = {} is larger than the {} bytes left could hold", n_kv,
                       c.left());
  if (n_tensors > c.left() / kMinTensorInfoBytes)
    return CorruptFile("tensor count n_tensors = {} is larger than the {} bytes left could hold",
                       n_tensors, c.left());

  // Metadata.
  kv_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string_view key;
    GEMBED_RETURN_IF_ERROR(c.ReadString(&key, fmt::format("key of metadata entry {}", i)));
    GEMBED_RETURN_IF_ERROR(CheckName(key, kMaxKeyBytes, "metadata key")
                               .WithContext(fmt::format("metadata entry {}", i)));
    uint32_t type_raw = 0;
    GEMBED_RETURN_IF_ERROR(c.Read(&type_raw, fmt::format("value type of key '{}'", key)));
    if (!IsValidType(type_raw))
      return CorruptFile("key '{}': invalid value type {} (valid: 0..12)", key, type_raw);
    GgufValue value;
    GEMBED_RETURN_IF_ERROR(ReadValue(c, static_cast<GgufType>(type_raw), &value)
                               .WithContext(fmt::format("key '{}'", key)));
    GEMBED_RETURN_IF_ERROR(CheckKnownKeyType(key, value));
    auto [it, inserted] = kv_index_.emplace(std::string(key), kv_.size());
    if (!inserted) return CorruptFile("duplicate key '{}'", key);
    kv_.emplace_back(it->first, std::move(value));
  }

  // Alignment (typed by CheckKnownKeyType above: u32 if present).
  if (const GgufValue* a = Find(kAlignmentKey)) {
    const uint64_t al = std::get<uint64_t>(a->scalar);
    if (!IsPowerOfTwo(al))
      return CorruptFile("bad alignment: {} = {} is not a non-zero power of two", kAlignmentKey, al);
    alignment_ = static_cast<uint32_t>(al);
  }

  // Tensor infos.
  tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    std::string_view name;
    GEMBED_RETURN_IF_ERROR(c.ReadString(&name, fmt::format("name of tensor {}", i)));
    GEMBED_RETURN_IF_ERROR(
        CheckName(name, kMaxTensorNameBytes, "tensor name").WithContext(fmt::format("tensor {}", i)));
    t.name = std::string(name);
    const auto ctx = [&] { return fmt::format("tensor '{}'", t.name); };
    uint32_t n_dims = 0;
    GEMBED_RETURN_IF_ERROR(c.Read(&n_dims, "n_dims").WithContext(ctx()));
    if (n_dims == 0 || n_dims > static_cast<uint32_t>(kMaxDims))
      return CorruptFile("{}: n_dims = {} (must be 1..{})", ctx(), n_dims, kMaxDims);
    t.n_dims = static_cast<int>(n_dims);
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = 0;
      GEMBED_RETURN_IF_ERROR(c.Read(&ne, "shape").WithContext(ctx()));
      // ne is stored as u64 but ggml uses int64: a "huge" value is a negative one.
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return CorruptFile("{}: ne[{}] = {} (every dimension must be >= 1)", ctx(), d,
                           static_cast<int64_t>(ne));
      if (elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne)
        return CorruptFile("{}: element count overflows int64 (shape product)", ctx());
      elements *= ne;
      t.ne[d] = static_cast<int64_t>(ne);
    }
    uint32_t type_raw = 0;
    GEMBED_RETURN_IF_ERROR(c.Read(&type_raw, "ggml type").WithContext(ctx()));
    const std::optional<DType> dtype = DTypeFromGgml(type_raw);
    if (!dtype) return Unsupported("{}: unsupported tensor type {}", ctx(), type_raw);
    t.dtype = *dtype;
    if (t.ne[0] % DTypeBlockElems(t.dtype) != 0)
      return CorruptFile("{}: row of {} elements is not a whole number of {} blocks ({} elements each)",
                         ctx(), t.ne[0], DTypeName(t.dtype), DTypeBlockElems(t.dtype));
    const std::optional<uint64_t> row_bytes = DTypeRowBytes(t.dtype, static_cast<uint64_t>(t.ne[0]));
    if (!row_bytes) return CorruptFile("{}: byte size overflows", ctx());
    const uint64_t rows = elements / static_cast<uint64_t>(t.ne[0]);
    if (*row_bytes != 0 && rows > UINT64_MAX / *row_bytes)
      return CorruptFile("{}: byte size overflows", ctx());
    t.nbytes = *row_bytes * rows;
    GEMBED_RETURN_IF_ERROR(c.Read(&t.offset, "offset").WithContext(ctx()));
    if (t.offset % alignment_ != 0)
      return CorruptFile("{}: offset {} is misaligned (not a multiple of the alignment {})", ctx(),
                         t.offset, alignment_);
    if (t.offset > UINT64_MAX - t.nbytes)
      return CorruptFile("{}: offset {} + size {} overflows", ctx(), t.offset, t.nbytes);
    auto [it, inserted] = tensor_index_.emplace(t.name, tensors_.size());
    if (!inserted) return CorruptFile("duplicate tensor name '{}'", t.name);
    tensors_.push_back(std::move(t));
  }

  // Data section: starts at the next multiple of the alignment. c.pos() <=
  // size_ and alignment_ <= 2^31, so AlignUp cannot overflow.
  data_offset_ = AlignUp(c.pos(), alignment_);
  for (const GgufTensorInfo& t : tensors_) {
    const uint64_t end = t.offset + t.nbytes;  // checked above
    if (data_offset_ > size_ || end > size_ - data_offset_)
      return CorruptFile(
          "truncated data: tensor '{}' (offset {}, {} bytes) runs past the end of the file "
          "(data section {} bytes at file offset {})",
          t.name, t.offset, t.nbytes, data_offset_ > size_ ? 0 : size_ - data_offset_, data_offset_);
  }

  // No two tensors may share bytes. Sorted by offset, if tensor j overlaps an
  // earlier tensor i, it also overlaps i's successor (which starts no later
  // than j), so comparing neighbours finds every overlap.
  std::vector<size_t> order(tensors_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensorInfo& prev = tensors_[order[k - 1]];
    const GgufTensorInfo& cur = tensors_[order[k]];
    if (cur.offset < prev.offset + prev.nbytes)
      return CorruptFile("tensors '{}' (bytes {}..{}) and '{}' (bytes {}..{}) overlap", prev.name,
                         prev.offset, prev.offset + prev.nbytes, cur.name, cur.offset,
                         cur.offset + cur.nbytes);
  }
  return Status::Ok();
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

TensorView GgufFile::View(const GgufTensorInfo& info) const {
  TensorView v;
  v.dtype = info.dtype;
  v.n_dims = info.n_dims;
  v.ne = info.ne;
  v.data = base_ + data_offset_ + info.offset;
  v.nbytes = info.nbytes;
  return v;
}

Result<std::optional<uint32_t>> GgufFile::GetU32Opt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return std::optional<uint32_t>();
  const std::optional<uint64_t> u = AsU64(*v);
  if (!u) {
    if (IsSigned(v->type)) return CorruptFile("key '{}' = {} does not fit u32", key, ScalarToString(*v));
    return WrongType(key, *v, "an integer (u32)");
  }
  if (*u > std::numeric_limits<uint32_t>::max())
    return CorruptFile("key '{}' = {} does not fit u32", key, *u);
  return std::optional<uint32_t>(static_cast<uint32_t>(*u));
}

Result<std::optional<uint64_t>> GgufFile::GetU64Opt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return std::optional<uint64_t>();
  const std::optional<uint64_t> u = AsU64(*v);
  if (!u) {
    if (IsSigned(v->type)) return CorruptFile("key '{}' = {} does not fit u64", key, ScalarToString(*v));
    return WrongType(key, *v, "an integer (u64)");
  }
  return std::optional<uint64_t>(*u);
}

Result<std::optional<float>> GgufFile::GetF32Opt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return std::optional<float>();
  if (!IsFloat(v->type)) return WrongType(key, *v, "f32");
  return std::optional<float>(static_cast<float>(std::get<double>(v->scalar)));
}

Result<std::optional<bool>> GgufFile::GetBoolOpt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return std::optional<bool>();
  if (v->type != GgufType::kBool) return WrongType(key, *v, "bool");
  return std::optional<bool>(std::get<bool>(v->scalar));
}

Result<std::optional<std::string>> GgufFile::GetStringOpt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return std::optional<std::string>();
  if (v->type != GgufType::kString) return WrongType(key, *v, "string");
  return std::optional<std::string>(std::get<std::string>(v->scalar));
}

namespace {
// Turns an Opt getter into a required one.
template <typename T>
Result<T> Require(Result<std::optional<T>> r, std::string_view key) {
  if (!r.ok()) return r.status();
  if (!r.value().has_value()) return NotFound("metadata key '{}' not found", key);
  return std::move(*r.value());
}
}  // namespace

Result<uint32_t> GgufFile::GetU32(std::string_view key) const { return Require(GetU32Opt(key), key); }
Result<uint64_t> GgufFile::GetU64(std::string_view key) const { return Require(GetU64Opt(key), key); }
Result<float> GgufFile::GetF32(std::string_view key) const { return Require(GetF32Opt(key), key); }
Result<bool> GgufFile::GetBool(std::string_view key) const { return Require(GetBoolOpt(key), key); }
Result<std::string> GgufFile::GetString(std::string_view key) const {
  return Require(GetStringOpt(key), key);
}

Result<int32_t> GgufFile::GetI32(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return NotFound("metadata key '{}' not found", key);
  const std::optional<int64_t> i = AsI64(*v);
  if (!i) {
    if (IsUnsigned(v->type)) return CorruptFile("key '{}' = {} does not fit i32", key, ScalarToString(*v));
    return WrongType(key, *v, "an integer (i32)");
  }
  if (*i < std::numeric_limits<int32_t>::min() || *i > std::numeric_limits<int32_t>::max())
    return CorruptFile("key '{}' = {} does not fit i32", key, *i);
  return static_cast<int32_t>(*i);
}

namespace {
Result<const GgufValue*> FindArray(const GgufFile& f, std::string_view key) {
  const GgufValue* v = f.Find(key);
  if (!v) return NotFound("metadata key '{}' not found", key);
  if (v->type != GgufType::kArray) return WrongType(key, *v, "an array");
  return v;
}

// Integer array elements converted to T, every value range-checked.
template <typename T>
Result<std::vector<T>> IntArray(const GgufFile& f, std::string_view key, std::string_view tname) {
  GEMBED_ASSIGN_OR_RETURN(const GgufValue* v, FindArray(f, key));
  std::vector<T> out;
  constexpr auto kLo = static_cast<int64_t>(std::numeric_limits<T>::min());
  constexpr auto kHi = static_cast<uint64_t>(std::numeric_limits<T>::max());
  if (IsUnsigned(v->array_type)) {
    out.reserve(v->arr_uint.size());
    for (size_t i = 0; i < v->arr_uint.size(); ++i) {
      if (v->arr_uint[i] > kHi)
        return CorruptFile("key '{}': element {} = {} does not fit {}", key, i, v->arr_uint[i], tname);
      out.push_back(static_cast<T>(v->arr_uint[i]));
    }
  } else if (IsSigned(v->array_type)) {
    out.reserve(v->arr_int.size());
    for (size_t i = 0; i < v->arr_int.size(); ++i) {
      const int64_t x = v->arr_int[i];
      if (x < kLo || (x > 0 && static_cast<uint64_t>(x) > kHi))
        return CorruptFile("key '{}': element {} = {} does not fit {}", key, i, x, tname);
      out.push_back(static_cast<T>(x));
    }
  } else {
    return CorruptFile("key '{}' has type array of {}, expected an integer array", key,
                       GgufTypeName(v->array_type));
  }
  return out;
}
}  // namespace

Result<std::vector<std::string_view>> GgufFile::GetStringArray(std::string_view key) const {
  GEMBED_ASSIGN_OR_RETURN(const GgufValue* v, FindArray(*this, key));
  if (v->array_type != GgufType::kString)
    return CorruptFile("key '{}' has type array of {}, expected array of string", key,
                       GgufTypeName(v->array_type));
  return v->arr_string_view;
}

Result<std::vector<float>> GgufFile::GetF32Array(std::string_view key) const {
  GEMBED_ASSIGN_OR_RETURN(const GgufValue* v, FindArray(*this, key));
  if (!IsFloat(v->array_type))
    return CorruptFile("key '{}' has type array of {}, expected array of f32", key,
                       GgufTypeName(v->array_type));
  std::vector<float> out(v->arr_float.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(v->arr_float[i]);
  return out;
}

Result<std::vector<int32_t>> GgufFile::GetI32Array(std::string_view key) const {
  return IntArray<int32_t>(*this, key, "i32");
}
Result<std::vector<uint32_t>> GgufFile::GetU32Array(std::string_view key) const {
  return IntArray<uint32_t>(*this, key, "u32");
}

// ---------------------------------------------------------------------------
// GgufWriter

namespace {

class ByteSink {
 public:
  explicit ByteSink(std::vector<uint8_t>* out) : out_(out) {}
  template <typename T>
  void Put(T v) {
    const size_t n = out_->size();
    out_->resize(n + sizeof(T));
    std::memcpy(out_->data() + n, &v, sizeof(T));
  }
  void PutString(std::string_view s) {
    Put<uint64_t>(s.size());
    out_->insert(out_->end(), s.begin(), s.end());
  }
  void PadTo(uint64_t alignment) { out_->resize(AlignUp(out_->size(), alignment), 0); }

 private:
  std::vector<uint8_t>* out_;
};

// Converts any scalar alternative to T; strings and out-of-range floats give 0
// (WriteFile rejects such values before they get here).
template <typename T>
T ScalarAs(const GgufValue& v) {
  return std::visit(
      [](const auto& x) -> T {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, std::string>) {
          return T{};
        } else if constexpr (std::is_floating_point_v<X> && std::is_integral_v<T>) {
          if (!(x >= static_cast<double>(std::numeric_limits<T>::min()) &&
                x <= static_cast<double>(std::numeric_limits<T>::max())))
            return T{};
          return static_cast<T>(x);
        } else {
          return static_cast<T>(x);
        }
      },
      v.scalar);
}

void PutFixed(ByteSink& s, GgufType t, const GgufValue& v) {
  switch (t) {
    case GgufType::kU8: s.Put(ScalarAs<uint8_t>(v)); break;
    case GgufType::kI8: s.Put(ScalarAs<int8_t>(v)); break;
    case GgufType::kU16: s.Put(ScalarAs<uint16_t>(v)); break;
    case GgufType::kI16: s.Put(ScalarAs<int16_t>(v)); break;
    case GgufType::kU32: s.Put(ScalarAs<uint32_t>(v)); break;
    case GgufType::kI32: s.Put(ScalarAs<int32_t>(v)); break;
    case GgufType::kU64: s.Put(ScalarAs<uint64_t>(v)); break;
    case GgufType::kI64: s.Put(ScalarAs<int64_t>(v)); break;
    case GgufType::kF32: s.Put(ScalarAs<float>(v)); break;
    case GgufType::kF64: s.Put(ScalarAs<double>(v)); break;
    case GgufType::kBool: s.Put<uint8_t>(ScalarAs<bool>(v) ? 1 : 0); break;
    default: break;
  }
}

void PutArray(ByteSink& s, const GgufValue& v) {
  const GgufType et = v.array_type;
  s.Put<uint32_t>(static_cast<uint32_t>(et));
  if (et == GgufType::kArray || !IsValidType(static_cast<uint32_t>(et))) {
    s.Put<uint64_t>(0);  // nested / invalid: written empty (the reader rejects the type anyway)
    return;
  }
  const size_t n = v.array_size();
  s.Put<uint64_t>(n);
  for (size_t i = 0; i < n; ++i) {
    switch (et) {
      case GgufType::kU8: s.Put(static_cast<uint8_t>(v.arr_uint[i])); break;
      case GgufType::kU16: s.Put(static_cast<uint16_t>(v.arr_uint[i])); break;
      case GgufType::kU32: s.Put(static_cast<uint32_t>(v.arr_uint[i])); break;
      case GgufType::kU64: s.Put(v.arr_uint[i]); break;
      case GgufType::kI8: s.Put(static_cast<int8_t>(v.arr_int[i])); break;
      case GgufType::kI16: s.Put(static_cast<int16_t>(v.arr_int[i])); break;
      case GgufType::kI32: s.Put(static_cast<int32_t>(v.arr_int[i])); break;
      case GgufType::kI64: s.Put(v.arr_int[i]); break;
      case GgufType::kF32: s.Put(static_cast<float>(v.arr_float[i])); break;
      case GgufType::kF64: s.Put(v.arr_float[i]); break;
      case GgufType::kBool: s.Put<uint8_t>(v.arr_bool[i] ? 1 : 0); break;
      case GgufType::kString: s.PutString(v.string_at(i)); break;
      case GgufType::kArray: break;
    }
  }
}

template <typename T>
bool FitsUnsigned(uint64_t x) {
  return x <= std::numeric_limits<T>::max();
}
template <typename T>
bool FitsSigned(int64_t x) {
  return x >= std::numeric_limits<T>::min() && x <= std::numeric_limits<T>::max();
}
bool UnsignedFits(GgufType t, uint64_t x) {
  switch (t) {
    case GgufType::kU8: return FitsUnsigned<uint8_t>(x);
    case GgufType::kU16: return FitsUnsigned<uint16_t>(x);
    case GgufType::kU32: return FitsUnsigned<uint32_t>(x);
    default: return true;
  }
}
bool SignedFits(GgufType t, int64_t x) {
  switch (t) {
    case GgufType::kI8: return FitsSigned<int8_t>(x);
    case GgufType::kI16: return FitsSigned<int16_t>(x);
    case GgufType::kI32: return FitsSigned<int32_t>(x);
    default: return true;
  }
}

// Whether a hand-built value is consistent with its declared type.
Status CheckWriterValue(const std::string& key, const GgufValue& v) {
  const auto bad = [&](std::string_view why) {
    return InvalidArgument("key '{}' ({}): {}", GgufEscapeString(key, 80), TypeDescription(v), why);
  };
  if (!IsValidType(static_cast<uint32_t>(v.type))) return bad("invalid value type");
  if (v.type == GgufType::kArray) {
    const GgufType et = v.array_type;
    if (!IsValidType(static_cast<uint32_t>(et))) return bad("invalid array element type");
    if (et == GgufType::kArray) return bad("arrays of arrays are not supported");
    if (IsUnsigned(et)) {
      for (uint64_t x : v.arr_uint)
        if (!UnsignedFits(et, x)) return bad(fmt::format("element {} does not fit", x));
    } else if (IsSigned(et)) {
      for (int64_t x : v.arr_int)
        if (!SignedFits(et, x)) return bad(fmt::format("element {} does not fit", x));
    }
    return Status::Ok();
  }
  if (IsUnsigned(v.type)) {
    const auto* u = std::get_if<uint64_t>(&v.scalar);
    if (!u) return bad("value is not an unsigned integer");
    if (!UnsignedFits(v.type, *u)) return bad(fmt::format("value {} does not fit", *u));
  } else if (IsSigned(v.type)) {
    const auto* i = std::get_if<int64_t>(&v.scalar);
    if (!i) return bad("value is not a signed integer");
    if (!SignedFits(v.type, *i)) return bad(fmt::format("value {} does not fit", *i));
  } else if (IsFloat(v.type)) {
    if (!std::holds_alternative<double>(v.scalar)) return bad("value is not a float");
  } else if (v.type == GgufType::kBool) {
    if (!std::holds_alternative<bool>(v.scalar)) return bad("value is not a bool");
  } else if (v.type == GgufType::kString) {
    if (!std::holds_alternative<std::string>(v.scalar)) return bad("value is not a string");
  }
  return Status::Ok();
}

GgufValue MakeScalar(GgufType t, std::variant<uint64_t, int64_t, double, bool, std::string> x) {
  GgufValue v;
  v.type = t;
  v.scalar = std::move(x);
  return v;
}

}  // namespace

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
  if (alignment != kDefaultAlignment) SetU32(kAlignmentKey, alignment);
}

void GgufWriter::Set(const std::string& key, GgufValue v) {
  // Views into another file must not outlive it: take owned copies.
  if (!v.arr_string_view.empty()) {
    v.arr_string.assign(v.arr_string_view.begin(), v.arr_string_view.end());
    v.arr_string_view.clear();
  }
  if (key == kAlignmentKey && v.type == GgufType::kU32) {
    if (const auto* u = std::get_if<uint64_t>(&v.scalar)) alignment_ = static_cast<uint32_t>(*u);
  }
  for (auto& kv : kv_) {
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  }
  kv_.emplace_back(key, std::move(v));
}

void GgufWriter::SetU8(const std::string& key, uint8_t v) { Set(key, MakeScalar(GgufType::kU8, uint64_t{v})); }
void GgufWriter::SetI8(const std::string& key, int8_t v) { Set(key, MakeScalar(GgufType::kI8, int64_t{v})); }
void GgufWriter::SetU16(const std::string& key, uint16_t v) { Set(key, MakeScalar(GgufType::kU16, uint64_t{v})); }
void GgufWriter::SetI16(const std::string& key, int16_t v) { Set(key, MakeScalar(GgufType::kI16, int64_t{v})); }
void GgufWriter::SetU32(const std::string& key, uint32_t v) { Set(key, MakeScalar(GgufType::kU32, uint64_t{v})); }
void GgufWriter::SetI32(const std::string& key, int32_t v) { Set(key, MakeScalar(GgufType::kI32, int64_t{v})); }
void GgufWriter::SetU64(const std::string& key, uint64_t v) { Set(key, MakeScalar(GgufType::kU64, v)); }
void GgufWriter::SetI64(const std::string& key, int64_t v) { Set(key, MakeScalar(GgufType::kI64, v)); }
void GgufWriter::SetF32(const std::string& key, float v) { Set(key, MakeScalar(GgufType::kF32, double{v})); }
void GgufWriter::SetF64(const std::string& key, double v) { Set(key, MakeScalar(GgufType::kF64, v)); }
void GgufWriter::SetBool(const std::string& key, bool v) { Set(key, MakeScalar(GgufType::kBool, v)); }
void GgufWriter::SetString(const std::string& key, const std::string& v) {
  Set(key, MakeScalar(GgufType::kString, v));
}

void GgufWriter::SetStringArray(const std::string& key, const std::vector<std::string>& v) {
  GgufValue a;
  a.type = GgufType::kArray;
  a.array_type = GgufType::kString;
  a.arr_string = v;
  Set(key, std::move(a));
}
void GgufWriter::SetF32Array(const std::string& key, const std::vector<float>& v) {
  GgufValue a;
  a.type = GgufType::kArray;
  a.array_type = GgufType::kF32;
  a.arr_float.assign(v.begin(), v.end());
  Set(key, std::move(a));
}
void GgufWriter::SetI32Array(const std::string& key, const std::vector<int32_t>& v) {
  GgufValue a;
  a.type = GgufType::kArray;
  a.array_type = GgufType::kI32;
  a.arr_int.assign(v.begin(), v.end());
  Set(key, std::move(a));
}
void GgufWriter::SetU32Array(const std::string& key, const std::vector<uint32_t>& v) {
  GgufValue a;
  a.type = GgufType::kArray;
  a.array_type = GgufType::kU32;
  a.arr_uint.assign(v.begin(), v.end());
  Set(key, std::move(a));
}

Status GgufWriter::AddTensor(const std::string& name, DType dtype, std::vector<int64_t> ne,
                             std::vector<uint8_t> bytes) {
  GEMBED_RETURN_IF_ERROR([&]() -> Status {
    Status st = CheckName(name, kMaxTensorNameBytes, "tensor name");
    return st.ok() ? st : Status(StatusCode::kInvalidArgument, st.message());
  }());
  for (const PendingTensor& t : tensors_)
    if (t.name == name) return InvalidArgument("duplicate tensor name '{}'", name);
  if (!DTypeFromGgml(static_cast<uint32_t>(dtype)))
    return InvalidArgument("tensor '{}': unknown dtype {}", name, static_cast<uint32_t>(dtype));
  if (ne.empty() || ne.size() > static_cast<size_t>(kMaxDims))
    return InvalidArgument("tensor '{}': {} dims (must be 1..{})", name, ne.size(), kMaxDims);
  uint64_t elements = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] < 1) return InvalidArgument("tensor '{}': ne[{}] = {} (must be >= 1)", name, d, ne[d]);
    const auto n = static_cast<uint64_t>(ne[d]);
    if (elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / n)
      return InvalidArgument("tensor '{}': element count overflows", name);
    elements *= n;
  }
  if (ne[0] % DTypeBlockElems(dtype) != 0)
    return InvalidArgument("tensor '{}': row of {} elements is not a whole number of {} blocks",
                           name, ne[0], DTypeName(dtype));
  const std::optional<uint64_t> row = DTypeRowBytes(dtype, static_cast<uint64_t>(ne[0]));
  if (!row) return InvalidArgument("tensor '{}': byte size overflows", name);
  const uint64_t rows = elements / static_cast<uint64_t>(ne[0]);
  if (*row != 0 && rows > UINT64_MAX / *row)
    return InvalidArgument("tensor '{}': byte size overflows", name);
  if (bytes.size() != *row * rows)
    return InvalidArgument("tensor '{}': got {} bytes, {} {} needs {}", name, bytes.size(),
                           DTypeName(dtype), fmt::join(ne, "x"), *row * rows);
  tensors_.push_back({name, dtype, std::move(ne), std::move(bytes)});
  return Status::Ok();
}

uint32_t GgufWriter::LayoutAlignment() const {
  return IsPowerOfTwo(alignment_) ? alignment_ : kDefaultAlignment;
}

std::vector<uint8_t> GgufWriter::HeaderBytes() const {
  std::vector<uint8_t> out;
  ByteSink s(&out);
  const uint64_t align = LayoutAlignment();
  out.insert(out.end(), kMagic, kMagic + 4);
  s.Put<uint32_t>(kWriteVersion);
  s.Put<uint64_t>(tensors_.size());
  s.Put<uint64_t>(kv_.size());
  for (const auto& [key, v] : kv_) {
    s.PutString(key);
    s.Put<uint32_t>(static_cast<uint32_t>(v.type));
    if (v.type == GgufType::kArray) {
      PutArray(s, v);
    } else if (v.type == GgufType::kString) {
      const auto* str = std::get_if<std::string>(&v.scalar);
      s.PutString(str ? std::string_view(*str) : std::string_view());
    } else {
      PutFixed(s, v.type, v);
    }
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    s.PutString(t.name);
    s.Put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (int64_t n : t.ne) s.Put<uint64_t>(static_cast<uint64_t>(n));
    s.Put<uint32_t>(static_cast<uint32_t>(t.dtype));
    s.Put<uint64_t>(offset);
    offset += AlignUp(t.bytes.size(), align);
  }
  s.PadTo(align);
  return out;
}

std::vector<uint8_t> GgufWriter::ToBytes() const {
  std::vector<uint8_t> out = HeaderBytes();
  const uint64_t align = LayoutAlignment();
  size_t total = out.size();
  for (const PendingTensor& t : tensors_) total += AlignUp(t.bytes.size(), align);
  out.reserve(total);
  for (const PendingTensor& t : tensors_) {
    out.insert(out.end(), t.bytes.begin(), t.bytes.end());
    out.resize(AlignUp(out.size(), align), 0);
  }
  return out;
}

Status GgufWriter::ValidateMetadata() const {
  for (const auto& [key, v] : kv_) {
    Status st = CheckName(key, kMaxKeyBytes, "metadata key");
    if (!st.ok()) return Status(StatusCode::kInvalidArgument, st.message());
    GEMBED_RETURN_IF_ERROR(CheckWriterValue(key, v));
    st = CheckKnownKeyType(key, v);
    if (!st.ok()) return Status(StatusCode::kInvalidArgument, st.message());
  }
  if (!IsPowerOfTwo(alignment_))
    return InvalidArgument("alignment {} is not a non-zero power of two", alignment_);
  return Status::Ok();
}

Status GgufWriter::WriteFile(const std::string& path) const {
  GEMBED_RETURN_IF_ERROR(ValidateMetadata().WithContext(path));
  // A temporary file next to `path`, renamed over it once complete
  // (io/atomic_file.h: never through a symbolic link, never over a device).
  GEMBED_ASSIGN_OR_RETURN(AtomicFile f, AtomicFile::Create(path));
  const std::vector<uint8_t> header = HeaderBytes();
  GEMBED_RETURN_IF_ERROR(f.Write(header.data(), header.size()));
  // Tensors are streamed from their buffers rather than copied into one image.
  static constexpr uint8_t kZeros[256] = {};
  const uint64_t align = LayoutAlignment();
  for (const PendingTensor& t : tensors_) {
    if (!t.bytes.empty()) GEMBED_RETURN_IF_ERROR(f.Write(t.bytes.data(), t.bytes.size()));
    uint64_t pad = AlignUp(t.bytes.size(), align) - t.bytes.size();
    while (pad > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(pad, sizeof(kZeros)));
      GEMBED_RETURN_IF_ERROR(f.Write(kZeros, n));
      pad -= n;
    }
  }
  return f.Commit();
}

}  // namespace gembed
