#include "model/synthetic.h"

#include <cmath>
#include <cstring>
#include <utility>

#include "base/half.h"
#include "base/log.h"
#include "base/thread_pool.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "kernels/reference.h"
#include "tokenizer/vocab.h"

namespace gembed {
namespace {

// Scales of the random weights. They keep a 24-layer stack finite and make
// different texts clearly different (see test_model_synth.cc).
constexpr double kEmbeddingStd = 0.03;
constexpr double kMatrixGain = 1.0;  // std = gain / sqrt(fan_in)
constexpr double kNormSpread = 0.1;  // gain = 1 + N(0, spread^2)

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// xoshiro256** seeded through splitmix64: one independent stream per row.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& w : s_) w = SplitMix64(seed);
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in (0, 1]: 53 random bits, never 0 (log is taken).
  double Uniform() { return (static_cast<double>(Next() >> 11) + 1.0) * 0x1.0p-53; }
  // Standard normal pairs by Box-Muller.
  void Normal2(double& a, double& b) {
    const double r = std::sqrt(-2.0 * std::log(Uniform()));
    const double t = 2.0 * M_PI * Uniform();
    a = r * std::cos(t);
    b = r * std::sin(t);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};


// Tensor name pattern "blk.N.x.weight" etc. all count as their own stream.
uint64_t TensorSeed(uint64_t seed, const std::string& name) {
  uint64_t s = seed ^ Fnv1a(name);
  return SplitMix64(s);
}

}  // namespace

SyntheticOptions SyntheticOptions::Tiny() {
  SyntheticOptions o;
  o.n_layer = 6;
  o.n_embd = 128;
  o.n_ff = 256;
  o.n_head = 2;
  o.n_head_kv = 1;
  o.head_dim = 64;
  return o;
}

uint32_t LlamaFileType(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 0;   // LLAMA_FTYPE_ALL_F32
    case DType::kF16: return 1;   // LLAMA_FTYPE_MOSTLY_F16
    case DType::kQ4_0: return 2;  // LLAMA_FTYPE_MOSTLY_Q4_0
    case DType::kQ4_1: return 3;  // LLAMA_FTYPE_MOSTLY_Q4_1
    case DType::kQ8_0: return 7;  // LLAMA_FTYPE_MOSTLY_Q8_0
    case DType::kBF16: return 32;  // LLAMA_FTYPE_MOSTLY_BF16
    default: return 1024;         // LLAMA_FTYPE_GUESSED
  }
}

ModelConfig SyntheticConfig(const SyntheticOptions& o, uint32_t n_vocab) {
  ModelConfig c;
  c.n_vocab = n_vocab;
  c.context_length = o.context_length;
  c.n_embd = o.n_embd;
  c.n_layer = o.n_layer;
  c.n_ff = o.n_ff;
  c.n_head = o.n_head;
  c.n_head_kv = o.n_head_kv;
  c.head_dim = o.head_dim;
  c.rms_eps = 1e-6f;
  c.rope_base = 1e6f;
  c.rope_base_swa = 1e4f;
  c.sliding_window = o.sliding_window;
  c.layer_is_sliding.resize(o.n_layer);
  for (uint32_t il = 0; il < o.n_layer; ++il) c.layer_is_sliding[il] = il % 6 < 5;
  c.pooling = PoolingType::kMean;
  c.dense_hidden = o.dense ? (o.dense_hidden ? o.dense_hidden : 4 * o.n_embd) : 0;
  return c;
}

void SyntheticTensorValues(uint64_t seed, const TensorSpec& spec, std::vector<float>& out, ThreadPool* pool) {
  const int64_t cols = spec.ne[0], rows = spec.n_dims > 1 ? spec.ne[1] : 1;
  out.resize(static_cast<size_t>(cols * rows));
  double mean = 0.0, std = 1.0;
  switch (spec.role) {
    case TensorRole::kEmbedding: std = kEmbeddingStd; break;
    case TensorRole::kMatrix: std = kMatrixGain / std::sqrt(static_cast<double>(cols)); break;
    case TensorRole::kNorm: mean = 1.0; std = kNormSpread; break;
  }
  const uint64_t tseed = TensorSeed(seed, spec.name);
  auto fill_rows = [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      uint64_t rs = tseed + static_cast<uint64_t>(r) * 0xd1b54a32d192ed03ull;
      Rng rng(SplitMix64(rs));
      float* row = out.data() + r * cols;
      for (int64_t j = 0; j < cols; j += 2) {
        double a, b;
        rng.Normal2(a, b);
        row[j] = static_cast<float>(mean + std * a);
        if (j + 1 < cols) row[j + 1] = static_cast<float>(mean + std * b);
      }
    }
  };
  if (pool != nullptr && pool->size() > 1 && rows >= 64) {
    pool->ParallelFor(rows, 16, fill_rows);
  } else {
    fill_rows(0, rows, 0);
  }
}

Result<std::vector<uint8_t>> EncodeTensor(const float* v, int64_t cols, int64_t rows, DType dtype) {
  const auto row_bytes = DTypeRowBytes(dtype, static_cast<uint64_t>(cols));
  if (!row_bytes) {
    return InvalidArgument("a row of {} values cannot be stored as {} (blocks of {})", cols, DTypeName(dtype),
                           DTypeBlockElems(dtype));
  }
  std::vector<uint8_t> bytes(*row_bytes * static_cast<uint64_t>(rows));
  const size_t n = static_cast<size_t>(cols * rows);
  switch (dtype) {
    case DType::kF32:
      std::memcpy(bytes.data(), v, n * 4);
      break;
    case DType::kF16:
    case DType::kBF16: {
      auto* dst = reinterpret_cast<uint16_t*>(bytes.data());
      for (size_t i = 0; i < n; ++i) dst[i] = dtype == DType::kF16 ? F32ToF16(v[i]) : F32ToBf16(v[i]);
      break;
    }
    case DType::kQ8_0:
      for (int64_t r = 0; r < rows; ++r) {
        reference::QuantizeRowQ8_0(v + r * cols, cols, reinterpret_cast<BlockQ8_0*>(bytes.data() + r * *row_bytes));
      }
      break;
    case DType::kQ4_0:
      for (int64_t r = 0; r < rows; ++r) {
        reference::QuantizeRowQ4_0(v + r * cols, cols, reinterpret_cast<BlockQ4_0*>(bytes.data() + r * *row_bytes));
      }
      break;
    case DType::kQ4_1:
      for (int64_t r = 0; r < rows; ++r) {
        reference::QuantizeRowQ4_1(v + r * cols, cols, reinterpret_cast<BlockQ4_1*>(bytes.data() + r * *row_bytes));
      }
      break;
    default:
      return Unsupported("synthetic models cannot be written as {}", DTypeName(dtype));
  }
  return bytes;
}

Status WriteSyntheticModel(const std::string& path, const std::string& tokenizer_json,
                           const SyntheticOptions& o) {
  GEMBED_RETURN_IF_ERROR(ValidateThreadCount(o.threads));
  GEMBED_RETURN_IF_ERROR(CheckWritableTarget(path));  // before the work, not after
  if (o.dtype != DType::kF32 && o.dtype != DType::kF16 && o.dtype != DType::kBF16 && o.dtype != DType::kQ8_0 &&
      o.dtype != DType::kQ4_0 && o.dtype != DType::kQ4_1) {
    return InvalidArgument("type {} is not one of f32, f16, bf16, q8_0, q4_0, q4_1", DTypeName(o.dtype));
  }
  if (o.n_layer < 6) {
    return InvalidArgument("{} layers: at least 6 are needed (layer 5 is the first global layer; "
                           "llama.cpp cannot run a model without one)", o.n_layer);
  }

  // Vocabulary first: its size fixes the embedding table.
  GEMBED_ASSIGN_OR_RETURN(Vocab vocab, ReadVocabFromHfJson(tokenizer_json));
  const uint32_t n_vocab = static_cast<uint32_t>(vocab.model_vocab_size > 0 ? vocab.model_vocab_size : vocab.size());
  ModelConfig c = SyntheticConfig(o, n_vocab);
  GEMBED_RETURN_IF_ERROR(c.Validate().WithContext("synthetic model options"));
  if (o.dtype == DType::kQ8_0 || o.dtype == DType::kQ4_0 || o.dtype == DType::kQ4_1) {
    for (const auto& [what, n] : {std::pair<const char*, uint32_t>{"n_embd", c.n_embd}, {"n_ff", c.n_ff},
                                  {"n_head * head_dim", c.q_width()}, {"dense width", c.dense_hidden}}) {
      if (n % kQ8BlockElems != 0) {
        return InvalidArgument("{} needs {} to be a multiple of 32 (it is {})", DTypeName(o.dtype), what, n);
      }
    }
  }

  GgufWriter w;
  WriteArchKeys(c, w);  // general.architecture first, then gemma-embedding.*
  w.SetString("general.type", "model");
  w.SetString("general.name", "EmbeddingGemma synthetic");
  w.SetString("general.description",
              fmt::format("gembed synth: random weights (seed {}), real Gemma3 vocabulary", o.seed));
  w.SetU32("general.file_type", LlamaFileType(o.dtype));
  w.SetU32("general.quantization_version", 2);
  GgufVocabOptions vocab_options;
  vocab_options.add_bos = true;  // EmbeddingGemma: <bos> text <eos>
  vocab_options.add_eos = true;
  GEMBED_RETURN_IF_ERROR(WriteGgufVocab(vocab, &w, vocab_options));

  if (!o.vocab_only) {
    ThreadPool pool(o.threads);  // <= 0: all cores
    std::vector<float> values;
    for (const TensorSpec& spec : TensorSpecs(c)) {
      SyntheticTensorValues(o.seed, spec, values, &pool);
      const DType dtype = spec.role == TensorRole::kNorm ? DType::kF32 : o.dtype;
      const int64_t rows = spec.n_dims > 1 ? spec.ne[1] : 1;
      GEMBED_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, EncodeTensor(values.data(), spec.ne[0], rows, dtype));
      std::vector<int64_t> ne(spec.ne.begin(), spec.ne.begin() + spec.n_dims);
      GEMBED_RETURN_IF_ERROR(w.AddTensor(spec.name, dtype, std::move(ne), std::move(bytes)));
    }
  }
  return w.WriteFile(path);
}

}  // namespace gembed
