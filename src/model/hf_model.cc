#include "model/hf_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>
#include <string_view>

#include "base/half.h"
#include "base/log.h"
#include "io/safetensors.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace gembed {
namespace {

namespace fs = std::filesystem;

// GGUF block tensor suffix -> Gemma3 module path (MODEL-SPEC §3).
struct NameMap {
  std::string_view gguf;
  std::string_view hf;
};
constexpr NameMap kBlockNames[] = {
    {"attn_norm", "input_layernorm"},
    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},
    {"attn_q_norm", "self_attn.q_norm"},
    {"attn_k_norm", "self_attn.k_norm"},
    {"attn_output", "self_attn.o_proj"},
    {"post_attention_norm", "post_attention_layernorm"},
    {"ffn_norm", "pre_feedforward_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},
    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
    {"post_ffw_norm", "post_feedforward_layernorm"},
};

// PyTorch-order shape of a view (safetensors order: the reverse of ne).
std::string ShapeString(const TensorView& v) {
  std::string s = "[";
  for (int i = v.n_dims - 1; i >= 0; --i) s += fmt::format("{}{}", i == v.n_dims - 1 ? "" : ", ", v.ne[i]);
  return s + "]";
}

// PyTorch-order shape of a spec, for messages about safetensors tensors.
std::string TorchShape(const TensorSpec& s) {
  std::string out = "[";
  for (int i = s.n_dims - 1; i >= 0; --i) out += fmt::format("{}{}", i == s.n_dims - 1 ? "" : ", ", s.ne[i]);
  return out + "]";
}

// One element of an F32 / F16 / BF16 tensor as float.
float LoadElement(const uint8_t* p, DType t) {
  switch (t) {
    case DType::kF16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return F16ToF32(h);
    }
    case DType::kBF16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return Bf16ToF32(h);
    }
    default: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
  }
}

}  // namespace

bool IsHfFolder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

std::string HfTensorName(const TensorSpec& spec) {
  const std::string& n = spec.name;
  if (n == "token_embd.weight") return "embed_tokens.weight";
  if (n == "output_norm.weight") return "norm.weight";
  if (n == "dense_2.weight" || n == "dense_3.weight") return "linear.weight";
  if (spec.layer < 0) return "";
  const std::string prefix = fmt::format("blk.{}.", spec.layer);
  constexpr std::string_view kSuffix = ".weight";
  if (n.rfind(prefix, 0) != 0 || n.size() < prefix.size() + kSuffix.size()) return "";
  const std::string_view mid = std::string_view(n).substr(prefix.size(), n.size() - prefix.size() - kSuffix.size());
  for (const NameMap& m : kBlockNames) {
    if (m.gguf == mid) return fmt::format("layers.{}.{}.weight", spec.layer, m.hf);
  }
  return "";
}

HfModel::~HfModel() = default;

ModelConfig HfModel::EngineConfig() const {
  ModelConfig c = folder_config_.model;
  c.context_length = folder_config_.max_seq_length;
  return c;
}

Result<std::unique_ptr<HfModel>> HfModel::Open(const std::string& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return NotFound("{}: not a folder", folder);
  std::unique_ptr<HfModel> m(new HfModel());
  m->folder_ = folder;
  GEMBED_ASSIGN_OR_RETURN(m->folder_config_, ReadHfFolderConfig(folder));

  const fs::path dir(folder);
  const bool has_weights = fs::exists(dir / "model.safetensors", ec) ||
                           fs::exists(dir / "model.safetensors.index.json", ec);
  if (!has_weights) {
    if (fs::exists(dir / "pytorch_model.bin", ec)) {
      return Unsupported("{}: only pytorch_model.bin; gembed reads safetensors only (model.safetensors)", folder);
    }
    return NotFound("{}: no model.safetensors or model.safetensors.index.json", folder);
  }
  GEMBED_ASSIGN_OR_RETURN(m->transformer_, SafetensorsModel::Open(folder));
  for (const HfDenseConfig& d : m->folder_config_.dense) {
    const fs::path p = dir / d.path / "model.safetensors";
    if (!fs::exists(p, ec)) {
      if (fs::exists(dir / d.path / "pytorch_model.bin", ec)) {
        return Unsupported("{}: only pytorch_model.bin; gembed reads safetensors only", (dir / d.path).string());
      }
      return NotFound("{}: not found (the Dense module's weights)", p.string());
    }
    GEMBED_ASSIGN_OR_RETURN(auto f, SafetensorsFile::Open(p.string()));
    m->dense_files_.push_back(std::move(f));
  }
  GEMBED_RETURN_IF_ERROR(m->BindWeights());
  return m;
}

Status HfModel::BindWeights() {
  const ModelConfig& c = folder_config_.model;
  // "model." prefix: present in checkpoints saved from a wrapper model.
  std::string prefix;
  if (transformer_->Find("embed_tokens.weight") == nullptr &&
      transformer_->Find("model.embed_tokens.weight") != nullptr) {
    prefix = "model.";
  }
  // num_hidden_layers must match the layers.N. tensors exactly (extra
  // layers would otherwise be ignored and the model run with fewer).
  {
    std::vector<std::string_view> names;
    for (const SafetensorsModel::Entry& e : transformer_->tensors()) names.push_back(e.info->name);
    Status layers = CheckLayerTensors(c, names, prefix + "layers.", "config.json num_hidden_layers");
    if (!layers.ok()) return layers.WithContext(folder_ + ": model.safetensors");
  }
  std::set<std::string, std::less<>> used;
  bool first_matrix = true;
  Status st = ForEachTensor(c, weights_, [&](const TensorSpec& s, TensorView& slot) -> Status {
    const std::string hf = HfTensorName(s);
    if (hf.empty()) return Internal("no Hugging Face name for tensor {}", s.name);
    TensorView view;
    std::string where;  // file/tensor for messages
    if (s.name == "dense_2.weight" || s.name == "dense_3.weight") {
      const size_t k = s.name == "dense_2.weight" ? 0 : 1;
      const SafetensorsFile& f = *dense_files_[k];
      where = fmt::format("{}/model.safetensors: {}", folder_config_.dense[k].path, hf);
      const SafetensorsTensorInfo* info = f.FindTensor(hf);
      if (info == nullptr) return NotFound("{}: missing", where);
      for (const SafetensorsTensorInfo& t : f.tensors()) {
        if (t.name != hf) {
          return Unsupported("{}/model.safetensors: unexpected tensor '{}' (a Dense bias is not supported)",
                             folder_config_.dense[k].path, t.name);
        }
      }
      auto v = f.View(*info);
      if (!v.ok()) return v.status().WithContext(where);
      view = *v;
    } else {
      const std::string full = prefix + hf;
      where = fmt::format("model.safetensors: {}", full);
      const SafetensorsModel::Entry* e = transformer_->Find(full);
      if (e == nullptr) return NotFound("{}: missing (needed for {})", where, s.name);
      used.insert(full);
      auto v = e->file->View(*e->info);
      if (!v.ok()) return v.status().WithContext(where);
      view = *v;
    }
    std::array<int64_t, kMaxDims> want{1, 1, 1, 1};
    for (int d = 0; d < s.n_dims; ++d) want[d] = s.ne[d];
    if (view.n_dims != s.n_dims || view.ne != want) {
      return CorruptFile("{}: shape {}, but the config needs {}", where, ShapeString(view), TorchShape(s));
    }
    if (view.dtype != DType::kF32 && view.dtype != DType::kF16 && view.dtype != DType::kBF16) {
      return Unsupported("{}: dtype {} is not supported (F32, F16, BF16)", where, DTypeName(view.dtype));
    }
    if (s.role == TensorRole::kNorm) {
      // HF: x̂ * (1 + w) with the sum in fp32; fold it once here.
      const int64_t n = view.elements();
      auto buf = std::make_unique<float[]>(static_cast<size_t>(n));
      const uint64_t esize = view.dtype == DType::kF32 ? 4 : 2;
      const auto* src = static_cast<const uint8_t*>(view.data);
      for (int64_t i = 0; i < n; ++i) buf[i] = 1.0f + LoadElement(src + i * esize, view.dtype);
      view.dtype = DType::kF32;
      view.data = buf.get();
      view.nbytes = static_cast<uint64_t>(n) * sizeof(float);
      owned_.push_back(std::move(buf));
    } else if (s.layer >= 0 || s.role == TensorRole::kEmbedding) {
      if (first_matrix) source_dtype_ = view.dtype;
      first_matrix = false;
    }
    slot = view;
    return Status::Ok();
  });
  if (!st.ok()) return st.WithContext(folder_);

  // Tensors nothing consumed: biases mean a different architecture; an LM
  // head is harmless; anything else is reported once.
  size_t unknown = 0;
  for (const SafetensorsModel::Entry& e : transformer_->tensors()) {
    const std::string& n = e.info->name;
    if (used.count(n)) continue;
    if (n.size() > 5 && n.compare(n.size() - 5, 5, ".bias") == 0) {
      return Unsupported("{}: model.safetensors: tensor {}: biases are not supported by this architecture",
                         folder_, n);
    }
    if (n == "lm_head.weight" || n == prefix + "lm_head.weight") continue;
    if (++unknown <= 3) Log(LogLevel::kWarning, "{}: ignoring unknown tensor {}", folder_, n);
  }
  if (unknown > 3) Log(LogLevel::kWarning, "{}: ignored {} unknown tensors in all", folder_, unknown);
  return Status::Ok();
}

Result<Vocab> HfModel::ReadVocab() const {
  const fs::path tj = fs::path(folder_) / "tokenizer.json";
  std::error_code ec;
  if (!fs::exists(tj, ec)) {
    if (fs::exists(fs::path(folder_) / "tokenizer.model", ec)) {
      return Unsupported("{}: no tokenizer.json (only tokenizer.model; gembed reads the Hugging Face tokenizer.json)",
                         folder_);
    }
    return NotFound("{}: no tokenizer.json", folder_);
  }
  auto vocab = ReadVocabFromHfJson(tj.string());
  if (!vocab.ok()) return vocab.status().WithContext(tj.string());
  const int32_t model_size = vocab->model_vocab_size > 0 ? vocab->model_vocab_size : vocab->size();
  const uint32_t n_vocab = folder_config_.model.n_vocab;
  if (static_cast<uint32_t>(model_size) > n_vocab) {
    return CorruptFile("{}: the tokenizer has {} tokens but config.json vocab_size (embedding rows) is {}",
                       folder_, model_size, n_vocab);
  }
  if (vocab->bos_id < 0 || vocab->eos_id < 0) {
    return Unsupported("{}: tokenizer.json defines no <bos> or <eos> (EmbeddingGemma needs both)", folder_);
  }
  return vocab;
}

Result<std::unique_ptr<Tokenizer>> HfModel::LoadTokenizer() const {
  GEMBED_ASSIGN_OR_RETURN(Vocab v, ReadVocab());
  const size_t n_vocab = folder_config_.model.n_vocab;
  if (v.tokens.size() > n_vocab) {
    size_t dropped = v.tokens.size() - n_vocab;
    v.tokens.resize(n_vocab);
    v.scores.resize(n_vocab);
    v.types.resize(n_vocab);
    if (v.model_vocab_size > static_cast<int32_t>(n_vocab)) v.model_vocab_size = static_cast<int32_t>(n_vocab);
    if (v.unk_id >= static_cast<int32_t>(n_vocab)) v.unk_id = -1;
    if (v.pad_id >= static_cast<int32_t>(n_vocab)) v.pad_id = -1;
    Log(LogLevel::kDebug, "{}: {} added token(s) beyond vocab_size {} have no embedding row; not used", folder_,
        dropped, n_vocab);
  }
  auto t = Tokenizer::FromVocab(std::move(v));
  if (!t.ok()) return t.status().WithContext(folder_);
  return t;
}

}  // namespace gembed
