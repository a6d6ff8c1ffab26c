#include "model/compress.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <numeric>
#include <set>

#include "base/half.h"
#include "base/thread_pool.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/ops.h"
#include "kernels/reference.h"
#include "model/forward.h"
#include "model/hf_config.h"
#include "model/hf_model.h"
#include "model/synthetic.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace gembed {
namespace {

// Rows [r0, r1) of a view of any dtype gembed reads, widened to fp32.
Status ViewRowsToF32(const TensorView& v, int64_t r0, int64_t r1, float* out) {
  const int64_t cols = v.cols();
  const std::optional<uint64_t> rb = DTypeRowBytes(v.dtype, static_cast<uint64_t>(cols));
  if (!rb) return InvalidArgument("rows of {} values are not whole {} blocks", cols, DTypeName(v.dtype));
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* src = static_cast<const uint8_t*>(v.data) + static_cast<uint64_t>(r) * *rb;
    float* dst = out + (r - r0) * cols;
    switch (v.dtype) {
      case DType::kF32:
        std::memcpy(dst, src, static_cast<size_t>(cols) * 4);
        break;
      case DType::kF16:
      case DType::kBF16:
        for (int64_t j = 0; j < cols; ++j) {
          uint16_t h;
          std::memcpy(&h, src + 2 * j, 2);
          dst[j] = v.dtype == DType::kF16 ? F16ToF32(h) : Bf16ToF32(h);
        }
        break;
      case DType::kQ8_0: {
        std::vector<BlockQ8_0> b(static_cast<size_t>(cols / 32));
        std::memcpy(b.data(), src, *rb);
        reference::Q8_0ToF32(b.data(), cols, 1.0f, dst);
        break;
      }
      case DType::kQ4_0: {
        std::vector<BlockQ4_0> b(static_cast<size_t>(cols / 32));
        std::memcpy(b.data(), src, *rb);
        reference::Q4_0ToF32(b.data(), cols, 1.0f, dst);
        break;
      }
      case DType::kQ4_1: {
        std::vector<BlockQ4_1> b(static_cast<size_t>(cols / 32));
        std::memcpy(b.data(), src, *rb);
        reference::Q4_1ToF32(b.data(), cols, 1.0f, dst);
        break;
      }
      default:
        return Unsupported("cannot read {} tensors", DTypeName(v.dtype));
    }
  }
  return Status::Ok();
}

// "blk.3.ffn_down.weight" -> {3, "ffn_down"}; global tensors -> {-1, "token_embd"}.
std::pair<int, std::string> SplitName(const std::string& name) {
  const std::optional<uint64_t> il = LayerIndexOf(name, "blk.");
  std::string rest = name;
  int layer = -1;
  if (il) {
    layer = static_cast<int>(*il);
    rest = name.substr(name.find('.', 4) + 1);
  }
  const size_t dot = rest.rfind(".weight");
  if (dot != std::string::npos) rest = rest.substr(0, dot);
  return {layer, rest};
}

const char* const kMatrixClasses[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

bool ClassMatches(const std::string& rule, const std::string& cls) {
  if (rule == "all") return true;
  if (rule == "attn") return cls.rfind("attn_", 0) == 0;
  if (rule == "ffn") return cls.rfind("ffn_", 0) == 0;
  return rule == cls;
}

bool IsMatrixClass(const std::string& c) {
  for (const char* m : kMatrixClasses)
    if (c == m) return true;
  return false;
}

float Fp16Round(float v) { return F16ToF32(F32ToF16(v)); }

// Weighted squared error of a block against its dequantised values.
double BlockError(const float* x, const float* w, const float* deq) {
  double e = 0;
  for (int j = 0; j < 32; ++j) {
    const double d = static_cast<double>(x[j]) - deq[j];
    e += static_cast<double>(w[j]) * d * d;
  }
  return e;
}

void Q4_0Block(const float* x, const float* w, BlockQ4_0* out) {
  reference::QuantizeRowQ4_0(x, 32, out);  // ggml's rule: the baseline candidate
  float deq[32];
  reference::Q4_0ToF32(out, 32, 1.0f, deq);
  double best = BlockError(x, w, deq);
  float amax = 0, mx = 0;
  for (int j = 0; j < 32; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      mx = x[j];
    }
  if (amax == 0.0f) return;
  int L[32];
  auto assign = [&](float d) {
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; ++j) L[j] = std::clamp(static_cast<int>(std::nearbyint(x[j] * id)), -8, 7);
  };
  auto try_levels = [&]() {
    double sxl = 0, sll = 0;
    for (int j = 0; j < 32; ++j) {
      sxl += static_cast<double>(w[j]) * x[j] * L[j];
      sll += static_cast<double>(w[j]) * L[j] * L[j];
    }
    if (sll <= 0) return;
    const float d = Fp16Round(static_cast<float>(sxl / sll));
    assign(d);
    float q[32];
    for (int j = 0; j < 32; ++j) q[j] = d * static_cast<float>(L[j]);
    const double e = BlockError(x, w, q);
    if (e < best) {
      best = e;
      out->d = F32ToF16(d);
      for (int j = 0; j < 16; ++j) out->qs[j] = static_cast<uint8_t>((L[j] + 8) | ((L[j + 16] + 8) << 4));
    }
  };
  for (float c = -8.0f; c <= -5.5f; c += 0.25f) {
    assign(mx / c);
    try_levels();
  }
  for (float c = 6.0f; c <= 7.5f; c += 0.5f) {
    assign(mx / c);
    try_levels();
  }
}

void Q4_1Block(const float* x, const float* w, BlockQ4_1* out) {
  reference::QuantizeRowQ4_1(x, 32, out);
  float deq[32];
  reference::Q4_1ToF32(out, 32, 1.0f, deq);
  double best = BlockError(x, w, deq);
  float mn = x[0], mx = x[0];
  for (int j = 1; j < 32; ++j) {
    mn = std::min(mn, x[j]);
    mx = std::max(mx, x[j]);
  }
  const float range = mx - mn;
  if (range == 0.0f) return;
  int L[32];
  auto assign = [&](float d, float m) {
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; ++j) L[j] = std::clamp(static_cast<int>(std::nearbyint((x[j] - m) * id)), 0, 15);
  };
  auto consider = [&](float d, float m) {
    float q[32];
    for (int j = 0; j < 32; ++j) q[j] = d * static_cast<float>(L[j]) + m;
    const double e = BlockError(x, w, q);
    if (e < best) {
      best = e;
      out->d = F32ToF16(d);
      out->m = F32ToF16(m);
      for (int j = 0; j < 16; ++j) out->qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
    }
  };
  // Least-squares (d, m) for the current levels, fp16-rounded, then levels
  // re-assigned for the rounded pair.
  auto refit = [&]() -> bool {
    double sw = 0, sq = 0, sqq = 0, sx = 0, sxq = 0;
    for (int j = 0; j < 32; ++j) {
      const double wj = w[j];
      sw += wj;
      sq += wj * L[j];
      sqq += wj * L[j] * L[j];
      sx += wj * x[j];
      sxq += wj * x[j] * L[j];
    }
    const double det = sw * sqq - sq * sq;
    if (!(det > 1e-30 * sw * sqq)) return false;
    const float d = Fp16Round(static_cast<float>((sw * sxq - sq * sx) / det));
    const float m = Fp16Round(static_cast<float>((sqq * sx - sq * sxq) / det));
    assign(d, m);
    consider(d, m);
    return true;
  };
  const float shrink[] = {0.0f, 0.03f, 0.07f, 0.12f};
  for (float a : shrink)
    for (float b : shrink) {
      const float lo = mn + a * range, hi = mx - b * range;
      const float d = Fp16Round((hi - lo) / 15.0f), m = Fp16Round(lo);
      assign(d, m);
      consider(d, m);
      for (int it = 0; it < 2; ++it)
        if (!refit()) break;
    }
}

std::vector<float> Weights32(const float* importance, int64_t b) {
  std::vector<float> w(32, 1.0f);
  if (importance != nullptr) {
    // A channel that never fired keeps a small weight, so its error is not free.
    double mean = 0;
    for (int j = 0; j < 32; ++j) mean += importance[b * 32 + j];
    mean /= 32;
    for (int j = 0; j < 32; ++j) w[static_cast<size_t>(j)] = static_cast<float>(importance[b * 32 + j] + 1e-3 * mean + 1e-30);
  }
  return w;
}

template <typename F>
Status RunParallel(int threads, int64_t n, F&& fn) {
  ThreadPool pool(std::max(1, threads));
  pool.ParallelFor(n, 16, [&](int64_t b, int64_t e, int) { fn(b, e); });
  return Status::Ok();
}

}  // namespace

void QuantizeRowQ4_0Search(const float* x, int64_t k, const float* importance, BlockQ4_0* out) {
  for (int64_t b = 0; b < k / 32; ++b) {
    const std::vector<float> w = Weights32(importance, b);
    Q4_0Block(x + b * 32, w.data(), out + b);
  }
}

void QuantizeRowQ4_1Search(const float* x, int64_t k, const float* importance, BlockQ4_1* out) {
  for (int64_t b = 0; b < k / 32; ++b) {
    const std::vector<float> w = Weights32(importance, b);
    Q4_1Block(x + b * 32, w.data(), out + b);
  }
}

// ---- FloatModel / SourceModel --------------------------------------------------

Result<ModelWeights> FloatModel::Views() const {
  ModelWeights w;
  Status st = ForEachTensor(config, w, [&](const TensorSpec& s, TensorView& slot) -> Status {
    auto it = tensors.find(s.name);
    if (it == tensors.end()) {
      if (!s.required) return Status::Ok();
      return CorruptFile("missing tensor {}", s.name);
    }
    const FloatTensor& t = it->second;
    if (t.spec.ne != s.ne || t.spec.n_dims != s.n_dims)
      return CorruptFile("tensor {} is {}x{}, the config wants {}x{}", s.name, t.spec.ne[0], t.spec.ne[1], s.ne[0],
                         s.ne[1]);
    slot.dtype = DType::kF32;
    slot.n_dims = s.n_dims;
    slot.ne = {s.ne[0], s.n_dims >= 2 ? s.ne[1] : 1, 1, 1};
    slot.data = t.data.data();
    slot.nbytes = t.data.size() * sizeof(float);
    return Status::Ok();
  });
  GEMBED_RETURN_IF_ERROR(st);
  return w;
}

SourceModel::~SourceModel() = default;

Result<std::unique_ptr<SourceModel>> SourceModel::Open(const std::string& path) {
  std::unique_ptr<SourceModel> m(new SourceModel());
  m->path_ = path;
  if (IsHfFolder(path)) {
    GEMBED_ASSIGN_OR_RETURN(m->hf_, HfModel::Open(path));
    m->config_ = m->hf_->config();
    m->weights_ = m->hf_->weights();
  } else {
    GEMBED_ASSIGN_OR_RETURN(m->file_, GgufFile::Open(path));
    auto config = ConfigFromGguf(*m->file_);
    if (!config.ok()) return config.status().WithContext(path);
    m->config_ = std::move(*config);
    auto weights = BindWeights(m->config_, *m->file_);
    if (!weights.ok()) return weights.status().WithContext(path);
    m->weights_ = std::move(*weights);
  }
  return m;
}

Result<std::unique_ptr<Tokenizer>> SourceModel::LoadTokenizer() const {
  if (hf_) return hf_->LoadTokenizer();
  return Tokenizer::FromGguf(*file_);
}

Status SourceModel::WriteOtherKeys(GgufWriter* w) const {
  if (hf_) {
    GEMBED_ASSIGN_OR_RETURN(Vocab vocab, hf_->ReadVocab());
    w->SetString("general.type", "model");
    std::filesystem::path p(path_);
    if (!p.has_filename()) p = p.parent_path();
    w->SetString("general.name", p.filename().string());
    w->SetU32("general.quantization_version", 2);
    GgufVocabOptions vo;
    vo.add_bos = vocab.add_bos;
    vo.add_eos = vocab.add_eos;
    GEMBED_RETURN_IF_ERROR(WriteGgufVocab(vocab, w, vo).WithContext(path_));
    WriteHfPromptTableToGguf(hf_->folder_config().prompts, w);
    return Status::Ok();
  }
  for (const auto& [key, value] : file_->metadata()) {
    if (key.rfind("gemma-embedding.", 0) == 0 || key == "general.architecture" || key == "general.alignment" ||
        key == "gembed.compression")
      continue;
    w->Set(key, value);
  }
  return Status::Ok();
}

Result<FloatModel> ToFloatModel(const SourceModel& source, int threads) {
  FloatModel fm;
  fm.config = source.config();
  ModelWeights w = source.weights();
  Status st = ForEachTensor(fm.config, w, [&](const TensorSpec& s, TensorView& view) -> Status {
    if (view.data == nullptr) return Status::Ok();  // optional and absent
    FloatTensor t;
    t.spec = s;
    const int64_t rows = s.n_dims >= 2 ? s.ne[1] : 1;
    t.data.resize(static_cast<size_t>(rows * s.ne[0]));
    Status row_status;
    std::mutex mu;
    GEMBED_RETURN_IF_ERROR(RunParallel(threads, rows, [&](int64_t r0, int64_t r1) {
      Status rs = ViewRowsToF32(view, r0, r1, t.data.data() + r0 * s.ne[0]);
      if (!rs.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        row_status = rs;
      }
    }));
    GEMBED_RETURN_IF_ERROR(row_status.WithContext(s.name));
    fm.tensors.emplace(s.name, std::move(t));
    return Status::Ok();
  });
  GEMBED_RETURN_IF_ERROR(st);
  return fm;
}

// ---- calibration ----------------------------------------------------------------

std::vector<float> CalibrationStats::MeanSquare(const std::string& name, int64_t cols) const {
  const auto [layer, cls] = SplitName(name);
  if (layer < 0 || static_cast<size_t>(layer) >= layers.size() || tokens == 0) return {};
  const LayerStats& l = layers[static_cast<size_t>(layer)];
  const std::vector<double>* v = nullptr;
  if (cls == "attn_q" || cls == "attn_k" || cls == "attn_v") v = &l.qkv_in;
  if (cls == "attn_output") v = &l.out_in;
  if (cls == "ffn_gate" || cls == "ffn_up") v = &l.ffn_in;
  if (cls == "ffn_down") v = &l.down_in;
  if (v == nullptr || static_cast<int64_t>(v->size()) != cols) return {};
  std::vector<float> out(v->size());
  for (size_t i = 0; i < v->size(); ++i) out[i] = static_cast<float>((*v)[i] / static_cast<double>(tokens));
  return out;
}

Result<CalibrationStats> Calibrate(const FloatModel& fm, const std::vector<std::vector<int32_t>>& sequences,
                                   int threads) {
  if (sequences.empty()) return InvalidArgument("calibration needs at least one text");
  GEMBED_ASSIGN_OR_RETURN(ModelWeights views, fm.Views());
  const ModelConfig& c = fm.config;
  ThreadPool pool(std::max(1, threads));
  Ops ops(GetKernelTable(SelectIsa()), pool);
  ModelOptions mo;
  mo.precision = Precision::kHigh;
  mo.pool = &pool;
  GEMBED_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Create(c, views, mo));
  CalibrationStats st;
  st.layers.resize(c.n_layer);
  for (LayerStats& l : st.layers) {
    l.qkv_in.assign(c.n_embd, 0.0);
    l.out_in.assign(c.q_width(), 0.0);
    l.ffn_in.assign(c.n_embd, 0.0);
    l.down_in.assign(c.n_ff, 0.0);
  }
  std::vector<float> prev;
  std::vector<double> influence(c.n_layer, 0.0);
  auto accumulate = [](std::vector<double>& acc, const float* data, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j) acc[static_cast<size_t>(j)] += static_cast<double>(data[r * cols + j]) * data[r * cols + j];
  };
  ForwardObserver observer = [&](const char* name, int layer, const float* data, int64_t rows, int64_t cols) {
    const std::string n = name;
    if (n == "inp_embd") {
      prev.assign(data, data + rows * cols);
      return;
    }
    if (layer < 0 || layer >= static_cast<int>(c.n_layer)) return;
    LayerStats& l = st.layers[static_cast<size_t>(layer)];
    if (n == "attn_norm") accumulate(l.qkv_in, data, rows, cols);
    if (n == "kqv_out") accumulate(l.out_in, data, rows, cols);
    if (n == "ffn_norm") accumulate(l.ffn_in, data, rows, cols);
    if (n == "ffn_geglu") accumulate(l.down_in, data, rows, cols);
    if (n == "l_out") {
      for (int64_t r = 0; r < rows; ++r) {
        double ab = 0, aa = 0, bb = 0;
        for (int64_t j = 0; j < cols; ++j) {
          const double a = prev[static_cast<size_t>(r * cols + j)], b = data[r * cols + j];
          ab += a * b;
          aa += a * a;
          bb += b * b;
        }
        influence[static_cast<size_t>(layer)] += aa > 0 && bb > 0 ? 1.0 - ab / std::sqrt(aa * bb) : 0.0;
      }
      prev.assign(data, data + rows * cols);
    }
  };
  constexpr int64_t kBatchTokens = 2048;
  std::vector<int32_t> ids, cu{0};
  std::vector<float> out;
  auto flush = [&]() -> Status {
    if (ids.empty()) return Status::Ok();
    out.resize(static_cast<size_t>(cu.size() - 1) * c.output_dim());
    GEMBED_RETURN_IF_ERROR(model->Forward(ops, ids, cu, out.data(), observer));
    st.tokens += static_cast<int64_t>(ids.size());
    st.sequences += static_cast<int64_t>(cu.size()) - 1;
    ids.clear();
    cu.assign(1, 0);
    return Status::Ok();
  };
  for (const std::vector<int32_t>& s : sequences) {
    if (s.empty() || s.size() > c.context_length)
      return InvalidArgument("a calibration sequence has {} tokens (1..{} allowed)", s.size(), c.context_length);
    if (!ids.empty() && static_cast<int64_t>(ids.size() + s.size()) > kBatchTokens) GEMBED_RETURN_IF_ERROR(flush());
    ids.insert(ids.end(), s.begin(), s.end());
    cu.push_back(static_cast<int32_t>(ids.size()));
  }
  GEMBED_RETURN_IF_ERROR(flush());
  for (uint32_t l = 0; l < c.n_layer; ++l)
    st.layers[l].influence = influence[l] / static_cast<double>(std::max<int64_t>(1, st.tokens));
  return st;
}

Result<std::vector<std::vector<int32_t>>> CalibrationSequences(const Tokenizer& tokenizer, const std::string& path,
                                                               int64_t max_tokens, int64_t max_texts) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot open calibration texts {}", path);
  std::vector<std::vector<int32_t>> out;
  std::string line;
  while (std::getline(in, line) && static_cast<int64_t>(out.size()) < max_texts) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::vector<int32_t> ids = tokenizer.EncodeWithSpecial(line);
    if (static_cast<int64_t>(ids.size()) > max_tokens) {
      const int32_t last = ids.back();
      ids.resize(static_cast<size_t>(max_tokens));
      ids.back() = last;  // keep EOS
    }
    out.push_back(std::move(ids));
  }
  if (out.empty()) return InvalidArgument("{}: no calibration texts (one per line)", path);
  return out;
}

// ---- writing ------------------------------------------------------------------------

Status ValidateKeepClasses(const std::vector<std::string>& keep) {
  for (const std::string& k : keep) {
    if (IsMatrixClass(k) || k == "attn" || k == "ffn" || k == "dense" || k == "embd" || k == "first" || k == "last")
      continue;
    if (k.size() > 5 && k.rfind("layer", 0) == 0 &&
        k.find_first_not_of("0123456789", 5) == std::string::npos)
      continue;
    return InvalidArgument("unknown tensor class '{}' (attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, "
                           "ffn_down, attn, ffn, dense, embd, first, last, layerN)",
                           k);
  }
  return Status::Ok();
}

DType TypePlan::TypeOf(const TensorSpec& spec, uint32_t n_layer) const {
  if (spec.role == TensorRole::kNorm) return DType::kF32;
  const auto [layer, cls] = SplitName(spec.name);
  bool kept = false;
  for (const std::string& k : keep) {
    if (spec.role == TensorRole::kEmbedding) {
      kept |= k == "embd";
      continue;
    }
    if (layer < 0) {
      kept |= k == "dense";
      continue;
    }
    kept |= ClassMatches(k, cls) && (IsMatrixClass(k) || k == "attn" || k == "ffn");
    kept |= k == "first" && layer == 0;
    kept |= k == "last" && layer + 1 == static_cast<int>(n_layer);
    kept |= k == fmt::format("layer{}", layer);
  }
  if (kept) return eight_bit;
  return spec.role == TensorRole::kEmbedding ? embedding : matrices;
}

Status WriteCompressedModel(const SourceModel& source, const FloatModel& model, const TypePlan& plan,
                            const std::string& note, const std::string& out_path, int threads) {
  GEMBED_RETURN_IF_ERROR(CheckWritableTarget(out_path));
  GEMBED_RETURN_IF_ERROR(model.config.Validate());
  GgufWriter w;
  WriteArchKeys(model.config, w);
  GEMBED_RETURN_IF_ERROR(source.WriteOtherKeys(&w));
  w.SetU32("general.file_type", LlamaFileType(plan.matrices));
  if (!note.empty()) w.SetString("gembed.compression", note);
  ModelWeights scratch;
  Status st = ForEachTensor(model.config, scratch, [&](const TensorSpec& s, TensorView&) -> Status {
    auto it = model.tensors.find(s.name);
    if (it == model.tensors.end()) {
      if (!s.required) return Status::Ok();
      return CorruptFile("missing tensor {}", s.name);
    }
    const FloatTensor& t = it->second;
    if (t.spec.ne != s.ne) return CorruptFile("tensor {} does not have the config's shape", s.name);
    const DType dt = plan.TypeOf(s, model.config.n_layer);
    const int64_t rows = t.rows(), cols = t.cols();
    const std::optional<uint64_t> rb = DTypeRowBytes(dt, static_cast<uint64_t>(cols));
    if (!rb) return InvalidArgument("{}: rows of {} values cannot be stored as {}", s.name, cols, DTypeName(dt));
    std::vector<uint8_t> bytes(*rb * static_cast<uint64_t>(rows));
    const std::vector<float> imp =
        plan.importance != nullptr ? plan.importance->MeanSquare(s.name, cols) : std::vector<float>{};
    const float* impp = imp.empty() ? nullptr : imp.data();
    Status enc;
    std::mutex enc_mu;
    GEMBED_RETURN_IF_ERROR(RunParallel(threads, rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* x = t.data.data() + r * cols;
        uint8_t* dst = bytes.data() + static_cast<uint64_t>(r) * *rb;
        if ((dt == DType::kQ4_0 || dt == DType::kQ4_1) && plan.search) {
          if (dt == DType::kQ4_0) {
            QuantizeRowQ4_0Search(x, cols, impp, reinterpret_cast<BlockQ4_0*>(dst));
          } else {
            QuantizeRowQ4_1Search(x, cols, impp, reinterpret_cast<BlockQ4_1*>(dst));
          }
        } else {
          auto b = EncodeTensor(x, cols, 1, dt);
          if (!b.ok()) {
            std::lock_guard<std::mutex> lock(enc_mu);
            enc = b.status();
            return;
          }
          std::memcpy(dst, b->data(), b->size());
        }
      }
    }));
    GEMBED_RETURN_IF_ERROR(enc.WithContext(s.name));
    std::vector<int64_t> ne(s.ne.begin(), s.ne.begin() + s.n_dims);
    return w.AddTensor(s.name, dt, std::move(ne), std::move(bytes));
  });
  GEMBED_RETURN_IF_ERROR(st);
  return w.WriteFile(out_path);
}

// ---- pruning ------------------------------------------------------------------------------

Status PruneFfn(FloatModel& model, int64_t width, const CalibrationStats* stats) {
  ModelConfig& c = model.config;
  if (width <= 0 || width > c.n_ff || width % 32 != 0)
    return InvalidArgument("FFN width {} must be a multiple of 32 in [32, {}]", width, c.n_ff);
  if (width == c.n_ff) return Status::Ok();
  const int64_t ff = c.n_ff, embd = c.n_embd;
  for (uint32_t l = 0; l < c.n_layer; ++l) {
    auto name = [l](const char* t) { return fmt::format("blk.{}.{}.weight", l, t); };
    auto gi = model.tensors.find(name("ffn_gate")), ui = model.tensors.find(name("ffn_up")),
         di = model.tensors.find(name("ffn_down"));
    if (gi == model.tensors.end() || ui == model.tensors.end() || di == model.tensors.end())
      return CorruptFile("layer {} has no FFN tensors", l);
    FloatTensor &gate = gi->second, &up = ui->second, &down = di->second;
    std::vector<double> score(static_cast<size_t>(ff), 0.0);
    const std::vector<float> ms = stats != nullptr ? stats->MeanSquare(name("ffn_down"), ff) : std::vector<float>{};
    for (int64_t ch = 0; ch < ff; ++ch) {
      double dn = 0;
      for (int64_t r = 0; r < embd; ++r) dn += static_cast<double>(down.data[r * ff + ch]) * down.data[r * ff + ch];
      dn = std::sqrt(dn);
      if (!ms.empty()) {
        score[static_cast<size_t>(ch)] = dn * std::sqrt(static_cast<double>(ms[static_cast<size_t>(ch)]));
      } else {
        double gu = 0;
        for (int64_t j = 0; j < embd; ++j)
          gu += static_cast<double>(gate.data[ch * embd + j]) * gate.data[ch * embd + j] +
                static_cast<double>(up.data[ch * embd + j]) * up.data[ch * embd + j];
        score[static_cast<size_t>(ch)] = dn * std::sqrt(gu);
      }
    }
    std::vector<int64_t> order(static_cast<size_t>(ff));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return score[static_cast<size_t>(a)] > score[static_cast<size_t>(b)]; });
    order.resize(static_cast<size_t>(width));
    std::sort(order.begin(), order.end());
    std::vector<float> g2(static_cast<size_t>(width * embd)), u2(g2.size()), d2(static_cast<size_t>(embd * width));
    for (int64_t i = 0; i < width; ++i) {
      const int64_t ch = order[static_cast<size_t>(i)];
      std::copy_n(gate.data.begin() + ch * embd, embd, g2.begin() + i * embd);
      std::copy_n(up.data.begin() + ch * embd, embd, u2.begin() + i * embd);
      for (int64_t r = 0; r < embd; ++r) d2[static_cast<size_t>(r * width + i)] = down.data[static_cast<size_t>(r * ff + ch)];
    }
    gate.data = std::move(g2);
    up.data = std::move(u2);
    down.data = std::move(d2);
    gate.spec.ne[1] = width;
    up.spec.ne[1] = width;
    down.spec.ne[0] = width;
  }
  c.n_ff = static_cast<uint32_t>(width);
  return Status::Ok();
}

Status DropLayers(FloatModel& model, std::vector<int> layers) {
  ModelConfig& c = model.config;
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  for (int l : layers)
    if (l < 0 || l >= static_cast<int>(c.n_layer)) return InvalidArgument("layer {} does not exist (0..{})", l, c.n_layer - 1);
  if (layers.size() >= c.n_layer) return InvalidArgument("cannot drop all {} layers", c.n_layer);
  std::map<std::string, FloatTensor> out;
  std::vector<bool> sliding;
  int next = 0;
  for (int l = 0; l < static_cast<int>(c.n_layer); ++l) {
    const bool drop = std::binary_search(layers.begin(), layers.end(), l);
    if (!drop) sliding.push_back(c.layer_is_sliding[static_cast<size_t>(l)]);
    const std::string prefix = fmt::format("blk.{}.", l);
    for (auto it = model.tensors.begin(); it != model.tensors.end();) {
      if (it->first.rfind(prefix, 0) != 0) {
        ++it;
        continue;
      }
      if (!drop) {
        FloatTensor t = std::move(it->second);
        t.spec.name = fmt::format("blk.{}.{}", next, it->first.substr(prefix.size()));
        t.spec.layer = next;
        out.emplace(t.spec.name, std::move(t));
      }
      it = model.tensors.erase(it);
    }
    if (!drop) ++next;
  }
  for (auto& [name, t] : out) model.tensors.emplace(name, std::move(t));
  c.n_layer = static_cast<uint32_t>(next);
  c.layer_is_sliding = sliding;
  return Status::Ok();
}

Result<std::vector<int>> LeastInfluentialLayers(const CalibrationStats& stats, int count) {
  const int n = static_cast<int>(stats.layers.size());
  if (count < 0 || count >= n) return InvalidArgument("cannot drop {} of {} layers", count, n);
  std::vector<int> order;
  for (int l = 0; l + 1 < n; ++l) order.push_back(l);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return stats.layers[static_cast<size_t>(a)].influence < stats.layers[static_cast<size_t>(b)].influence;
  });
  order.resize(static_cast<size_t>(count));
  std::sort(order.begin(), order.end());
  return order;
}

Result<std::vector<BlockSparsity>> ParseSparsityRules(const std::string& text, int64_t rows, int64_t cols) {
  std::vector<BlockSparsity> rules;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = text.find(',', pos);
    const std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string::npos) return InvalidArgument("sparsity rule '{}' is not CLASS=RATIO", item);
    BlockSparsity r;
    r.matrix_class = item.substr(0, eq);
    if (!(IsMatrixClass(r.matrix_class) || r.matrix_class == "attn" || r.matrix_class == "ffn" ||
          r.matrix_class == "all"))
      return InvalidArgument("sparsity class '{}' is not a matrix class, attn, ffn or all", r.matrix_class);
    char* end = nullptr;
    const std::string num = item.substr(eq + 1);
    r.ratio = std::strtod(num.c_str(), &end);
    if (num.empty() || end == nullptr || *end != '\0' || !(r.ratio >= 0.0 && r.ratio < 1.0))
      return InvalidArgument("sparsity ratio '{}' must be a number in [0, 1)", num);
    r.rows = rows;
    r.cols = cols;
    rules.push_back(r);
  }
  if (rules.empty()) return InvalidArgument("no sparsity rules in '{}'", text);
  return rules;
}

Result<double> ApplyBlockSparsity(FloatModel& model, const std::vector<BlockSparsity>& rules, SparsityScore score,
                                  const CalibrationStats* stats, SparsityGroup group) {
  if (score == SparsityScore::kWanda && stats == nullptr)
    return InvalidArgument("the Wanda score needs calibration texts");
  int64_t zeroed = 0, total = 0;
  for (auto& [name, t] : model.tensors) {
    if (t.spec.role != TensorRole::kMatrix || t.spec.layer < 0) continue;
    const std::string cls = SplitName(name).second;
    const BlockSparsity* rule = nullptr;
    for (const BlockSparsity& r : rules)
      if (ClassMatches(r.matrix_class, cls)) rule = &r;  // the last matching rule wins
    total += t.rows() * t.cols();
    if (rule == nullptr || rule->ratio <= 0) continue;
    if (rule->rows <= 0 || rule->cols <= 0 || rule->rows % 16 != 0 || rule->cols % 32 != 0)
      return InvalidArgument("block {}x{}: rows must be a multiple of 16 and columns of 32", rule->rows, rule->cols);
    const int64_t rows = t.rows(), cols = t.cols();
    if (rows % 16 != 0 || cols % 32 != 0)
      return Unsupported("{} is {}x{}: block sparsity needs multiples of 16 rows and 32 columns", name, rows, cols);
    const std::vector<float> ms = stats != nullptr ? stats->MeanSquare(name, cols) : std::vector<float>{};
    if (score == SparsityScore::kWanda && ms.empty()) return Internal("no calibration statistics for {}", name);
    std::vector<double> colw(static_cast<size_t>(cols), 1.0);
    if (score == SparsityScore::kWanda)
      for (int64_t j = 0; j < cols; ++j) colw[static_cast<size_t>(j)] = std::sqrt(static_cast<double>(ms[static_cast<size_t>(j)]));
    const int64_t br = (rows + rule->rows - 1) / rule->rows, bc = (cols + rule->cols - 1) / rule->cols;
    std::vector<double> bscore(static_cast<size_t>(br * bc), 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j)
        bscore[static_cast<size_t>((r / rule->rows) * bc + j / rule->cols)] +=
            std::fabs(t.data[static_cast<size_t>(r * cols + j)]) * colw[static_cast<size_t>(j)];
    // Each group (one block row, or the whole matrix) loses the same share of its blocks: the lowest scores.
    const int64_t group_size = group == SparsityGroup::kBlockRow ? bc : br * bc;
    const int64_t nz = static_cast<int64_t>(std::floor(rule->ratio * static_cast<double>(group_size)));
    std::vector<int64_t> order(static_cast<size_t>(group_size));
    for (int64_t g0 = 0; g0 < br * bc; g0 += group_size) {
      std::iota(order.begin(), order.end(), g0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        return bscore[static_cast<size_t>(a)] < bscore[static_cast<size_t>(b)];
      });
      for (int64_t i = 0; i < nz; ++i) {
        const int64_t blk = order[static_cast<size_t>(i)], rb = blk / bc, cb = blk % bc;
        for (int64_t r = rb * rule->rows; r < std::min(rows, (rb + 1) * rule->rows); ++r)
          for (int64_t j = cb * rule->cols; j < std::min(cols, (cb + 1) * rule->cols); ++j) {
            t.data[static_cast<size_t>(r * cols + j)] = 0.0f;
            ++zeroed;
          }
      }
    }
  }
  return total > 0 ? static_cast<double>(zeroed) / static_cast<double>(total) : 0.0;
}

}  // namespace gembed
