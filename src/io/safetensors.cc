// safetensors reader, sharded-model loader and writer. See safetensors.h for
// the format and the rules enforced.
//
// JSON is parsed through nlohmann's SAX interface into a DOM built here
// (StrictJsonBuilder), so that the parser never throws, duplicate keys are
// caught (nlohmann's own DOM parser silently keeps the last one), and nesting
// is capped before anything deep is built.
#include "io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "io/atomic_file.h"
#include "io/mmap.h"

namespace gembed {

static_assert(std::endian::native == std::endian::little,
              "the safetensors reader/writer assumes a little-endian host");

namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kMetadataKey = "__metadata__";
// root object -> tensor object -> shape / data_offsets array.
constexpr size_t kHeaderMaxDepth = 3;
constexpr size_t kIndexMaxDepth = 8;
constexpr uint64_t kMaxIndexBytes = 64ull << 20;
constexpr const char* kIndexFileName = "model.safetensors.index.json";
constexpr const char* kSingleFileName = "model.safetensors";

struct DTypeInfo {
  SafetensorsDType t;
  std::string_view name;
  uint32_t bits;
};
constexpr DTypeInfo kDTypes[] = {
    {SafetensorsDType::kBool, "BOOL", 8},       {SafetensorsDType::kU8, "U8", 8},
    {SafetensorsDType::kI8, "I8", 8},           {SafetensorsDType::kF8_E5M2, "F8_E5M2", 8},
    {SafetensorsDType::kF8_E4M3, "F8_E4M3", 8}, {SafetensorsDType::kF8_E8M0, "F8_E8M0", 8},
    {SafetensorsDType::kI16, "I16", 16},        {SafetensorsDType::kU16, "U16", 16},
    {SafetensorsDType::kF16, "F16", 16},        {SafetensorsDType::kBF16, "BF16", 16},
    {SafetensorsDType::kI32, "I32", 32},        {SafetensorsDType::kU32, "U32", 32},
    {SafetensorsDType::kF32, "F32", 32},        {SafetensorsDType::kF64, "F64", 64},
    {SafetensorsDType::kI64, "I64", 64},        {SafetensorsDType::kU64, "U64", 64},
    {SafetensorsDType::kF4, "F4", 4},           {SafetensorsDType::kF6_E2M3, "F6_E2M3", 6},
    {SafetensorsDType::kF6_E3M2, "F6_E3M2", 6}, {SafetensorsDType::kC64, "C64", 64},
};

const DTypeInfo& Info(SafetensorsDType t) {
  for (const DTypeInfo& i : kDTypes)
    if (i.t == t) return i;
  return kDTypes[0];  // unreachable for valid enum values
}

// Renders untrusted bytes for an error message: printable ASCII kept, the
// rest as \xNN, at most `max_chars` input bytes.
std::string Printable(std::string_view s, size_t max_chars = 80) {
  std::string out;
  const size_t n = std::min(s.size(), max_chars);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (s.size() > n) out += "...";
  return out;
}

// Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// SAX handler that builds a nlohmann DOM, rejecting duplicate keys and
// nesting deeper than max_depth (the root container is depth 1). Pointers on
// the stack stay valid: a container is only appended to while it is the
// innermost open one, so no open container's storage moves.
class StrictJsonBuilder {
 public:
  explicit StrictJsonBuilder(size_t max_depth) : max_depth_(max_depth) {}

  Json& root() { return root_; }
  const std::string& error() const { return error_; }

  bool null() { return Put(Json(nullptr)); }
  bool boolean(bool v) { return Put(Json(v)); }
  bool number_integer(Json::number_integer_t v) { return Put(Json(v)); }
  bool number_unsigned(Json::number_unsigned_t v) { return Put(Json(v)); }
  bool number_float(Json::number_float_t v, const Json::string_t&) { return Put(Json(v)); }
  bool string(Json::string_t& v) { return Put(Json(std::move(v))); }
  bool binary(Json::binary_t&) {
    error_ = "binary values are not JSON";
    return false;
  }
  bool start_object(std::size_t) { return Open(Json::object()); }
  bool start_array(std::size_t) { return Open(Json::array()); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }
  bool key(Json::string_t& k) {
    Json* obj = stack_.back().node;
    if (obj->contains(k)) {
      error_ = fmt::format("key \"{}\" appears twice in {}", Printable(k), Where());
      return false;
    }
    key_ = std::move(k);
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    // e.what() names line/column and what was expected; strip nothing.
    error_ = fmt::format("malformed JSON at byte {}: {}", position, Printable(e.what(), 240));
    return false;
  }

 private:
  struct Open_ {
    Json* node;
    std::string name;  // key under which the container sits ("" for the root / array items)
  };

  std::string Where() const {
    if (stack_.size() <= 1) return "the top-level object";
    return fmt::format("\"{}\"", Printable(stack_.back().name));
  }

  // Inserts v into the innermost open container (or makes it the root).
  Json* Insert(Json v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Json* top = stack_.back().node;
    if (top->is_array()) {
      top->push_back(std::move(v));
      return &top->back();
    }
    auto it = top->emplace(key_, std::move(v)).first;
    return &it.value();
  }
  bool Put(Json v) {
    Insert(std::move(v));
    return true;
  }
  bool Open(Json container) {
    if (stack_.size() >= max_depth_) {
      error_ = fmt::format("JSON nesting deeper than {} levels", max_depth_);
      return false;
    }
    std::string name = (!stack_.empty() && stack_.back().node->is_object()) ? key_ : "";
    Json* node = Insert(std::move(container));
    stack_.push_back({node, std::move(name)});
    return true;
  }
  bool Close() {
    stack_.pop_back();
    return true;
  }

  size_t max_depth_;
  Json root_;
  std::vector<Open_> stack_;
  std::string key_;
  std::string error_;
};

// Parses text as one JSON value (trailing whitespace allowed).
Result<Json> ParseStrictJson(std::string_view text, size_t max_depth) {
  // nlohmann's lexer takes a NUL byte for the end of input and would ignore
  // whatever follows it; JSON text never holds a raw NUL, so reject it here.
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos)
    return CorruptFile("malformed JSON at byte {}: NUL byte", nul);
  StrictJsonBuilder b(max_depth);
  const bool ok = Json::sax_parse(text.data(), text.data() + text.size(), &b,
                                  nlohmann::detail::input_format_t::json, /*strict=*/true,
                                  /*ignore_comments=*/false);
  if (!ok) return CorruptFile("{}", b.error().empty() ? "malformed JSON" : b.error());
  return std::move(b.root());
}

const char* JsonTypeName(const Json& j) {
  if (j.is_number_unsigned()) return "non-negative integer";
  if (j.is_number_integer()) return "negative integer";
  return j.type_name();  // "object", "array", "string", "number", "boolean", "null"
}

// a * b for non-negative values, nullopt on overflow.
std::optional<uint64_t> MulU64(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return s + "]";
}

// Element count of a shape (1 for a scalar, 0 if any dim is 0), nullopt on int64 overflow.
std::optional<int64_t> ElementCount(const std::vector<int64_t>& shape) {
  for (int64_t d : shape)
    if (d == 0) return 0;
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n)) return std::nullopt;
  return n;
}

// Bytes of `elements` values of `t`; error if it overflows or is not a whole number of bytes.
Result<uint64_t> ByteSize(SafetensorsDType t, int64_t elements) {
  const auto bits = MulU64(static_cast<uint64_t>(elements), Info(t).bits);
  if (!bits) return CorruptFile("{} elements of {} overflow a 64-bit byte size", elements, Info(t).name);
  if (*bits % 8 != 0)
    return CorruptFile("{} elements of {} ({} bits each) are not a whole number of bytes", elements,
                       Info(t).name, Info(t).bits);
  return *bits / 8;
}

// Reads a JSON array of non-negative integers that fit int64.
Status ReadUintArray(const Json& a, const std::string& tensor, const char* field,
                     std::vector<uint64_t>* out) {
  if (!a.is_array())
    return CorruptFile("tensor \"{}\": \"{}\" is a {}, expected an array", Printable(tensor), field,
                       JsonTypeName(a));
  if (a.size() > kSafetensorsMaxRank)
    return Unsupported("tensor \"{}\": \"{}\" has {} entries (at most {} supported)", Printable(tensor),
                       field, a.size(), kSafetensorsMaxRank);
  for (const Json& v : a) {
    if (!v.is_number_unsigned())
      return CorruptFile("tensor \"{}\": \"{}\" holds a {}, expected non-negative integers",
                         Printable(tensor), field, JsonTypeName(v));
    const uint64_t x = v.get<uint64_t>();
    if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return CorruptFile("tensor \"{}\": \"{}\" value {} is too large", Printable(tensor), field, x);
    out->push_back(x);
  }
  return Status::Ok();
}

Result<SafetensorsTensorInfo> ParseTensorEntry(const std::string& name, const Json& e,
                                               uint64_t data_size) {
  SafetensorsTensorInfo t;
  t.name = name;
  const std::string pname = Printable(name);
  if (!e.is_object())
    return CorruptFile("tensor \"{}\": entry is a {}, expected an object", pname, JsonTypeName(e));
  const auto dt = e.find("dtype");
  const auto sh = e.find("shape");
  const auto off = e.find("data_offsets");
  if (dt == e.end()) return CorruptFile("tensor \"{}\": missing \"dtype\"", pname);
  if (sh == e.end()) return CorruptFile("tensor \"{}\": missing \"shape\"", pname);
  if (off == e.end()) return CorruptFile("tensor \"{}\": missing \"data_offsets\"", pname);
  // Other fields are ignored (forward compatibility); the depth cap keeps
  // them scalars or flat arrays.

  if (!dt->is_string())
    return CorruptFile("tensor \"{}\": \"dtype\" is a {}, expected a string", pname, JsonTypeName(*dt));
  const std::string& dname = dt->get_ref<const std::string&>();
  const auto dtype = SafetensorsDTypeFromName(dname);
  if (!dtype) return Unsupported("tensor \"{}\": unknown dtype \"{}\"", pname, Printable(dname));
  t.dtype = *dtype;

  std::vector<uint64_t> dims;
  // A negative dimension parses as a signed integer: name it explicitly.
  if (sh->is_array())
    for (const Json& v : *sh)
      if (v.is_number_integer() && !v.is_number_unsigned())
        return CorruptFile("tensor \"{}\": negative dimension {} in \"shape\"", pname,
                           v.get<int64_t>());
  GEMBED_RETURN_IF_ERROR(ReadUintArray(*sh, name, "shape", &dims));
  t.shape.assign(dims.begin(), dims.end());

  if (off->is_array() && off->size() != 2)
    return CorruptFile("tensor \"{}\": \"data_offsets\" has {} entries, expected 2 [begin, end]",
                       pname, off->size());
  std::vector<uint64_t> offs;
  GEMBED_RETURN_IF_ERROR(ReadUintArray(*off, name, "data_offsets", &offs));
  t.begin = offs[0];
  t.end = offs[1];
  if (t.end < t.begin)
    return CorruptFile("tensor \"{}\": data_offsets end {} is before begin {}", pname, t.end, t.begin);
  if (t.end > data_size)
    return CorruptFile("tensor \"{}\": data_offsets [{}, {}] run past the data section ({} bytes)",
                       pname, t.begin, t.end, data_size);

  const auto count = ElementCount(t.shape);
  if (!count)
    return CorruptFile("tensor \"{}\": shape {} has more elements than fit in 64 bits", pname,
                       ShapeString(t.shape));
  t.elements = *count;
  auto bytes = ByteSize(t.dtype, t.elements);
  if (!bytes.ok()) return bytes.status().WithContext(fmt::format("tensor \"{}\"", pname));
  if (*bytes != t.end - t.begin)
    return CorruptFile("tensor \"{}\": data_offsets [{}, {}] hold {} bytes, but {} {} needs {}", pname,
                       t.begin, t.end, t.end - t.begin, Info(t.dtype).name, ShapeString(t.shape),
                       *bytes);
  return t;
}

}  // namespace

// ---------------------------------------------------------------------------
// dtypes

std::string_view SafetensorsDTypeName(SafetensorsDType t) { return Info(t).name; }

std::optional<SafetensorsDType> SafetensorsDTypeFromName(std::string_view name) {
  for (const DTypeInfo& i : kDTypes)
    if (i.name == name) return i.t;
  return std::nullopt;
}

uint32_t SafetensorsDTypeBits(SafetensorsDType t) { return Info(t).bits; }

std::optional<DType> SafetensorsToDType(SafetensorsDType t) {
  switch (t) {
    case SafetensorsDType::kF32: return DType::kF32;
    case SafetensorsDType::kF16: return DType::kF16;
    case SafetensorsDType::kBF16: return DType::kBF16;
    case SafetensorsDType::kF64: return DType::kF64;
    case SafetensorsDType::kI8: return DType::kI8;
    case SafetensorsDType::kI16: return DType::kI16;
    case SafetensorsDType::kI32: return DType::kI32;
    default: return std::nullopt;
  }
}

bool SafetensorsDTypeIsComputable(SafetensorsDType t) {
  return t == SafetensorsDType::kF32 || t == SafetensorsDType::kF16 || t == SafetensorsDType::kBF16;
}

// ---------------------------------------------------------------------------
// SafetensorsFile

SafetensorsFile::~SafetensorsFile() = default;

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  GEMBED_ASSIGN_OR_RETURN(auto map, MappedFile::Open(path));
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->base_ = map->data();
  f->size_ = map->size();
  f->map_ = std::move(map);
  f->path_ = path;
  Status st = f->Parse();
  if (!st.ok()) return st.WithContext(path);
  return f;
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBytes(const uint8_t* data, size_t size) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->base_ = data;
  f->size_ = size;
  GEMBED_RETURN_IF_ERROR(f->Parse());
  return f;
}

Status SafetensorsFile::Parse() {
  if (size_ < 8)
    return CorruptFile("file is {} bytes, too short for the 8-byte header length", size_);
  uint64_t n;
  std::memcpy(&n, base_, 8);
  if (n > kSafetensorsMaxHeaderBytes)
    return CorruptFile("header length {} exceeds the limit of {} bytes", n, kSafetensorsMaxHeaderBytes);
  if (n > size_ - 8)
    return CorruptFile("header length {} exceeds the {} bytes that follow it (truncated file?)", n,
                       size_ - 8);
  if (n == 0) return CorruptFile("empty header");
  header_bytes_ = n;
  const std::string_view text(reinterpret_cast<const char*>(base_ + 8), n);
  if (text[0] != '{') return CorruptFile("header does not start with '{{'");

  auto parsed = ParseStrictJson(text, kHeaderMaxDepth);
  if (!parsed.ok()) return parsed.status().WithContext("header");
  const Json& root = *parsed;
  if (!root.is_object()) return CorruptFile("header is a JSON {}, expected an object", JsonTypeName(root));

  const uint64_t data_size = size_ - data_offset();
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() == kMetadataKey) {
      const Json& m = it.value();
      if (!m.is_object())
        return CorruptFile("\"__metadata__\" is a {}, expected an object of strings", JsonTypeName(m));
      for (auto mi = m.begin(); mi != m.end(); ++mi) {
        if (!mi.value().is_string())
          return CorruptFile("\"__metadata__\" entry \"{}\" is a {}, expected a string",
                             Printable(mi.key()), JsonTypeName(mi.value()));
        metadata_.emplace(mi.key(), mi.value().get<std::string>());
      }
      continue;
    }
    GEMBED_ASSIGN_OR_RETURN(SafetensorsTensorInfo t, ParseTensorEntry(it.key(), it.value(), data_size));
    tensors_.push_back(std::move(t));
  }

  // Data order; then the tensors must tile [0, data_size) exactly.
  std::sort(tensors_.begin(), tensors_.end(), [](const auto& a, const auto& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t covered = 0;
  const SafetensorsTensorInfo* prev = nullptr;  // last tensor with bytes
  for (const SafetensorsTensorInfo& t : tensors_) {
    if (t.begin < covered)
      return CorruptFile("tensor \"{}\" [{}, {}] overlaps tensor \"{}\" [{}, {}]", Printable(t.name),
                         t.begin, t.end, Printable(prev->name), prev->begin, prev->end);
    if (t.begin > covered)
      return CorruptFile("data section bytes [{}, {}) belong to no tensor (holes are not allowed)",
                         covered, t.begin);
    if (t.end > t.begin) prev = &t;
    covered = t.end;
  }
  if (covered != data_size)
    return CorruptFile("data section has {} bytes after the last tensor (tensors cover {} of {})",
                       data_size - covered, covered, data_size);

  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  return Status::Ok();
}

const SafetensorsTensorInfo* SafetensorsFile::FindTensor(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const uint8_t> SafetensorsFile::Bytes(const SafetensorsTensorInfo& info) const {
  return {base_ + data_offset() + info.begin, static_cast<size_t>(info.nbytes())};
}

Result<TensorView> SafetensorsFile::View(const SafetensorsTensorInfo& info) const {
  if (!SafetensorsDTypeIsComputable(info.dtype))
    return Unsupported("tensor \"{}\" has dtype {}, unsupported for compute (gembed computes with F32, "
                       "F16, BF16)",
                       Printable(info.name), SafetensorsDTypeName(info.dtype));
  if (info.shape.size() > static_cast<size_t>(kMaxDims))
    return Unsupported("tensor \"{}\" has rank {}, gembed views hold at most {} dims",
                       Printable(info.name), info.shape.size(), kMaxDims);
  TensorView v;
  v.dtype = *SafetensorsToDType(info.dtype);
  v.n_dims = static_cast<int>(info.shape.size());
  // PyTorch order (outermost first) -> ggml order (innermost first).
  for (int i = 0; i < v.n_dims; ++i) v.ne[i] = info.shape[info.shape.size() - 1 - i];
  v.data = base_ + data_offset() + info.begin;
  v.nbytes = info.nbytes();
  return v;
}

// ---------------------------------------------------------------------------
// SafetensorsModel

namespace {

// A shard name from weight_map: relative, no "..", not empty.
Status CheckShardName(const std::string& shard) {
  if (shard.empty()) return CorruptFile("weight_map names an empty shard file");
  if (shard.find('\0') != std::string::npos)
    return CorruptFile("shard name \"{}\" contains a NUL byte", Printable(shard));
  const fs::path p(shard);
  if (p.is_absolute() || p.has_root_name() || p.has_root_directory())
    return CorruptFile("shard name \"{}\" is an absolute path; shards must be inside the model folder",
                       Printable(shard));
  for (const fs::path& part : p)
    if (part == "..")
      return CorruptFile("shard name \"{}\" leaves the model folder (\"..\")", Printable(shard));
  return Status::Ok();
}

Result<std::string> ReadSmallFile(const std::string& path, uint64_t limit) {
  GEMBED_ASSIGN_OR_RETURN(auto map, MappedFile::Open(path));
  if (map->size() > limit)
    return CorruptFile("{}: {} bytes, larger than the {} bytes allowed", path, map->size(), limit);
  return std::string(reinterpret_cast<const char*>(map->data()), map->size());
}

}  // namespace

Status SafetensorsModel::AddShard(std::unique_ptr<SafetensorsFile> f) {
  shards_.push_back(std::move(f));
  return Status::Ok();
}

void SafetensorsModel::Finish() {
  tensors_.clear();
  index_.clear();
  for (const auto& s : shards_)
    for (const SafetensorsTensorInfo& t : s->tensors()) tensors_.push_back({s.get(), &t});
  std::sort(tensors_.begin(), tensors_.end(),
            [](const Entry& a, const Entry& b) { return a.info->name < b.info->name; });
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].info->name, i);
}

Result<std::unique_ptr<SafetensorsModel>> SafetensorsModel::Open(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return NotFound("{}: no such file or folder", path);

  std::string index_path;
  std::string file_path;
  if (fs::is_directory(st)) {
    const fs::path dir(path);
    if (fs::exists(dir / kIndexFileName, ec)) {
      index_path = (dir / kIndexFileName).string();
    } else if (fs::exists(dir / kSingleFileName, ec)) {
      file_path = (dir / kSingleFileName).string();
    } else {
      return NotFound("{}: folder has neither {} nor {}", path, kIndexFileName, kSingleFileName);
    }
  } else if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
    index_path = path;
  } else {
    file_path = path;
  }

  std::unique_ptr<SafetensorsModel> m(new SafetensorsModel());
  if (!file_path.empty()) {
    GEMBED_ASSIGN_OR_RETURN(auto f, SafetensorsFile::Open(file_path));
    GEMBED_RETURN_IF_ERROR(m->AddShard(std::move(f)));
    m->Finish();
    return m;
  }

  // Sharded: parse the index.
  GEMBED_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(index_path, kMaxIndexBytes));
  auto parsed = ParseStrictJson(text, kIndexMaxDepth);
  if (!parsed.ok()) return parsed.status().WithContext(index_path);
  const Json& root = *parsed;
  const auto bad = [&](Status s) { return s.WithContext(index_path); };
  if (!root.is_object())
    return bad(CorruptFile("index is a JSON {}, expected an object", JsonTypeName(root)));
  const auto wm = root.find("weight_map");
  if (wm == root.end()) return bad(CorruptFile("index has no \"weight_map\""));
  if (!wm->is_object())
    return bad(CorruptFile("\"weight_map\" is a {}, expected an object", JsonTypeName(*wm)));
  if (const auto md = root.find("metadata"); md != root.end()) {
    if (!md->is_object())
      return bad(CorruptFile("\"metadata\" is a {}, expected an object", JsonTypeName(*md)));
    for (auto it = md->begin(); it != md->end(); ++it)
      m->index_metadata_.emplace(it.key(),
                                 it.value().dump(-1, ' ', false, Json::error_handler_t::replace));
  }

  // tensor -> normalised shard name; shard name -> index in shards_.
  std::map<std::string, std::string, std::less<>> listed;
  std::map<std::string, size_t, std::less<>> shard_ids;
  const fs::path dir = fs::path(index_path).parent_path();
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string())
      return bad(CorruptFile("weight_map entry \"{}\" is a {}, expected a shard file name",
                             Printable(it.key()), JsonTypeName(it.value())));
    const std::string& shard = it.value().get_ref<const std::string&>();
    GEMBED_RETURN_IF_ERROR(bad(CheckShardName(shard)));
    const std::string norm = fs::path(shard).lexically_normal().string();
    listed.emplace(it.key(), norm);
    if (!shard_ids.count(norm)) {
      // Each shard is mapped once, however many tensors it holds.
      auto f = SafetensorsFile::Open((dir / norm).string());
      if (!f.ok())
        return f.status().WithContext(fmt::format("{}: shard \"{}\"", index_path, Printable(shard)));
      shard_ids.emplace(norm, m->shards_.size());
      GEMBED_RETURN_IF_ERROR(m->AddShard(std::move(f).value()));
    }
  }

  // Index and shards must agree exactly.
  for (const auto& [tensor, shard] : listed) {
    const SafetensorsFile& f = *m->shards_[shard_ids.at(shard)];
    if (!f.FindTensor(tensor))
      return bad(CorruptFile("tensor \"{}\" listed in weight_map is missing from shard \"{}\"",
                             Printable(tensor), Printable(shard)));
  }
  for (const auto& [shard, id] : shard_ids) {
    for (const SafetensorsTensorInfo& t : m->shards_[id]->tensors()) {
      const auto l = listed.find(t.name);
      if (l == listed.end())
        return bad(CorruptFile("tensor \"{}\" in shard \"{}\" is not listed in weight_map",
                               Printable(t.name), Printable(shard)));
      if (l->second != shard)
        return bad(CorruptFile("tensor \"{}\" is in shard \"{}\" but weight_map places it in \"{}\"",
                               Printable(t.name), Printable(shard), Printable(l->second)));
    }
  }
  m->Finish();
  return m;
}

const SafetensorsModel::Entry* SafetensorsModel::Find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Result<TensorView> SafetensorsModel::View(std::string_view name) const {
  const Entry* e = Find(name);
  if (!e) return NotFound("no tensor \"{}\" in the model", Printable(name));
  return e->file->View(*e->info);
}

// ---------------------------------------------------------------------------
// SafetensorsWriter

Status SafetensorsWriter::SetMetadata(const std::string& key, const std::string& value) {
  if (!IsValidUtf8(key) || !IsValidUtf8(value))
    return InvalidArgument("metadata \"{}\": key and value must be valid UTF-8", Printable(key));
  metadata_[key] = value;
  return Status::Ok();
}

Status SafetensorsWriter::AddTensor(const std::string& name, SafetensorsDType dtype,
                                    std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
  if (name == kMetadataKey) return InvalidArgument("tensor name \"__metadata__\" is reserved");
  if (!IsValidUtf8(name)) return InvalidArgument("tensor name \"{}\" is not valid UTF-8", Printable(name));
  for (const Pending& p : tensors_)
    if (p.name == name) return InvalidArgument("tensor \"{}\" added twice", Printable(name));
  if (shape.size() > kSafetensorsMaxRank)
    return InvalidArgument("tensor \"{}\": rank {} > {}", Printable(name), shape.size(), kSafetensorsMaxRank);
  for (int64_t d : shape)
    if (d < 0) return InvalidArgument("tensor \"{}\": negative dimension {}", Printable(name), d);
  const auto count = ElementCount(shape);
  if (!count) return InvalidArgument("tensor \"{}\": element count overflows", Printable(name));
  auto need = ByteSize(dtype, *count);
  if (!need.ok()) return InvalidArgument("tensor \"{}\": {}", Printable(name), need.status().message());
  if (*need != bytes.size())
    return InvalidArgument("tensor \"{}\": {} bytes given, {} {} needs {}", Printable(name), bytes.size(),
                           SafetensorsDTypeName(dtype), ShapeString(shape), *need);
  tensors_.push_back({name, dtype, std::move(shape), std::move(bytes)});
  return Status::Ok();
}

std::vector<uint8_t> SafetensorsWriter::ToBytes() const {
  std::vector<const Pending*> order;
  for (const Pending& p : tensors_) order.push_back(&p);
  std::sort(order.begin(), order.end(), [](const Pending* a, const Pending* b) {
    const uint32_t ba = Info(a->dtype).bits, bb = Info(b->dtype).bits;
    return ba != bb ? ba > bb : a->name < b->name;
  });

  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata_.empty()) {
    nlohmann::ordered_json md = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata_) md[k] = v;
    h[kMetadataKey] = std::move(md);
  }
  uint64_t offset = 0;
  for (const Pending* p : order) {
    nlohmann::ordered_json e = nlohmann::ordered_json::object();
    e["dtype"] = std::string(SafetensorsDTypeName(p->dtype));
    e["shape"] = p->shape;
    e["data_offsets"] = {offset, offset + p->bytes.size()};
    offset += p->bytes.size();
    h[p->name] = std::move(e);
  }
  std::string text = h.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');

  const uint64_t n = text.size();
  std::vector<uint8_t> out(8 + n + offset);
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, text.data(), n);
  uint8_t* dst = out.data() + 8 + n;
  for (const Pending* p : order) {
    if (!p->bytes.empty()) std::memcpy(dst, p->bytes.data(), p->bytes.size());
    dst += p->bytes.size();
  }
  return out;
}

Status SafetensorsWriter::WriteFile(const std::string& path) const {
  const std::vector<uint8_t> bytes = ToBytes();
  // io/atomic_file.h: a temporary file next to `path`, renamed over it.
  return WriteFileAtomically(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace gembed
