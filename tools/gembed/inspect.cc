// gembed inspect FILE.gguf|FILE.safetensors|INDEX.json|FOLDER [--json] [--all]
//
// Prints a GGUF file's version, alignment, metadata, tensor table and totals,
// as text (default) or one JSON object (--json). Without --all, long arrays
// are summarised (text: first few elements; JSON: first 16 elements plus the
// length) and long strings are truncated for display; --all prints everything.
// Keys and tensor names are escaped like string values in the text output.
// A broken or missing file prints "gembed inspect: <file>: <reason>" on
// stderr and exits with status 1.
//
// JSON shape:
//   {"file", "version", "alignment", "data_offset", "file_size",
//    "metadata": {key: {"type", "value"} | {"type": "array", "elem_type",
//                 "length", "values", "truncated"}},       (file order)
//    "tensors": [{"name", "type", "ggml_type", "shape", "offset", "nbytes"}],
//    "totals": {"tensors", "parameters", "tensor_bytes", "file_size",
//               "by_type": {TYPE: {"tensors", "parameters", "bytes"}}}}
// Strings are emitted as JSON strings; bytes that are not UTF-8 become U+FFFD.
// f32/f64 values that are NaN or infinite become null (JSON has no such numbers).
// "shape" is in GGUF order (ne[0], the contiguous dimension, first).
//
// safetensors: a path ending in .safetensors, a model.safetensors.index.json
// or a folder holding either (io/safetensors.h, SafetensorsModel) is shown
// instead as: shards (file, header bytes, data offset, size, __metadata__),
// the index metadata, the tensor table (sorted by name) and totals. JSON shape:
//   {"file", "format": "safetensors",
//    "shards": [{"file", "header_bytes", "data_offset", "file_size", "metadata"}],
//    "index_metadata": {key: JSON text},
//    "tensors": [{"name", "type", "shape", "ne", "shard", "offset", "nbytes"}],
//    "totals": {"tensors", "parameters", "tensor_bytes", "by_type"}}
// Here "shape" is the file's own PyTorch order (outermost first), "ne" the
// same dims reversed into ggml order, "shard" an index into "shards" and
// "offset" the absolute file offset of the tensor's bytes.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/dtype.h"
#include "commands.h"
#include "io/gguf.h"
#include "io/safetensors.h"

namespace gembed::cli {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kJsonArrayPreview = 16;    // elements shown without --all
constexpr size_t kTextArrayPreview = 6;     // numbers shown without --all
constexpr size_t kTextStringsPreview = 4;   // strings shown without --all
constexpr size_t kTextStringChars = 64;     // characters of a string value without --all
constexpr size_t kTextElemChars = 24;       // characters of an array string element without --all

struct Options {
  std::string path;
  bool json = false;
  bool all = false;
};

// "1.5 MiB"-style size for humans.
std::string HumanBytes(uint64_t n) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.2f} {}", v, kUnits[u]);
}

std::string ShapeText(const GgufTensorInfo& t) {
  std::string s;
  for (int d = 0; d < t.n_dims; ++d) s += (d ? " x " : "") + std::to_string(t.ne[d]);
  return s;
}

// Floats print in their shortest round-trip form of the stored precision.
std::string FloatText(GgufType t, double x) {
  if (t == GgufType::kF32) return fmt::format("{}", static_cast<float>(x));
  return fmt::format("{}", x);
}

std::string ScalarText(const GgufValue& v, bool all) {
  switch (v.type) {
    case GgufType::kString:
      return "\"" + GgufEscapeString(std::get<std::string>(v.scalar), all ? SIZE_MAX : kTextStringChars) +
             "\"";
    case GgufType::kBool: return std::get<bool>(v.scalar) ? "true" : "false";
    case GgufType::kF32:
    case GgufType::kF64: return FloatText(v.type, std::get<double>(v.scalar));
    default:
      return std::visit(
          [](const auto& x) -> std::string {
            if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::string>) {
              return x;
            } else {
              return fmt::format("{}", x);
            }
          },
          v.scalar);
  }
}

std::string ElementText(const GgufValue& v, size_t i, bool all) {
  const GgufType t = v.array_type;
  switch (t) {
    case GgufType::kString:
      return "\"" + GgufEscapeString(v.string_at(i), all ? SIZE_MAX : kTextElemChars) + "\"";
    case GgufType::kBool: return v.arr_bool[i] ? "true" : "false";
    case GgufType::kF32:
    case GgufType::kF64: return FloatText(t, v.arr_float[i]);
    case GgufType::kI8: case GgufType::kI16: case GgufType::kI32: case GgufType::kI64:
      return std::to_string(v.arr_int[i]);
    default: return std::to_string(v.arr_uint[i]);
  }
}

// [262144 strings: "<pad>", "<eos>", ...]
std::string ArrayText(const GgufValue& v, bool all) {
  const size_t n = v.array_size();
  const size_t shown =
      all ? n : std::min(n, v.array_type == GgufType::kString ? kTextStringsPreview : kTextArrayPreview);
  std::string s = fmt::format("[{} {}", n,
                               v.array_type == GgufType::kString ? "strings" : GgufTypeName(v.array_type));
  for (size_t i = 0; i < shown; ++i) s += (i ? ", " : ": ") + ElementText(v, i, all);
  if (shown < n) s += shown ? ", ...]" : ": ...]";
  else s += "]";
  return s;
}

Json FloatJson(double x) { return std::isfinite(x) ? Json(x) : Json(nullptr); }

Json ValueJson(const GgufValue& v, bool all) {
  Json j;
  j["type"] = std::string(GgufTypeName(v.type));
  if (v.type != GgufType::kArray) {
    switch (v.type) {
      case GgufType::kString: j["value"] = std::get<std::string>(v.scalar); break;
      case GgufType::kBool: j["value"] = std::get<bool>(v.scalar); break;
      case GgufType::kF32:
      case GgufType::kF64: j["value"] = FloatJson(std::get<double>(v.scalar)); break;
      case GgufType::kI8: case GgufType::kI16: case GgufType::kI32: case GgufType::kI64:
        j["value"] = std::get<int64_t>(v.scalar);
        break;
      default: j["value"] = std::get<uint64_t>(v.scalar); break;
    }
    return j;
  }
  const size_t n = v.array_size();
  const size_t shown = all ? n : std::min(n, kJsonArrayPreview);
  j["elem_type"] = std::string(GgufTypeName(v.array_type));
  j["length"] = n;
  Json values = Json::array();
  for (size_t i = 0; i < shown; ++i) {
    switch (v.array_type) {
      case GgufType::kString: values.push_back(std::string(v.string_at(i))); break;
      case GgufType::kBool: values.push_back(static_cast<bool>(v.arr_bool[i])); break;
      case GgufType::kF32: case GgufType::kF64: values.push_back(FloatJson(v.arr_float[i])); break;
      case GgufType::kI8: case GgufType::kI16: case GgufType::kI32: case GgufType::kI64:
        values.push_back(v.arr_int[i]);
        break;
      default: values.push_back(v.arr_uint[i]); break;
    }
  }
  j["values"] = std::move(values);
  j["truncated"] = shown < n;
  return j;
}

struct TypeTotals {
  uint64_t tensors = 0;
  uint64_t parameters = 0;
  uint64_t bytes = 0;
};

struct Totals {
  uint64_t parameters = 0;
  uint64_t bytes = 0;
  std::map<std::string, TypeTotals> by_type;  // sorted by type name
};

Totals ComputeTotals(const GgufFile& f) {
  Totals t;
  for (const GgufTensorInfo& info : f.tensors()) {
    const auto params = static_cast<uint64_t>(info.elements());
    t.parameters += params;
    t.bytes += info.nbytes;
    TypeTotals& tt = t.by_type[std::string(DTypeName(info.dtype))];
    tt.tensors += 1;
    tt.parameters += params;
    tt.bytes += info.nbytes;
  }
  return t;
}

int PrintJson(const Options& o, const GgufFile& f) {
  Json j;
  j["file"] = o.path;
  j["version"] = f.version();
  j["alignment"] = f.alignment();
  j["data_offset"] = f.data_offset();
  j["file_size"] = f.file_size();
  Json md = Json::object();
  for (const auto& [key, v] : f.metadata()) md[key] = ValueJson(v, o.all);
  j["metadata"] = std::move(md);
  Json ts = Json::array();
  for (const GgufTensorInfo& t : f.tensors()) {
    Json shape = Json::array();
    for (int d = 0; d < t.n_dims; ++d) shape.push_back(t.ne[d]);
    ts.push_back({{"name", t.name},
                  {"type", std::string(DTypeName(t.dtype))},
                  {"ggml_type", static_cast<uint32_t>(t.dtype)},
                  {"shape", std::move(shape)},
                  {"offset", t.offset},
                  {"nbytes", t.nbytes}});
  }
  j["tensors"] = std::move(ts);
  const Totals tot = ComputeTotals(f);
  Json by_type = Json::object();
  for (const auto& [name, tt] : tot.by_type)
    by_type[name] = {{"tensors", tt.tensors}, {"parameters", tt.parameters}, {"bytes", tt.bytes}};
  j["totals"] = {{"tensors", f.tensors().size()},
                 {"parameters", tot.parameters},
                 {"tensor_bytes", tot.bytes},
                 {"file_size", f.file_size()},
                 {"by_type", std::move(by_type)}};
  const std::string s = j.dump(1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}

int PrintText(const Options& o, const GgufFile& f) {
  fmt::print("file:        {}\n", o.path);
  fmt::print("version:     {}\n", f.version());
  fmt::print("alignment:   {}\n", f.alignment());
  fmt::print("data offset: {}\n", f.data_offset());
  fmt::print("file size:   {} ({})\n", f.file_size(), HumanBytes(f.file_size()));

  size_t key_width = 0;
  for (const auto& kv : f.metadata()) key_width = std::max(key_width, kv.first.size());
  key_width = std::min<size_t>(key_width, 48);
  fmt::print("\nmetadata ({} keys):\n", f.metadata().size());
  for (const auto& [key, v] : f.metadata()) {
    const std::string type = v.type == GgufType::kArray
                                 ? fmt::format("{}[{}]", GgufTypeName(v.array_type), v.array_size())
                                 : std::string(GgufTypeName(v.type));
    const std::string value = v.type == GgufType::kArray ? ArrayText(v, o.all) : ScalarText(v, o.all);
    fmt::print("  {:<{}}  {:<14} {}\n", GgufEscapeString(key), key_width, type, value);
  }

  size_t name_width = 4;
  for (const GgufTensorInfo& t : f.tensors()) name_width = std::max(name_width, t.name.size());
  fmt::print("\ntensors ({}):\n", f.tensors().size());
  if (!f.tensors().empty()) {
    fmt::print("  {:>5}  {:<{}}  {:<5} {:<22} {:>12} {:>12}\n", "#", "name", name_width, "type", "shape",
               "offset", "bytes");
    for (size_t i = 0; i < f.tensors().size(); ++i) {
      const GgufTensorInfo& t = f.tensors()[i];
      fmt::print("  {:>5}  {:<{}}  {:<5} {:<22} {:>12} {:>12}\n", i, GgufEscapeString(t.name), name_width,
                 DTypeName(t.dtype), ShapeText(t), t.offset, t.nbytes);
    }
  }

  const Totals tot = ComputeTotals(f);
  fmt::print("\ntotals:\n");
  fmt::print("  tensors:     {}\n", f.tensors().size());
  fmt::print("  parameters:  {} ({:.2f} M)\n", tot.parameters, static_cast<double>(tot.parameters) / 1e6);
  fmt::print("  tensor data: {} ({})\n", tot.bytes, HumanBytes(tot.bytes));
  for (const auto& [name, tt] : tot.by_type)
    fmt::print("    {:<6} {:>5} tensors {:>14} params {:>14} bytes ({})\n", name, tt.tensors,
               tt.parameters, tt.bytes, HumanBytes(tt.bytes));
  fmt::print("  file size:   {} ({})\n", f.file_size(), HumanBytes(f.file_size()));
  return 0;
}

// ---- safetensors -----------------------------------------------------------

bool LooksLikeSafetensors(const std::string& path) {
  const auto ends_with = [&](std::string_view suffix) {
    return path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  std::error_code ec;
  return ends_with(".safetensors") || ends_with(".json") || std::filesystem::is_directory(path, ec);
}

std::string StShape(const std::vector<int64_t>& shape) {
  std::string s;
  for (size_t d = 0; d < shape.size(); ++d) s += (d ? " x " : "") + std::to_string(shape[d]);
  return shape.empty() ? "scalar" : s;
}

int RunSafetensors(const Options& o) {
  auto m = SafetensorsModel::Open(o.path);
  if (!m.ok()) {
    std::fprintf(stderr, "gembed inspect: %s\n", m.status().message().c_str());
    return 1;
  }
  const SafetensorsModel& model = **m;
  std::map<const SafetensorsFile*, size_t> shard_id;
  for (size_t i = 0; i < model.shards().size(); ++i) shard_id[model.shards()[i].get()] = i;
  Totals tot;
  for (const auto& e : model.tensors()) {
    const auto params = static_cast<uint64_t>(e.info->elements);
    tot.parameters += params;
    tot.bytes += e.info->nbytes();
    TypeTotals& tt = tot.by_type[std::string(SafetensorsDTypeName(e.info->dtype))];
    tt.tensors += 1;
    tt.parameters += params;
    tt.bytes += e.info->nbytes();
  }

  if (o.json) {
    Json j;
    j["file"] = o.path;
    j["format"] = "safetensors";
    Json shards = Json::array();
    for (const auto& f : model.shards()) {
      Json md = Json::object();
      for (const auto& [k, v] : f->metadata()) md[k] = v;
      shards.push_back({{"file", f->path()},
                        {"header_bytes", f->header_bytes()},
                        {"data_offset", f->data_offset()},
                        {"file_size", f->file_size()},
                        {"metadata", std::move(md)}});
    }
    j["shards"] = std::move(shards);
    Json im = Json::object();
    for (const auto& [k, v] : model.index_metadata()) im[k] = v;
    j["index_metadata"] = std::move(im);
    Json ts = Json::array();
    for (const auto& e : model.tensors()) {
      Json ne = Json::array();
      for (auto it = e.info->shape.rbegin(); it != e.info->shape.rend(); ++it) ne.push_back(*it);
      ts.push_back({{"name", e.info->name},
                    {"type", std::string(SafetensorsDTypeName(e.info->dtype))},
                    {"shape", e.info->shape},
                    {"ne", std::move(ne)},
                    {"shard", shard_id.at(e.file)},
                    {"offset", e.file->data_offset() + e.info->begin},
                    {"nbytes", e.info->nbytes()}});
    }
    j["tensors"] = std::move(ts);
    Json by_type = Json::object();
    for (const auto& [name, tt] : tot.by_type)
      by_type[name] = {{"tensors", tt.tensors}, {"parameters", tt.parameters}, {"bytes", tt.bytes}};
    j["totals"] = {{"tensors", model.tensors().size()},
                   {"parameters", tot.parameters},
                   {"tensor_bytes", tot.bytes},
                   {"by_type", std::move(by_type)}};
    const std::string s = j.dump(1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fputc('\n', stdout);
  } else {
    fmt::print("file:        {}\n", o.path);
    fmt::print("format:      safetensors, {} shard(s)\n", model.shards().size());
    for (size_t i = 0; i < model.shards().size(); ++i) {
      const SafetensorsFile& f = *model.shards()[i];
      fmt::print("  shard {}: {} (header {} B, data at {}, {} tensors, {})\n", i, f.path(), f.header_bytes(),
                 f.data_offset(), f.tensors().size(), HumanBytes(f.file_size()));
      for (const auto& [k, v] : f.metadata())
        fmt::print("    {}: \"{}\"\n", GgufEscapeString(k), GgufEscapeString(v, o.all ? SIZE_MAX : kTextStringChars));
    }
    for (const auto& [k, v] : model.index_metadata()) fmt::print("  index {}: {}\n", GgufEscapeString(k), v);
    size_t name_width = 4;
    for (const auto& e : model.tensors()) name_width = std::max(name_width, e.info->name.size());
    name_width = std::min<size_t>(name_width, 64);
    fmt::print("\ntensors ({}, shape in PyTorch order):\n", model.tensors().size());
    if (!model.tensors().empty())
      fmt::print("  {:<{}}  {:<7} {:<22} {:>5} {:>12} {:>12}\n", "name", name_width, "type", "shape", "shard",
                 "offset", "bytes");
    for (const auto& e : model.tensors())
      fmt::print("  {:<{}}  {:<7} {:<22} {:>5} {:>12} {:>12}\n", GgufEscapeString(e.info->name), name_width,
                 SafetensorsDTypeName(e.info->dtype), StShape(e.info->shape), shard_id.at(e.file),
                 e.file->data_offset() + e.info->begin, e.info->nbytes());
    fmt::print("\ntotals:\n");
    fmt::print("  tensors:     {}\n", model.tensors().size());
    fmt::print("  parameters:  {} ({:.2f} M)\n", tot.parameters, static_cast<double>(tot.parameters) / 1e6);
    fmt::print("  tensor data: {} ({})\n", tot.bytes, HumanBytes(tot.bytes));
    for (const auto& [name, tt] : tot.by_type)
      fmt::print("    {:<7} {:>5} tensors {:>14} params {:>14} bytes ({})\n", name, tt.tensors, tt.parameters,
                 tt.bytes, HumanBytes(tt.bytes));
  }
  return std::fflush(stdout) == 0 ? 0 : 1;
}

int Run(const Options& o) {
  if (LooksLikeSafetensors(o.path)) return RunSafetensors(o);
  auto f = GgufFile::Open(o.path);
  if (!f.ok()) {
    // Open's messages already start with "<path>: ".
    std::fprintf(stderr, "gembed inspect: %s\n", f.status().message().c_str());
    return 1;
  }
  const int rc = o.json ? PrintJson(o, **f) : PrintText(o, **f);
  if (std::fflush(stdout) != 0) return 1;
  return rc;
}

}  // namespace

Command MakeInspectCommand(CLI::App& root) {
  auto opts = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand("inspect", "Show a GGUF or safetensors file's metadata, tensors and totals");
  app->add_option("file", opts->path, "GGUF file, .safetensors file, safetensors index or model folder")->required();
  app->add_flag("--json", opts->json, "Print one JSON object");
  app->add_flag("--all", opts->all, "Print arrays and strings in full");
  return {app, [opts] { return Run(*opts); }};
}

}  // namespace gembed::cli
