#include "server/api.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <nlohmann/json.hpp>
#include <utility>

namespace gembed::server {
namespace {

using json = nlohmann::json;

// Request bodies are at most object -> array -> array deep; anything much
// deeper is refused before it can cost stack or memory.
constexpr int kMaxJsonDepth = 16;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

ApiError Bad(std::string message, std::string param = {}, std::string code = {}) {
  ApiError e;
  e.status = 400;
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

std::string TypeName(const json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number_float()) return "number";
  return v.type_name();
}

struct TooDeep {};

// Parses `body` as one JSON object (UTF-8 is validated by the parser).
std::optional<ApiError> ParseObject(std::string_view body, json* out) {
  if (body.empty()) return Bad("the request body is empty; expected a JSON object", {}, "invalid_json");
  try {
    *out = json::parse(body.begin(), body.end(), [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxJsonDepth) throw TooDeep{};
      return true;
    });
  } catch (const TooDeep&) {
    return Bad(fmt::format("invalid JSON: nested deeper than {} levels", kMaxJsonDepth), {}, "invalid_json");
  } catch (const json::exception& e) {
    // "[json.exception.parse_error.101] parse error at ..." -> "parse error at ..."
    std::string what = e.what();
    if (const size_t p = what.find("] "); what.rfind("[json.exception", 0) == 0 && p != std::string::npos) {
      what.erase(0, p + 2);
    }
    return Bad("invalid JSON: " + what, {}, "invalid_json");
  }
  if (!out->is_object()) {
    return Bad(fmt::format("the request body must be a JSON object, not {}", TypeName(*out)), {}, "invalid_type");
  }
  return std::nullopt;
}

// Optional typed fields: absent or null leaves *out alone.
std::optional<ApiError> GetString(const json& obj, const char* key, std::string* out, bool* present = nullptr) {
  if (present) *present = false;
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) return Bad(fmt::format("'{}' must be a string, not {}", key, TypeName(*it)), key, "invalid_type");
  *out = it->get<std::string>();
  if (present) *present = true;
  return std::nullopt;
}

std::optional<ApiError> GetBool(const json& obj, const char* key, bool* out) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return Bad(fmt::format("'{}' must be true or false, not {}", key, TypeName(*it)), key, "invalid_type");
  *out = it->get<bool>();
  return std::nullopt;
}

std::string JoinDims(const std::vector<int>& dims) {
  std::string s;
  for (int d : dims) s += fmt::format("{}{}", s.empty() ? "" : ", ", d);
  return s;
}

std::optional<ApiError> GetDimensions(const json& obj, const ParseLimits& lim, int* out) {
  const auto it = obj.find("dimensions");
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) {
    return Bad(fmt::format("'dimensions' must be an integer (one of {}), not {}", JoinDims(lim.dims), TypeName(*it)),
               "dimensions", "invalid_type");
  }
  const int64_t d = it->is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(it->get<uint64_t>(), INT64_MAX))
                                              : it->get<int64_t>();
  if (std::find(lim.dims.begin(), lim.dims.end(), d) == lim.dims.end()) {
    return Bad(fmt::format("'dimensions' {} is not supported by this model (allowed: {})", d, JoinDims(lim.dims)),
               "dimensions", "invalid_dimensions");
  }
  *out = static_cast<int>(d);
  return std::nullopt;
}

ApiError TooMany(const char* field, size_t n, size_t max) {
  ApiError e;
  e.status = 413;
  e.message = fmt::format("'{}' has {} items; this server takes at most {} per request (--max-client-batch-size)",
                          field, n, max);
  e.param = field;
  e.code = "too_many_inputs";
  return e;
}

// One token-id sequence at `name` (e.g. "input[3]").
std::optional<ApiError> ParseIds(const json& arr, const std::string& name, const ParseLimits& lim,
                                 std::vector<int32_t>* ids) {
  if (!arr.is_array()) {
    return Bad(fmt::format("'{}' must be an array of token ids like the other items, not {}", name, TypeName(arr)),
               name, "invalid_type");
  }
  if (arr.empty()) return Bad(fmt::format("'{}' is an empty token-id array", name), name, "empty_input");
  if (lim.max_sequence_tokens > 0 && arr.size() > lim.max_sequence_tokens) {
    return Bad(fmt::format("'{}' has {} token ids; the model takes at most {} (token-id inputs are not truncated)",
                           name, arr.size(), lim.max_sequence_tokens),
               name, "input_too_long");
  }
  ids->resize(arr.size());
  for (size_t j = 0; j < arr.size(); ++j) {
    const json& x = arr[j];
    if (!x.is_number_integer()) {
      return Bad(fmt::format("'{}[{}]' must be an integer token id, not {}", name, j, TypeName(x)), name,
                 "invalid_type");
    }
    const bool neg = !x.is_number_unsigned() && x.get<int64_t>() < 0;
    const uint64_t id = neg ? 0 : x.get<uint64_t>();
    if (neg || id >= static_cast<uint64_t>(lim.vocab_size)) {
      return Bad(fmt::format("'{}[{}]': token id {} is outside the vocabulary [0, {})", name, j, Dump(x),
                             lim.vocab_size),
                 name, "token_out_of_range");
    }
    (*ids)[j] = static_cast<int32_t>(id);
  }
  return std::nullopt;
}

constexpr const char* kInputShapes =
    "a string, an array of strings, an array of token ids or an array of token-id arrays";

// string | [string] | [int] | [[int]] at `field`.
std::optional<ApiError> ParseInputs(const json& obj, const char* field, const ParseLimits& lim, EmbedRequest* out) {
  const auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) {
    return Bad(fmt::format("'{}' is required: {}", field, kInputShapes), field, "missing_input");
  }
  const json& v = *it;
  if (v.is_string()) {
    out->texts.push_back(v.get<std::string>());
    return std::nullopt;
  }
  if (!v.is_array()) {
    return Bad(fmt::format("'{}' must be {}, not {}", field, kInputShapes, TypeName(v)), field, "invalid_type");
  }
  if (v.empty()) return Bad(fmt::format("'{}' is an empty array: give at least one input", field), field, "empty_input");
  const json& first = v.front();
  if (first.is_string()) {
    if (v.size() > lim.max_inputs) return TooMany(field, v.size(), lim.max_inputs);
    out->texts.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) {
        return Bad(fmt::format("'{}[{}]' must be a string like the other items, not {}", field, i, TypeName(v[i])),
                   field, "invalid_type");
      }
      out->texts.push_back(v[i].get<std::string>());
    }
    return std::nullopt;
  }
  if (first.is_number()) {  // one sequence of token ids
    out->tokens = true;
    out->token_ids.resize(1);
    return ParseIds(v, field, lim, &out->token_ids[0]);
  }
  if (first.is_array()) {
    if (v.size() > lim.max_inputs) return TooMany(field, v.size(), lim.max_inputs);
    out->tokens = true;
    out->token_ids.resize(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      if (auto e = ParseIds(v[i], fmt::format("{}[{}]", field, i), lim, &out->token_ids[i])) return e;
    }
    return std::nullopt;
  }
  return Bad(fmt::format("'{}' must be {}; its first item is {}", field, kInputShapes, TypeName(first)), field,
             "invalid_type");
}

std::optional<ApiError> CheckTokenOptions(const EmbedRequest& r, const char* task_key) {
  if (r.tokens && (!r.task.empty() || r.prompt || !r.title.empty())) {
    return Bad(fmt::format("'{}', 'prompt' and 'title' apply to text inputs; token-id inputs are embedded as given",
                           task_key),
               task_key, "invalid_value");
  }
  return std::nullopt;
}

void AppendFloat(std::string& out, float v) { fmt::format_to(std::back_inserter(out), "{}", v); }

constexpr char kBase64Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void AppendBase64(std::string& out, const uint8_t* p, size_t n) {
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(kBase64Alphabet[(v >> 6) & 63]);
    out.push_back(kBase64Alphabet[v & 63]);
  }
  if (i < n) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (i + 1 < n ? uint32_t{p[i + 1]} << 8 : 0u);
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < n ? kBase64Alphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
}

// Little-endian float32 bytes of one row, whatever the host order.
void AppendRowBase64(std::string& out, const float* row, int dim) {
  std::vector<uint8_t> bytes(static_cast<size_t>(dim) * 4);
  for (int i = 0; i < dim; ++i) {
    uint32_t u;
    std::memcpy(&u, &row[i], 4);
    bytes[4 * i] = static_cast<uint8_t>(u);
    bytes[4 * i + 1] = static_cast<uint8_t>(u >> 8);
    bytes[4 * i + 2] = static_cast<uint8_t>(u >> 16);
    bytes[4 * i + 3] = static_cast<uint8_t>(u >> 24);
  }
  AppendBase64(out, bytes.data(), bytes.size());
}

}  // namespace

std::string ErrorBody(const ApiError& e) {
  json err = {{"message", e.message},
              {"type", e.type},
              {"param", e.param.empty() ? json(nullptr) : json(e.param)},
              {"code", e.code.empty() ? json(nullptr) : json(e.code)}};
  return Dump(json{{"error", std::move(err)}});
}

std::string JsonString(std::string_view s) { return Dump(json(std::string(s))); }

std::optional<ApiError> ParseOpenAiEmbeddings(std::string_view body, const ParseLimits& lim, EmbedRequest* out) {
  *out = EmbedRequest{};
  json obj;
  if (auto e = ParseObject(body, &obj)) return e;
  if (auto e = ParseInputs(obj, "input", lim, out)) return e;
  if (auto e = GetString(obj, "model", &out->model)) return e;
  std::string encoding;
  bool has_encoding = false;
  if (auto e = GetString(obj, "encoding_format", &encoding, &has_encoding)) return e;
  if (has_encoding) {
    if (encoding == "float") {
      out->encoding = Encoding::kFloat;
    } else if (encoding == "base64") {
      out->encoding = Encoding::kBase64;
    } else {
      return Bad(fmt::format("'encoding_format' must be 'float' or 'base64', not {}", JsonString(encoding)),
                 "encoding_format", "invalid_value");
    }
  }
  if (auto e = GetDimensions(obj, lim, &out->dimensions)) return e;
  // gembed extensions. TEI's `prompt_name` is accepted as another name for `task`.
  std::string prompt_name;
  if (auto e = GetString(obj, "task", &out->task)) return e;
  if (auto e = GetString(obj, "prompt_name", &prompt_name)) return e;
  if (!prompt_name.empty()) {
    if (!out->task.empty() && out->task != prompt_name) {
      return Bad("'task' and 'prompt_name' name different tasks", "task", "invalid_value");
    }
    out->task = prompt_name;
  }
  std::string prompt;
  bool has_prompt = false;
  if (auto e = GetString(obj, "prompt", &prompt, &has_prompt)) return e;
  if (has_prompt) out->prompt = std::move(prompt);
  if (auto e = GetString(obj, "title", &out->title)) return e;
  if (auto e = GetBool(obj, "truncate", &out->truncate)) return e;
  return CheckTokenOptions(*out, "task");
}

std::optional<ApiError> ParseTeiEmbed(std::string_view body, const ParseLimits& lim, EmbedRequest* out) {
  *out = EmbedRequest{};
  json obj;
  if (auto e = ParseObject(body, &obj)) return e;
  if (auto e = ParseInputs(obj, "inputs", lim, out)) return e;
  bool normalize = true;
  if (auto e = GetBool(obj, "normalize", &normalize)) return e;
  if (!normalize) {
    return Bad("'normalize': false is not supported: EmbeddingGemma's vectors are unit length (its last layer "
               "normalises)",
               "normalize", "unsupported_value");
  }
  if (auto e = GetBool(obj, "truncate", &out->truncate)) return e;
  std::string direction;
  if (auto e = GetString(obj, "truncation_direction", &direction)) return e;
  if (!direction.empty() && direction != "right" && direction != "Right") {
    return Bad(fmt::format("'truncation_direction' {} is not supported (only 'right': the end of a long text is cut)",
                           JsonString(direction)),
               "truncation_direction", "unsupported_value");
  }
  if (auto e = GetString(obj, "prompt_name", &out->task)) return e;
  if (auto e = GetDimensions(obj, lim, &out->dimensions)) return e;
  return CheckTokenOptions(*out, "prompt_name");
}

std::optional<ApiError> ParseTokenize(std::string_view body, const ParseLimits& lim, TokenizeRequest* out) {
  *out = TokenizeRequest{};
  json obj;
  if (auto e = ParseObject(body, &obj)) return e;
  if (obj.contains("content")) {  // llama.cpp's shape
    out->llama_style = true;
    out->add_special = false;
    std::string content;
    bool has = false;
    if (auto e = GetString(obj, "content", &content, &has)) return e;
    if (!has) return Bad("'content' must be a string", "content", "invalid_type");
    out->texts.push_back(std::move(content));
    if (auto e = GetBool(obj, "add_special", &out->add_special)) return e;
    if (auto e = GetBool(obj, "with_pieces", &out->with_pieces)) return e;
    return std::nullopt;
  }
  const auto it = obj.find("inputs");
  if (it == obj.end() || it->is_null()) {
    return Bad("'inputs' is required: a string or an array of strings (or llama.cpp's 'content')", "inputs",
               "missing_input");
  }
  if (it->is_string()) {
    out->texts.push_back(it->get<std::string>());
  } else if (it->is_array()) {
    if (it->empty()) return Bad("'inputs' is an empty array: give at least one text", "inputs", "empty_input");
    if (it->size() > lim.max_inputs) return TooMany("inputs", it->size(), lim.max_inputs);
    for (size_t i = 0; i < it->size(); ++i) {
      const json& t = (*it)[i];
      if (!t.is_string()) {
        return Bad(fmt::format("'inputs[{}]' must be a string, not {}", i, TypeName(t)), "inputs", "invalid_type");
      }
      out->texts.push_back(t.get<std::string>());
    }
  } else {
    return Bad(fmt::format("'inputs' must be a string or an array of strings, not {}", TypeName(*it)), "inputs",
               "invalid_type");
  }
  if (auto e = GetBool(obj, "add_special_tokens", &out->add_special)) return e;
  if (auto e = GetString(obj, "prompt_name", &out->task)) return e;
  return std::nullopt;
}

std::string OpenAiEmbeddingsBody(std::span<const float> vectors, size_t n, int dim, Encoding encoding,
                                 std::string_view model, size_t prompt_tokens) {
  std::string out;
  const size_t per_row = encoding == Encoding::kBase64 ? (static_cast<size_t>(dim) * 4 + 2) / 3 * 4 + 48
                                                       : static_cast<size_t>(dim) * 12 + 48;
  out.reserve(n * per_row + 128);
  out += R"({"object":"list","data":[)";
  for (size_t i = 0; i < n; ++i) {
    const float* row = vectors.data() + i * static_cast<size_t>(dim);
    if (i) out += ',';
    fmt::format_to(std::back_inserter(out), R"({{"object":"embedding","index":{},"embedding":)", i);
    if (encoding == Encoding::kBase64) {
      out += '"';
      AppendRowBase64(out, row, dim);
      out += '"';
    } else {
      out += '[';
      for (int j = 0; j < dim; ++j) {
        if (j) out += ',';
        AppendFloat(out, row[j]);
      }
      out += ']';
    }
    out += '}';
  }
  out += R"(],"model":)";
  out += JsonString(model);
  fmt::format_to(std::back_inserter(out), R"(,"usage":{{"prompt_tokens":{},"total_tokens":{}}}}})", prompt_tokens,
                 prompt_tokens);
  return out;
}

std::string TeiEmbedBody(std::span<const float> vectors, size_t n, int dim) {
  std::string out;
  out.reserve(n * (static_cast<size_t>(dim) * 12 + 4) + 4);
  out += '[';
  for (size_t i = 0; i < n; ++i) {
    const float* row = vectors.data() + i * static_cast<size_t>(dim);
    if (i) out += ',';
    out += '[';
    for (int j = 0; j < dim; ++j) {
      if (j) out += ',';
      AppendFloat(out, row[j]);
    }
    out += ']';
  }
  out += ']';
  return out;
}

std::string Base64Encode(std::span<const uint8_t> bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  AppendBase64(out, bytes.data(), bytes.size());
  return out;
}

bool ConstantTimeEquals(std::string_view secret, std::string_view candidate) {
  // Every byte of the secret is visited whatever the candidate holds; the
  // candidate's bytes past the secret's length only matter through the
  // length check.
  volatile unsigned char diff = secret.size() == candidate.size() ? 0 : 1;
  for (size_t i = 0; i < secret.size(); ++i) {
    const unsigned char c = i < candidate.size() ? static_cast<unsigned char>(candidate[i]) : 0;
    diff = static_cast<unsigned char>(diff | (static_cast<unsigned char>(secret[i]) ^ c));
  }
  return diff == 0;
}

}  // namespace gembed::server
