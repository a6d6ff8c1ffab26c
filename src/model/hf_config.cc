#include "model/hf_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "base/log.h"
#include "io/file.h"
#include "io/gguf.h"
#include "io/json_depth.h"
#include "tokenizer/prompts.h"

namespace gembed {
namespace {

namespace fs = std::filesystem;
// ordered_json keeps file order (the prompt table lists names as the file does).
using Json = nlohmann::ordered_json;

constexpr const char* kIdentity = "torch.nn.modules.linear.Identity";
constexpr const char* kTransformerModule = "sentence_transformers.models.Transformer";
constexpr const char* kPoolingModule = "sentence_transformers.models.Pooling";
constexpr const char* kDenseModule = "sentence_transformers.models.Dense";
constexpr const char* kNormalizeModule = "sentence_transformers.models.Normalize";
constexpr uint32_t kDefaultSwaPeriod = 6;  // Gemma3TextConfig._sliding_window_pattern

// Parses `text` as one JSON object. nlohmann reports the byte offset of a
// syntax error; exceptions stay inside this function.
Result<Json> ParseObject(std::string_view text, const char* file) {
  // Deeper nesting than any real config: refused before nlohmann builds it
  // (dump() and copies of a value recurse once per level; io/json_depth.h).
  GEMBED_RETURN_IF_ERROR(CheckJsonNesting(text).WithContext(file));
  Json j;
  try {
    j = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return CorruptFile("{}: invalid JSON ({})", file, e.what());
  }
  if (!j.is_object()) return CorruptFile("{}: expected a JSON object at the top level", file);
  return j;
}

// A value as JSON text for an error message: invalid UTF-8 in strings is
// replaced (a plain dump() throws type_error 316 on it), long values are cut.
std::string Quote(const Json& v) {
  std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 200) s = s.substr(0, 200) + "...";
  return s;
}

// Typed optional getters: absent or null -> nullopt; present with another
// type -> kCorruptFile naming file and key.
const Json* Member(const Json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::optional<int64_t>> OptInt(const Json& o, const char* key, const char* file) {
  const Json* v = Member(o, key);
  if (v == nullptr) return std::optional<int64_t>();
  if (v->is_number_integer()) return std::optional<int64_t>(v->get<int64_t>());
  // 2048.0 is still an integer value (some writers emit floats).
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      return std::optional<int64_t>(static_cast<int64_t>(d));
    }
  }
  return CorruptFile("{}: \"{}\" must be an integer, got {}", file, key, Quote(*v));
}

Result<std::optional<uint32_t>> OptU32(const Json& o, const char* key, const char* file) {
  GEMBED_ASSIGN_OR_RETURN(std::optional<int64_t> v, OptInt(o, key, file));
  if (!v) return std::optional<uint32_t>();
  if (*v < 0 || *v > UINT32_MAX) return CorruptFile("{}: \"{}\" = {} is out of range", file, key, *v);
  return std::optional<uint32_t>(static_cast<uint32_t>(*v));
}

Result<uint32_t> ReqU32(const Json& o, const char* key, const char* file) {
  GEMBED_ASSIGN_OR_RETURN(std::optional<uint32_t> v, OptU32(o, key, file));
  if (!v) return NotFound("{}: missing \"{}\"", file, key);
  return *v;
}

Result<std::optional<double>> OptNumber(const Json& o, const char* key, const char* file) {
  const Json* v = Member(o, key);
  if (v == nullptr) return std::optional<double>();
  if (!v->is_number()) return CorruptFile("{}: \"{}\" must be a number, got {}", file, key, Quote(*v));
  const double d = v->get<double>();
  if (!std::isfinite(d)) return CorruptFile("{}: \"{}\" is not finite", file, key);
  return std::optional<double>(d);
}

Result<std::optional<bool>> OptBool(const Json& o, const char* key, const char* file) {
  const Json* v = Member(o, key);
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_boolean()) return CorruptFile("{}: \"{}\" must be true or false, got {}", file, key, Quote(*v));
  return std::optional<bool>(v->get<bool>());
}

Result<std::optional<std::string>> OptString(const Json& o, const char* key, const char* file) {
  const Json* v = Member(o, key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return CorruptFile("{}: \"{}\" must be a string, got {}", file, key, Quote(*v));
  return std::optional<std::string>(v->get<std::string>());
}

// A module path from modules.json: relative, no "..", no backslashes.
Status CheckRelativePath(const std::string& p) {
  if (p.empty()) return Status::Ok();
  const fs::path path(p);
  if (path.is_absolute() || p.find('\\') != std::string::npos || p.find('\0') != std::string::npos) {
    return Unsupported("modules.json: module path '{}' must be relative to the model folder", p);
  }
  for (const auto& part : path) {
    if (part == "..") return Unsupported("modules.json: module path '{}' may not contain '..'", p);
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> ReadSmallTextFile(const std::string& path, uint64_t max_bytes) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return NotFound("{}: not found", path);
  if (fs::is_directory(path, ec)) return IoError("{}: is a folder, expected a file", path);
  // io/file.h: a FIFO or device is refused instead of blocking in open().
  auto text = ReadRegularFile(path, max_bytes);
  if (!text.ok() && text.status().code() == StatusCode::kOutOfRange) {
    return Unsupported("{}: too large for a configuration file ({})", path, text.status().message());
  }
  return text;
}

Result<ModelConfig> ParseHfModelConfig(std::string_view text) {
  constexpr const char* f = "config.json";
  GEMBED_ASSIGN_OR_RETURN(Json j, ParseObject(text, f));

  GEMBED_ASSIGN_OR_RETURN(auto model_type, OptString(j, "model_type", f));
  if (!model_type) return NotFound("{}: missing \"model_type\"", f);
  if (*model_type != "gemma3_text") {
    return Unsupported("{}: model_type '{}' is not supported (gembed runs EmbeddingGemma: gemma3_text)", f,
                       *model_type);
  }
  GEMBED_ASSIGN_OR_RETURN(auto bidirectional, OptBool(j, "use_bidirectional_attention", f));
  if (!bidirectional.value_or(false)) {
    return Unsupported("{}: use_bidirectional_attention is not true: gembed runs EmbeddingGemma's bidirectional "
                       "encoder only, not a causal Gemma3 decoder",
                       f);
  }

  ModelConfig c;
  GEMBED_ASSIGN_OR_RETURN(c.n_embd, ReqU32(j, "hidden_size", f));
  GEMBED_ASSIGN_OR_RETURN(c.n_layer, ReqU32(j, "num_hidden_layers", f));
  GEMBED_ASSIGN_OR_RETURN(c.n_ff, ReqU32(j, "intermediate_size", f));
  GEMBED_ASSIGN_OR_RETURN(c.n_head, ReqU32(j, "num_attention_heads", f));
  GEMBED_ASSIGN_OR_RETURN(c.n_vocab, ReqU32(j, "vocab_size", f));
  GEMBED_ASSIGN_OR_RETURN(c.context_length, ReqU32(j, "max_position_embeddings", f));
  if (c.n_head == 0) return Unsupported("{}: num_attention_heads is 0", f);
  if (c.n_layer == 0 || c.n_layer > 1024) return Unsupported("{}: num_hidden_layers = {} is out of range", f, c.n_layer);
  GEMBED_ASSIGN_OR_RETURN(auto n_head_kv, OptU32(j, "num_key_value_heads", f));
  c.n_head_kv = n_head_kv.value_or(c.n_head);
  GEMBED_ASSIGN_OR_RETURN(auto head_dim, OptU32(j, "head_dim", f));
  if (!head_dim && c.n_embd % c.n_head != 0) {
    return Unsupported("{}: head_dim is absent and hidden_size {} is not a multiple of num_attention_heads {}", f,
                       c.n_embd, c.n_head);
  }
  c.head_dim = head_dim.value_or(c.n_embd / c.n_head);

  GEMBED_ASSIGN_OR_RETURN(auto eps, OptNumber(j, "rms_norm_eps", f));
  c.rms_eps = static_cast<float>(eps.value_or(1e-6));
  GEMBED_ASSIGN_OR_RETURN(auto theta, OptNumber(j, "rope_theta", f));
  c.rope_base = static_cast<float>(theta.value_or(1e6));
  GEMBED_ASSIGN_OR_RETURN(auto local_theta, OptNumber(j, "rope_local_base_freq", f));
  c.rope_base_swa = static_cast<float>(local_theta.value_or(1e4));
  GEMBED_ASSIGN_OR_RETURN(auto window, OptU32(j, "sliding_window", f));
  c.sliding_window = window.value_or(4096);

  // Which layers slide.
  const Json* layer_types = Member(j, "layer_types");
  if (layer_types != nullptr) {
    if (!layer_types->is_array()) return CorruptFile("{}: \"layer_types\" must be an array", f);
    if (layer_types->size() != c.n_layer) {
      return CorruptFile("{}: layer_types has {} entries, num_hidden_layers is {}", f, layer_types->size(),
                         c.n_layer);
    }
    c.layer_is_sliding.clear();
    for (const Json& t : *layer_types) {
      if (!t.is_string()) return CorruptFile("{}: layer_types entries must be strings", f);
      const std::string s = t.get<std::string>();
      if (s == "sliding_attention") {
        c.layer_is_sliding.push_back(true);
      } else if (s == "full_attention") {
        c.layer_is_sliding.push_back(false);
      } else {
        return Unsupported("{}: layer type '{}' is not supported (sliding_attention, full_attention)", f, s);
      }
    }
  } else {
    GEMBED_ASSIGN_OR_RETURN(auto pattern, OptU32(j, "sliding_window_pattern", f));
    if (!pattern) {
      GEMBED_ASSIGN_OR_RETURN(pattern, OptU32(j, "_sliding_window_pattern", f));
    }
    const uint32_t period = pattern.value_or(kDefaultSwaPeriod);
    if (period == 0) return Unsupported("{}: sliding_window_pattern 0 is not supported", f);
    c.layer_is_sliding.resize(c.n_layer);
    for (uint32_t il = 0; il < c.n_layer; ++il) c.layer_is_sliding[il] = (il + 1) % period != 0;
  }

  // The attention scale: HF multiplies Q by query_pre_attn_scalar^-0.5,
  // gembed (and llama.cpp) by head_dim^-0.5.
  GEMBED_ASSIGN_OR_RETURN(auto qpas, OptNumber(j, "query_pre_attn_scalar", f));
  const double scalar = qpas.value_or(256.0);
  if (!(scalar > 0.0) ||
      std::fabs(1.0 / std::sqrt(scalar) - 1.0 / std::sqrt(static_cast<double>(c.head_dim))) >
          1e-7 / std::sqrt(static_cast<double>(c.head_dim))) {
    return Unsupported("{}: query_pre_attn_scalar {} gives an attention scale other than 1/sqrt(head_dim {}), "
                       "which gembed does not support",
                       f, scalar, c.head_dim);
  }
  GEMBED_ASSIGN_OR_RETURN(auto act, OptString(j, "hidden_activation", f));
  if (!act) {
    GEMBED_ASSIGN_OR_RETURN(act, OptString(j, "hidden_act", f));
  }
  if (act && *act != "gelu_pytorch_tanh") {
    return Unsupported("{}: hidden_activation '{}' is not supported (gelu_pytorch_tanh)", f, *act);
  }
  if (const Json* rs = Member(j, "rope_scaling"); rs != nullptr) {
    bool plain = false;
    if (rs->is_object()) {
      auto type = rs->find("rope_type");
      if (type == rs->end()) type = rs->find("type");
      plain = type != rs->end() && type->is_string() && type->get<std::string>() == "default";
    }
    if (!plain) return Unsupported("{}: rope_scaling {} is not supported (null)", f, Quote(*rs));
  }
  GEMBED_ASSIGN_OR_RETURN(auto attn_bias, OptBool(j, "attention_bias", f));
  if (attn_bias.value_or(false)) return Unsupported("{}: attention_bias true is not supported", f);
  if (const Json* cap = Member(j, "attn_logit_softcapping"); cap != nullptr) {
    return Unsupported("{}: attn_logit_softcapping {} is not supported (null)", f, Quote(*cap));
  }

  c.pooling = PoolingType::kMean;
  c.dense_hidden = 0;
  GEMBED_RETURN_IF_ERROR(c.Validate().WithContext(f));
  return c;
}

Result<std::vector<HfModuleEntry>> ParseHfModulesJson(std::string_view text) {
  constexpr const char* f = "modules.json";
  GEMBED_RETURN_IF_ERROR(CheckJsonNesting(text).WithContext(f));
  Json j;
  try {
    j = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return CorruptFile("{}: invalid JSON ({})", f, e.what());
  }
  if (!j.is_array()) return CorruptFile("{}: expected a JSON array of modules", f);
  struct Indexed {
    int64_t idx;
    HfModuleEntry e;
  };
  std::vector<Indexed> mods;
  std::set<int64_t> seen;
  for (const Json& m : j) {
    if (!m.is_object()) return CorruptFile("{}: every module must be an object", f);
    GEMBED_ASSIGN_OR_RETURN(auto idx, OptInt(m, "idx", f));
    GEMBED_ASSIGN_OR_RETURN(auto type, OptString(m, "type", f));
    GEMBED_ASSIGN_OR_RETURN(auto path, OptString(m, "path", f));
    if (!type) return CorruptFile("{}: a module has no \"type\"", f);
    if (!path) return CorruptFile("{}: module {} has no \"path\"", f, *type);
    const int64_t i = idx.value_or(static_cast<int64_t>(mods.size()));
    if (!seen.insert(i).second) return CorruptFile("{}: two modules have idx {}", f, i);
    GEMBED_RETURN_IF_ERROR(CheckRelativePath(*path));
    mods.push_back({i, {*type, *path}});
  }
  std::sort(mods.begin(), mods.end(), [](const Indexed& a, const Indexed& b) { return a.idx < b.idx; });
  std::vector<HfModuleEntry> out;
  for (auto& m : mods) out.push_back(std::move(m.e));

  // Shape of the pipeline gembed runs.
  if (out.empty() || out[0].type != kTransformerModule) {
    return Unsupported("{}: the first module must be {}", f, kTransformerModule);
  }
  if (!out[0].path.empty()) {
    return Unsupported("{}: the Transformer module must live in the folder itself (path \"\"), not '{}'", f,
                       out[0].path);
  }
  size_t i = 1;
  if (i >= out.size() || out[i].type != kPoolingModule) {
    return Unsupported("{}: module 1 must be {} (gembed mean-pools)", f, kPoolingModule);
  }
  ++i;
  size_t n_dense = 0;
  while (i < out.size() && out[i].type == kDenseModule) ++n_dense, ++i;
  if (n_dense != 0 && n_dense != 2) {
    return Unsupported("{}: {} Dense modules; gembed supports none or two (768->3072->768)", f, n_dense);
  }
  if (i < out.size() && out[i].type == kNormalizeModule) ++i;
  if (i < out.size()) {
    return Unsupported("{}: module '{}' ({}) is not supported here (Transformer, Pooling, 0 or 2 Dense, Normalize)",
                       f, out[i].type, out[i].path);
  }
  return out;
}

Status CheckHfPoolingConfig(std::string_view text, uint32_t n_embd) {
  constexpr const char* f = "Pooling config.json";
  GEMBED_ASSIGN_OR_RETURN(Json j, ParseObject(text, f));
  GEMBED_ASSIGN_OR_RETURN(auto dim, OptU32(j, "word_embedding_dimension", f));
  if (dim && *dim != n_embd) {
    return CorruptFile("{}: word_embedding_dimension {} != hidden_size {}", f, *dim, n_embd);
  }
  // Newer sentence-transformers may also write "pooling_mode": "mean".
  GEMBED_ASSIGN_OR_RETURN(auto mode, OptString(j, "pooling_mode", f));
  if (mode && *mode != "mean") return Unsupported("{}: pooling_mode '{}' is not supported (mean)", f, *mode);
  GEMBED_ASSIGN_OR_RETURN(auto mean, OptBool(j, "pooling_mode_mean_tokens", f));
  if (!mean.value_or(mode.has_value())) {
    return Unsupported("{}: pooling_mode_mean_tokens is not true: gembed supports mean pooling only", f);
  }
  for (const char* other : {"pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
                            "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"}) {
    GEMBED_ASSIGN_OR_RETURN(auto on, OptBool(j, other, f));
    if (on.value_or(false)) return Unsupported("{}: {} is true: gembed supports mean pooling only", f, other);
  }
  GEMBED_ASSIGN_OR_RETURN(auto include_prompt, OptBool(j, "include_prompt", f));
  if (!include_prompt.value_or(true)) {
    return Unsupported("{}: include_prompt false is not supported (gembed pools the prompt tokens too)", f);
  }
  return Status::Ok();
}

Result<HfDenseConfig> ParseHfDenseConfig(std::string_view text, std::string path) {
  const std::string file = path + "/config.json";
  const char* f = file.c_str();
  GEMBED_ASSIGN_OR_RETURN(Json j, ParseObject(text, f));
  HfDenseConfig d;
  d.path = std::move(path);
  GEMBED_ASSIGN_OR_RETURN(d.in_features, ReqU32(j, "in_features", f));
  GEMBED_ASSIGN_OR_RETURN(d.out_features, ReqU32(j, "out_features", f));
  if (d.in_features == 0 || d.out_features == 0) return CorruptFile("{}: zero Dense width", f);
  GEMBED_ASSIGN_OR_RETURN(auto bias, OptBool(j, "bias", f));
  if (!bias) return Unsupported("{}: \"bias\" is absent (sentence-transformers then adds a bias; gembed has none)", f);
  if (*bias) return Unsupported("{}: bias true is not supported (EmbeddingGemma's Dense layers have none)", f);
  GEMBED_ASSIGN_OR_RETURN(auto act, OptString(j, "activation_function", f));
  if (!act) {
    return Unsupported("{}: \"activation_function\" is absent (sentence-transformers' default is Tanh; gembed "
                       "supports {} only)",
                       f, kIdentity);
  }
  if (*act != kIdentity) return Unsupported("{}: activation_function '{}' is not supported ({})", f, *act, kIdentity);
  return d;
}

Result<std::optional<uint32_t>> ParseHfSentenceBertConfig(std::string_view text) {
  constexpr const char* f = "sentence_bert_config.json";
  GEMBED_ASSIGN_OR_RETURN(Json j, ParseObject(text, f));
  GEMBED_ASSIGN_OR_RETURN(auto lower, OptBool(j, "do_lower_case", f));
  if (lower.value_or(false)) return Unsupported("{}: do_lower_case true is not supported", f);
  GEMBED_ASSIGN_OR_RETURN(auto max_len, OptU32(j, "max_seq_length", f));
  if (max_len && *max_len < 2) return Unsupported("{}: max_seq_length {} cannot hold BOS and EOS", f, *max_len);
  return max_len;
}

Result<HfPromptTable> ParseHfPromptTable(std::string_view text) {
  constexpr const char* f = "config_sentence_transformers.json";
  GEMBED_ASSIGN_OR_RETURN(Json j, ParseObject(text, f));
  HfPromptTable t;
  if (const Json* p = Member(j, "prompts"); p != nullptr) {
    if (!p->is_object()) return CorruptFile("{}: \"prompts\" must be an object of strings", f);
    for (auto it = p->begin(); it != p->end(); ++it) {
      if (!it.value().is_string()) return CorruptFile("{}: prompt '{}' is not a string", f, it.key());
      if (it.key().empty()) return CorruptFile("{}: a prompt has an empty name", f);
      t.prompts.push_back({it.key(), it.value().get<std::string>()});
    }
  }
  GEMBED_ASSIGN_OR_RETURN(auto def, OptString(j, "default_prompt_name", f));
  if (def) {
    bool known = false;
    for (const HfPrompt& p : t.prompts) known |= p.name == *def;
    if (!known) return CorruptFile("{}: default_prompt_name '{}' is not in \"prompts\"", f, *def);
    t.default_prompt_name = *def;
  }
  return t;
}

Result<HfFolderConfig> ReadHfFolderConfig(const std::string& folder) {
  const fs::path dir(folder);
  HfFolderConfig fc;
  GEMBED_ASSIGN_OR_RETURN(std::string config_json, ReadSmallTextFile((dir / "config.json").string()));
  auto model = ParseHfModelConfig(config_json);
  if (!model.ok()) return model.status().WithContext(folder);
  fc.model = std::move(*model);

  std::error_code ec;
  const fs::path modules_path = dir / "modules.json";
  if (fs::exists(modules_path, ec)) {
    fc.has_modules_json = true;
    GEMBED_ASSIGN_OR_RETURN(std::string modules_json, ReadSmallTextFile(modules_path.string()));
    auto modules = ParseHfModulesJson(modules_json);
    if (!modules.ok()) return modules.status().WithContext(folder);
    fc.normalize = false;
    for (const HfModuleEntry& m : *modules) {
      const fs::path cfg = dir / m.path / "config.json";
      if (m.type == "sentence_transformers.models.Pooling") {
        GEMBED_ASSIGN_OR_RETURN(std::string pj, ReadSmallTextFile(cfg.string()));
        Status st = CheckHfPoolingConfig(pj, fc.model.n_embd);
        if (!st.ok()) return st.WithContext(cfg.string());
      } else if (m.type == "sentence_transformers.models.Dense") {
        GEMBED_ASSIGN_OR_RETURN(std::string dj, ReadSmallTextFile(cfg.string()));
        auto dense = ParseHfDenseConfig(dj, m.path);
        if (!dense.ok()) return dense.status().WithContext(folder);
        fc.dense.push_back(std::move(*dense));
      } else if (m.type == "sentence_transformers.models.Normalize") {
        fc.normalize = true;  // no folder needed (the upstream repo has none)
      }
    }
    if (!fc.normalize) {
      Log(LogLevel::kWarning,
          "{}: modules.json has no Normalize module; gembed returns unit vectors anyway (same cosines)", folder);
    }
  } else {
    Log(LogLevel::kWarning,
        "{}: no modules.json: treating it as a bare transformers folder (mean pooling, no Dense head)", folder);
  }

  if (!fc.dense.empty()) {
    const HfDenseConfig& d2 = fc.dense[0];
    const HfDenseConfig& d3 = fc.dense[1];
    if (d2.in_features != fc.model.n_embd || d3.out_features != fc.model.n_embd ||
        d2.out_features != d3.in_features) {
      return Unsupported("{}: Dense modules {} ({} -> {}) and {} ({} -> {}) do not map hidden_size {} -> H -> {}",
                         folder, d2.path, d2.in_features, d2.out_features, d3.path, d3.in_features,
                         d3.out_features, fc.model.n_embd, fc.model.n_embd);
    }
    fc.model.dense_hidden = d2.out_features;
    GEMBED_RETURN_IF_ERROR(fc.model.Validate().WithContext(folder));
  }

  const fs::path sbert = dir / "sentence_bert_config.json";
  fc.max_seq_length = fc.model.context_length;
  if (fs::exists(sbert, ec)) {
    GEMBED_ASSIGN_OR_RETURN(std::string sj, ReadSmallTextFile(sbert.string()));
    auto max_len = ParseHfSentenceBertConfig(sj);
    if (!max_len.ok()) return max_len.status().WithContext(folder);
    if (*max_len) {
      if (**max_len > fc.model.context_length) {
        Log(LogLevel::kWarning, "{}: max_seq_length {} exceeds max_position_embeddings {}; using {}", folder,
            **max_len, fc.model.context_length, fc.model.context_length);
      } else {
        fc.max_seq_length = **max_len;
      }
    }
  }
  auto prompts = ReadHfPromptTable(folder);
  if (!prompts.ok()) return prompts.status();
  fc.prompts = std::move(*prompts);
  return fc;
}

void WriteHfPromptTableToGguf(const HfPromptTable& table, GgufWriter* w) {
  if (table.prompts.empty()) return;
  std::vector<std::string> names, prefixes;
  names.reserve(table.prompts.size());
  prefixes.reserve(table.prompts.size());
  for (const HfPrompt& p : table.prompts) {
    names.push_back(p.name);
    prefixes.push_back(p.prefix);
  }
  w->SetStringArray(kGgufPromptNamesKey, names);
  w->SetStringArray(kGgufPromptPrefixesKey, prefixes);
  if (!table.default_prompt_name.empty()) w->SetString(kGgufPromptDefaultKey, table.default_prompt_name);
}

Result<HfPromptTable> HfPromptTableFromGguf(const GgufFile& gguf) {
  const bool has_names = gguf.Find(kGgufPromptNamesKey) != nullptr;
  const bool has_prefixes = gguf.Find(kGgufPromptPrefixesKey) != nullptr;
  // Type errors first, so a wrongly typed key is named even if its partner is missing.
  std::vector<std::string_view> names, prefixes;
  if (has_names) {
    GEMBED_ASSIGN_OR_RETURN(names, gguf.GetStringArray(kGgufPromptNamesKey));
  }
  if (has_prefixes) {
    GEMBED_ASSIGN_OR_RETURN(prefixes, gguf.GetStringArray(kGgufPromptPrefixesKey));
  }
  GEMBED_ASSIGN_OR_RETURN(std::optional<std::string> def, gguf.GetStringOpt(kGgufPromptDefaultKey));
  if (has_names != has_prefixes) {
    return CorruptFile("GGUF prompt table: '{}' is present but '{}' is missing",
                       has_names ? kGgufPromptNamesKey : kGgufPromptPrefixesKey,
                       has_names ? kGgufPromptPrefixesKey : kGgufPromptNamesKey);
  }
  if (names.size() != prefixes.size()) {
    return CorruptFile("GGUF prompt table: '{}' has {} entries but '{}' has {}", kGgufPromptNamesKey, names.size(),
                       kGgufPromptPrefixesKey, prefixes.size());
  }
  HfPromptTable t;
  std::set<std::string_view, std::less<>> seen;
  t.prompts.reserve(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) return CorruptFile("GGUF prompt table: '{}' element {} is empty", kGgufPromptNamesKey, i);
    if (!seen.insert(names[i]).second) {
      return CorruptFile("GGUF prompt table: '{}' lists \"{}\" twice", kGgufPromptNamesKey,
                         GgufEscapeString(names[i], 64));
    }
    t.prompts.push_back({std::string(names[i]), std::string(prefixes[i])});
  }
  if (def) {
    if (seen.count(*def) == 0) {
      return CorruptFile("GGUF prompt table: '{}' \"{}\" is not one of '{}'", kGgufPromptDefaultKey,
                         GgufEscapeString(*def, 64), kGgufPromptNamesKey);
    }
    t.default_prompt_name = std::move(*def);
  }
  return t;
}

namespace {
// A regular file that starts with the GGUF magic.
bool LooksLikeGguf(const std::string& path) {
  auto f = RegularFile::Open(path);  // never blocks on a FIFO
  if (!f.ok()) return false;
  char magic[4] = {};
  auto n = f->Read(magic, 4, path);
  return n.ok() && *n == 4 && std::string_view(magic, 4) == "GGUF";
}
}  // namespace

Result<HfPromptTable> ReadHfPromptTable(const std::string& path) {
  std::error_code ec;
  if (LooksLikeGguf(path)) {
    GEMBED_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> gguf, GgufFile::Open(path));  // messages name the path
    auto table = HfPromptTableFromGguf(*gguf);
    if (!table.ok()) return table.status().WithContext(path);
    return table;
  }
  if (!fs::is_directory(path, ec)) return HfPromptTable{};
  const fs::path file = fs::path(path) / "config_sentence_transformers.json";
  if (!fs::exists(file, ec)) return HfPromptTable{};
  GEMBED_ASSIGN_OR_RETURN(std::string text, ReadSmallTextFile(file.string()));
  auto table = ParseHfPromptTable(text);
  if (!table.ok()) return table.status().WithContext(path);
  return table;
}

std::vector<std::string> AvailableTaskNames(const HfPromptTable& folder) {
  std::vector<std::string> names;
  std::set<std::string, std::less<>> seen;
  for (const HfPrompt& p : folder.prompts) {
    if (seen.insert(p.name).second) names.push_back(p.name);
  }
  for (std::string_view n : TaskPromptNames()) {
    if (seen.insert(std::string(n)).second) names.emplace_back(n);
  }
  return names;
}

Result<std::string> ResolveTaskPrompt(const HfPromptTable& folder, std::string_view name, std::string_view title) {
  for (const HfPrompt& p : folder.prompts) {
    if (p.name != name) continue;
    if (title.empty()) return p.prefix;
    // The model card's document format: "title: {title | "none"} | text: ".
    constexpr std::string_view kNoTitle = "title: none | ";
    if (p.prefix.rfind(kNoTitle, 0) == 0) {
      return fmt::format("title: {} | {}", title, p.prefix.substr(kNoTitle.size()));
    }
    return InvalidArgument("a title cannot be used with task '{}': its prompt '{}' has no title", name, p.prefix);
  }
  for (const TaskPrompt& p : kTaskPrompts) {
    if (p.name != name) continue;
    if (!title.empty() && p.prefix.find("{title}") == std::string_view::npos) {
      return InvalidArgument("a title cannot be used with task '{}': its prompt '{}' has no title", name, p.prefix);
    }
    auto prefix = TaskPromptPrefix(name, title);
    if (prefix) return *prefix;
  }
  std::string names;
  for (const std::string& n : AvailableTaskNames(folder)) names += fmt::format("{}{}", names.empty() ? "" : ", ", n);
  return InvalidArgument("unknown task '{}' (valid: {})", name, names);
}

}  // namespace gembed
