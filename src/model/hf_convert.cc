#include "model/hf_convert.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <thread>
#include <vector>

#include "base/half.h"
#include "base/thread_pool.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "model/hf_config.h"
#include "model/hf_model.h"
#include "model/synthetic.h"
#include "model/weights.h"
#include "tokenizer/vocab.h"

namespace gembed {
namespace {

// Converts rows [r0, r1) of an F32 / F16 / BF16 view to float.
void RowsToF32(const TensorView& v, int64_t r0, int64_t r1, float* out) {
  const int64_t cols = v.cols();
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* src = v.row(r);
    float* dst = out + (r - r0) * cols;
    switch (v.dtype) {
      case DType::kF32:
        std::memcpy(dst, src, static_cast<size_t>(cols) * sizeof(float));
        break;
      case DType::kF16:
        for (int64_t j = 0; j < cols; ++j) {
          uint16_t h;
          std::memcpy(&h, src + 2 * j, 2);
          dst[j] = F16ToF32(h);
        }
        break;
      default:  // BF16 (HfModel admits F32 / F16 / BF16 only)
        for (int64_t j = 0; j < cols; ++j) {
          uint16_t h;
          std::memcpy(&h, src + 2 * j, 2);
          dst[j] = Bf16ToF32(h);
        }
        break;
    }
  }
}

// Encodes `view` as `dtype` bytes, rows split over `threads` threads. Each
// row's bytes depend only on that row, so the result is independent of the
// thread count.
Result<std::vector<uint8_t>> Encode(const TensorView& view, DType dtype, int threads) {
  const int64_t rows = view.rows(), cols = view.cols();
  const auto row_bytes = DTypeRowBytes(dtype, static_cast<uint64_t>(cols));
  if (!row_bytes) return InvalidArgument("cannot encode rows of {} values as {}", cols, DTypeName(dtype));
  std::vector<uint8_t> out(*row_bytes * static_cast<uint64_t>(rows));
  const int n = static_cast<int>(std::clamp<int64_t>(rows / 64, 1, std::max(threads, 1)));
  std::vector<Status> status(static_cast<size_t>(n));
  auto work = [&](int t) {
    const int64_t r0 = rows * t / n, r1 = rows * (t + 1) / n;
    constexpr int64_t kChunk = 256;  // rows converted to float at a time
    std::vector<float> tmp;
    for (int64_t a = r0; a < r1; a += kChunk) {
      const int64_t b = std::min(r1, a + kChunk);
      tmp.resize(static_cast<size_t>((b - a) * cols));
      RowsToF32(view, a, b, tmp.data());
      auto bytes = EncodeTensor(tmp.data(), cols, b - a, dtype);
      if (!bytes.ok()) {
        status[t] = bytes.status();
        return;
      }
      std::memcpy(out.data() + static_cast<uint64_t>(a) * *row_bytes, bytes->data(), bytes->size());
    }
  };
  std::vector<std::thread> pool;
  try {
    for (int t = 1; t < n; ++t) pool.emplace_back(work, t);
  } catch (const std::system_error& e) {
    // The OS refused a thread: join those started (a joinable std::thread
    // must not be destroyed) and report it.
    for (auto& th : pool) th.join();
    return Status(StatusCode::kResourceExhausted, fmt::format("cannot start an encoding thread: {}", e.what()));
  }
  work(0);
  for (auto& th : pool) th.join();
  for (const Status& s : status) GEMBED_RETURN_IF_ERROR(s);
  return out;
}

}  // namespace

Result<HfConvertStats> ConvertHfFolderToGguf(const std::string& folder, const std::string& out_path,
                                             const HfConvertOptions& options) {
  const DType type = options.type;
  if (type != DType::kF32 && type != DType::kF16 && type != DType::kBF16 && type != DType::kQ8_0) {
    return InvalidArgument("output type {} is not one of f32, f16, bf16, q8_0", DTypeName(type));
  }
  GEMBED_RETURN_IF_ERROR(ValidateThreadCount(options.threads));
  GEMBED_RETURN_IF_ERROR(CheckWritableTarget(out_path));  // before the work, not after
  GEMBED_ASSIGN_OR_RETURN(std::unique_ptr<HfModel> model, HfModel::Open(folder));
  GEMBED_ASSIGN_OR_RETURN(Vocab vocab, model->ReadVocab());
  const ModelConfig& c = model->config();
  const int32_t model_size = vocab.model_vocab_size > 0 ? vocab.model_vocab_size : vocab.size();
  if (static_cast<uint32_t>(model_size) != c.n_vocab) {
    return Unsupported("{}: the tokenizer has {} tokens but vocab_size is {}; a GGUF needs one embedding row per "
                       "token (padding the vocabulary is not supported)",
                       folder, model_size, c.n_vocab);
  }
  const std::vector<TensorSpec> specs = TensorSpecs(c);
  if (type == DType::kQ8_0) {
    for (const TensorSpec& s : specs) {
      if (s.role != TensorRole::kNorm && s.ne[0] % kQ8BlockElems != 0) {
        return InvalidArgument("q8_0 needs rows of a multiple of 32 values; {} has {}", s.name, s.ne[0]);
      }
    }
  }
  const int threads = ResolveThreadCount(options.threads);

  GgufWriter w;
  WriteArchKeys(c, w);  // general.architecture first, then gemma-embedding.*
  w.SetString("general.type", "model");
  std::string name = options.name;
  if (name.empty()) {
    std::filesystem::path p(folder);
    if (!p.has_filename()) p = p.parent_path();  // "dir/" -> "dir"
    name = p.filename().string();
  }
  w.SetString("general.name", name);
  w.SetU32("general.file_type", LlamaFileType(type));
  w.SetU32("general.quantization_version", 2);
  GgufVocabOptions vocab_options;
  vocab_options.add_bos = vocab.add_bos;  // EmbeddingGemma's tokenizer: true / true
  vocab_options.add_eos = vocab.add_eos;
  GEMBED_RETURN_IF_ERROR(WriteGgufVocab(vocab, &w, vocab_options).WithContext(folder));
  // The folder's --task names (config_sentence_transformers.json), so the GGUF
  // resolves them as the folder does; no keys when the folder has no table.
  WriteHfPromptTableToGguf(model->folder_config().prompts, &w);

  HfConvertStats stats;
  ModelWeights weights = model->weights();  // views; norms already hold 1 + w
  Status st = ForEachTensor(c, weights, [&](const TensorSpec& s, TensorView& view) -> Status {
    if (view.data == nullptr) return Internal("tensor {} is not bound", s.name);
    const DType dtype = s.role == TensorRole::kNorm ? DType::kF32 : type;
    GEMBED_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, Encode(view, dtype, threads));
    stats.tensor_bytes += bytes.size();
    ++stats.tensors;
    std::vector<int64_t> ne(s.ne.begin(), s.ne.begin() + s.n_dims);
    return w.AddTensor(s.name, dtype, std::move(ne), std::move(bytes));
  });
  GEMBED_RETURN_IF_ERROR(st);
  GEMBED_RETURN_IF_ERROR(w.WriteFile(out_path));
  return stats;
}

}  // namespace gembed
