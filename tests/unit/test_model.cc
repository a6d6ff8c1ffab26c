// The synthetic-model generator and the forward pass, on tiny models written
// to a temp dir: the file layout llama.cpp's converter produces, seeded
// weights shared across dtypes, finite activations over 24 layers, distinct
// vectors for distinct inputs, the same vectors on every ISA level and
// thread count, and clean errors for bad batches. (Agreement with an
// independent float64 forward is tests/python's NumPy oracle.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <unistd.h>

#include "base/half.h"
#include "base/thread_pool.h"
#include "engine/engine.h"
#include "io/gguf.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/ops.h"
#include "model/config.h"
#include "model/forward.h"
#include "model/synthetic.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"

namespace gembed {
namespace {

namespace fs = std::filesystem;

std::string SharedDir() {
  const char* env = std::getenv("GEMBED_SHARED_DIR");
  return env && *env ? env : GEMBED_DEFAULT_SHARED_DIR;
}
std::string TokenizerJson() { return SharedDir() + "/gemma3-tokenizer/tokenizer.json"; }
bool HaveTokenizer() { return fs::exists(TokenizerJson()); }

double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

// Models shared by the tests of this file, written once.
class Models {
 public:
  static Models& Get() {
    static Models m;
    return m;
  }
  const fs::path& dir() const { return dir_; }
  // tiny-<type>[-nodense|-deep] for seed 7.
  std::string Path(const std::string& name) {
    auto it = paths_.find(name);
    if (it != paths_.end()) return it->second;
    SyntheticOptions o = SyntheticOptions::Tiny();
    o.seed = 7;
    std::string type = name.substr(5);  // after "tiny-"
    if (auto p = type.find('-'); p != std::string::npos) {
      const std::string variant = type.substr(p + 1);
      type = type.substr(0, p);
      if (variant == "nodense") o.dense = false;
      if (variant == "deep") o.n_layer = 24;
    }
    o.dtype = *DTypeFromName(type);
    const std::string path = (dir_ / (name + ".gguf")).string();
    const Status st = WriteSyntheticModel(path, TokenizerJson(), o);
    EXPECT_TRUE(st.ok()) << st.ToString();
    paths_[name] = path;
    return path;
  }
  ~Models() { fs::remove_all(dir_); }

 private:
  Models() {
    dir_ = fs::temp_directory_path() / ("gembed_test_model_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  fs::path dir_;
  std::map<std::string, std::string> paths_;
};

class SynthFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveTokenizer()) GTEST_SKIP() << "Gemma3 tokenizer not found at " << TokenizerJson() << " (set GEMBED_SHARED_DIR)";
  }
};

// ---- generator values (no files) -------------------------------------------

TensorSpec MakeSpec(const std::string& name, int64_t cols, int64_t rows, TensorRole role) {
  TensorSpec s;
  s.name = name;
  s.n_dims = rows > 1 ? 2 : 1;
  s.ne = {cols, rows};
  s.role = role;
  return s;
}

TEST(SynthValuesTest, SeededAndIndependentOfThreads) {
  const TensorSpec spec = MakeSpec("blk.0.attn_q.weight", 96, 300, TensorRole::kMatrix);
  std::vector<float> a, b, c, d;
  ThreadPool pool(3);
  SyntheticTensorValues(42, spec, a);
  SyntheticTensorValues(42, spec, b, &pool);
  EXPECT_EQ(a, b);  // same values whatever the thread count
  SyntheticTensorValues(43, spec, c);
  EXPECT_NE(a, c);  // the seed matters
  TensorSpec other = spec;
  other.name = "blk.1.attn_q.weight";
  SyntheticTensorValues(42, other, d);
  EXPECT_NE(a, d);  // every tensor has its own stream
}

void ExpectMoments(const std::vector<float>& v, double mean, double stddev) {
  double s = 0, ss = 0;
  for (float x : v) {
    ASSERT_TRUE(std::isfinite(x));
    s += x;
  }
  const double m = s / v.size();
  for (float x : v) ss += (x - m) * (x - m);
  const double sd = std::sqrt(ss / v.size());
  EXPECT_NEAR(m, mean, 5 * stddev / std::sqrt(double(v.size())) + 1e-12);
  EXPECT_NEAR(sd, stddev, 0.02 * stddev);
}

TEST(SynthValuesTest, RealisticScales) {
  std::vector<float> v;
  ThreadPool pool(2);
  SyntheticTensorValues(1, MakeSpec("token_embd.weight", 128, 4096, TensorRole::kEmbedding), v, &pool);
  ExpectMoments(v, 0.0, 0.03);
  SyntheticTensorValues(1, MakeSpec("blk.0.ffn_down.weight", 256, 512, TensorRole::kMatrix), v, &pool);
  ExpectMoments(v, 0.0, 1.0 / 16.0);  // N(0, 1/fan_in), fan_in = ne0 = 256
  SyntheticTensorValues(1, MakeSpec("blk.0.ffn_norm.weight", 50000, 1, TensorRole::kNorm), v);
  ExpectMoments(v, 1.0, 0.1);  // gains around 1 ("1 + w" folded in)
}

TEST(SynthValuesTest, Q8_0FollowsGgmlReferenceRule) {
  // Block 0: amax 127 -> d = 1, so q = roundf(x): halves round away from zero
  // (2.5 -> 3, not RNE's 2). Block 1: all zero -> d = 0, q = 0. Block 2:
  // amax 1 -> d = 1/127, whose fp16 is 0x2008 (2^-7 * (1 + 8/1024)).
  std::vector<float> x(96, 0.0f);
  const float b0[] = {127.0f, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, -126.4f, 0.49f};
  const int q0[] = {127, 1, -1, 2, 3, -3, -126, 0};
  for (int j = 0; j < 8; ++j) x[j] = b0[j];
  x[64] = 1.0f;
  x[65] = -1.0f;
  x[66] = 0.5f / 127.0f * 1.0001f;  // just above half a step -> 1
  auto bytes = EncodeTensor(x.data(), 96, 1, DType::kQ8_0);
  ASSERT_TRUE(bytes.ok());
  ASSERT_EQ(bytes->size(), 3 * sizeof(BlockQ8_0));
  const auto* blk = reinterpret_cast<const BlockQ8_0*>(bytes->data());
  EXPECT_EQ(blk[0].d, 0x3c00);  // fp16 1.0
  for (int j = 0; j < 8; ++j) EXPECT_EQ(blk[0].qs[j], q0[j]) << j;
  for (int j = 8; j < 32; ++j) EXPECT_EQ(blk[0].qs[j], 0);
  EXPECT_EQ(blk[1].d, 0);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(blk[1].qs[j], 0);
  EXPECT_EQ(blk[2].d, 0x2008);
  EXPECT_EQ(blk[2].qs[0], 127);
  EXPECT_EQ(blk[2].qs[1], -127);
  EXPECT_EQ(blk[2].qs[2], 1);
  // A row that is not a whole number of blocks cannot be Q8_0.
  EXPECT_FALSE(EncodeTensor(x.data(), 40, 1, DType::kQ8_0).ok());
}

// ---- files ---------------------------------------------------------------------

TEST_F(SynthFileTest, KeysAndTensorsOfTheConverter) {
  auto f = GgufFile::Open(Models::Get().Path("tiny-q8_0"));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const GgufFile& g = **f;
  EXPECT_EQ(*g.GetString("general.architecture"), "gemma-embedding");
  EXPECT_EQ(*g.GetU32("general.file_type"), 7u);
  EXPECT_EQ(*g.GetU32("general.quantization_version"), 2u);
  const std::pair<const char*, uint32_t> u32s[] = {
      {"context_length", 2048}, {"embedding_length", 128}, {"block_count", 6},
      {"feed_forward_length", 256}, {"attention.head_count", 2}, {"attention.head_count_kv", 1},
      {"attention.key_length", 64}, {"attention.value_length", 64}, {"attention.sliding_window", 512},
      {"pooling_type", 1}, {"dense_2_feat_in", 128}, {"dense_2_feat_out", 512},
      {"dense_3_feat_in", 512}, {"dense_3_feat_out", 128}};
  for (const auto& [key, want] : u32s) {
    auto v = g.GetU32(ArchKey(key));
    ASSERT_TRUE(v.ok()) << key;
    EXPECT_EQ(*v, want) << key;
  }
  EXPECT_EQ(*g.GetF32(ArchKey("rope.freq_base")), 1e6f);
  EXPECT_EQ(*g.GetF32(ArchKey("rope.freq_base_swa")), 1e4f);
  EXPECT_EQ(*g.GetF32(ArchKey("attention.layer_norm_rms_epsilon")), 1e-6f);
  EXPECT_EQ(*g.GetString("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(g.Find("tokenizer.ggml.tokens")->array_size(), 262144u);
  EXPECT_TRUE(*g.GetBool("tokenizer.ggml.add_bos_token"));
  EXPECT_TRUE(*g.GetBool("tokenizer.ggml.add_eos_token"));

  // 1 token_embd + 6 blocks x 13 + output_norm + dense_2 + dense_3.
  ASSERT_EQ(g.tensors().size(), 1u + 6 * 13 + 1 + 2);
  for (const GgufTensorInfo& t : g.tensors()) {
    const bool is_norm = t.name.size() > 11 && t.name.compare(t.name.size() - 11, 11, "norm.weight") == 0;
    EXPECT_EQ(t.dtype, is_norm ? DType::kF32 : DType::kQ8_0) << t.name;  // token_embd quantised too
  }
  const GgufTensorInfo* embd = g.FindTensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->ne[0], 128);
  EXPECT_EQ(embd->ne[1], 262144);
  const GgufTensorInfo* q = g.FindTensor("blk.5.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->ne[0], 128);
  EXPECT_EQ(q->ne[1], 2 * 64);

  for (const auto& [type, ftype] : std::vector<std::pair<std::string, uint32_t>>{{"f32", 0}, {"f16", 1}, {"bf16", 32}}) {
    auto h = GgufFile::Open(Models::Get().Path("tiny-" + type));
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(*(*h)->GetU32("general.file_type"), ftype) << type;
  }
  auto nd = GgufFile::Open(Models::Get().Path("tiny-f32-nodense"));
  ASSERT_TRUE(nd.ok());
  EXPECT_EQ((*nd)->tensors().size(), 1u + 6 * 13 + 1);
  EXPECT_EQ((*nd)->FindTensor("dense_2.weight"), nullptr);
  EXPECT_EQ((*nd)->Find(ArchKey("dense_2_feat_in")), nullptr);
}

// Dequantises one row-major tensor of a file to float.
std::vector<float> Dequantize(const GgufFile& g, const std::string& name) {
  const GgufTensorInfo* t = g.FindTensor(name);
  EXPECT_NE(t, nullptr) << name;
  if (!t) return {};
  const TensorView v = g.View(*t);
  const int64_t n = t->elements();
  std::vector<float> out(static_cast<size_t>(n));
  const uint8_t* p = static_cast<const uint8_t*>(v.data);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    switch (t->dtype) {
      case DType::kF32: std::memcpy(&out[i], p + 4 * i, 4); break;
      case DType::kF16: std::memcpy(&h, p + 2 * i, 2); out[i] = F16ToF32(h); break;
      case DType::kBF16: std::memcpy(&h, p + 2 * i, 2); out[i] = Bf16ToF32(h); break;
      case DType::kQ8_0: {
        const auto* b = reinterpret_cast<const BlockQ8_0*>(p) + i / 32;
        std::memcpy(&h, &b->d, 2);
        out[i] = F16ToF32(h) * b->qs[i % 32];
        break;
      }
      default: ADD_FAILURE() << "dtype"; return {};
    }
  }
  return out;
}

TEST_F(SynthFileTest, SameSeedSameUnderlyingWeightsForEveryType) {
  auto f32 = GgufFile::Open(Models::Get().Path("tiny-f32"));
  ASSERT_TRUE(f32.ok());
  for (const std::string type : {"f16", "bf16", "q8_0"}) {
    SCOPED_TRACE(type);
    auto other = GgufFile::Open(Models::Get().Path("tiny-" + type));
    ASSERT_TRUE(other.ok());
    for (const char* name : {"blk.2.ffn_up.weight", "token_embd.weight", "dense_3.weight", "blk.4.attn_k_norm.weight"}) {
      const std::vector<float> a = Dequantize(**f32, name), b = Dequantize(**other, name);
      ASSERT_EQ(a.size(), b.size()) << name;
      const bool norm = std::string(name).find("norm") != std::string::npos;
      double worst = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        double tol;
        if (norm) {
          tol = 0;  // norms are F32 in every file
        } else if (type == "f16") {
          tol = std::max(std::fabs(a[i]) * 0x1p-11, 0x1p-25);  // half an fp16 ulp (subnormals: 2^-25)
        } else if (type == "bf16") {
          tol = std::fabs(a[i]) * 0x1p-8;
        } else {
          // Q8_0: half a quantisation step of the block, d = amax / 127 (plus fp16 rounding of d).
          float amax = 0;
          const size_t b0 = i / 32 * 32;
          for (size_t j = b0; j < b0 + 32; ++j) amax = std::max(amax, std::fabs(a[j]));
          tol = amax / 127.0 * 0.5 + amax * 0x1p-11 * 1.01;
        }
        worst = std::max(worst, std::fabs(double(a[i]) - b[i]) - tol);
        if (std::fabs(double(a[i]) - b[i]) > tol) {
          ADD_FAILURE() << name << "[" << i << "]: f32 " << a[i] << " vs " << b[i];
          break;
        }
      }
    }
  }
}

TEST_F(SynthFileTest, BadOptionsAndVocabOnly) {
  const std::string out = (Models::Get().dir() / "bad.gguf").string();
  SyntheticOptions o = SyntheticOptions::Tiny();
  o.n_layer = 5;  // no global layer
  Status st = WriteSyntheticModel(out, TokenizerJson(), o);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  o = SyntheticOptions::Tiny();
  o.dtype = DType::kQ8_0;
  o.n_embd = 48;  // not a whole number of 32-blocks
  o.head_dim = 24;
  st = WriteSyntheticModel(out, TokenizerJson(), o);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  o = SyntheticOptions::Tiny();
  o.n_head = 3;
  o.n_head_kv = 2;
  st = WriteSyntheticModel(out, TokenizerJson(), o);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("head_count_kv"), std::string::npos) << st.ToString();
  EXPECT_FALSE(fs::exists(out));
  st = WriteSyntheticModel(out, (Models::Get().dir() / "missing.json").string(), SyntheticOptions::Tiny());
  EXPECT_FALSE(st.ok());

  // --vocab-only: keys and vocabulary, no tensors; a tokenizer loads, the engine refuses cleanly.
  o = SyntheticOptions::Tiny();
  o.vocab_only = true;
  ASSERT_TRUE(WriteSyntheticModel(out, TokenizerJson(), o).ok());
  auto g = GgufFile::Open(out);
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE((*g)->tensors().empty());
  auto tok = Tokenizer::FromGguf(**g);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ((*tok)->vocab_size(), 262144);
  auto e = Engine::Open(out);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("token_embd"), std::string::npos) << e.status().ToString();
}

// ---- the forward pass ----------------------------------------------------------

// A model loaded at the Model level (no engine), with its own pool and Ops.
struct Loaded {
  std::unique_ptr<GgufFile> file;
  ModelConfig config;
  ModelWeights weights;
  std::unique_ptr<Model> model;
};

Loaded Load(const std::string& path) {
  Loaded l;
  auto f = GgufFile::Open(path);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  l.file = std::move(*f);
  auto c = ConfigFromGguf(*l.file);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  l.config = *c;
  auto w = BindWeights(l.config, *l.file);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  l.weights = *w;
  auto m = Model::Create(l.config, l.weights);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  l.model = std::move(*m);
  return l;
}

// Random token ids for sequences of the given lengths, packed.
struct Packed {
  std::vector<int32_t> ids;
  std::vector<int32_t> cu{0};
};
Packed RandomBatch(const std::vector<int>& lengths, uint32_t seed, int32_t vocab) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(0, vocab - 1);
  Packed p;
  for (int len : lengths) {
    for (int i = 0; i < len; ++i) p.ids.push_back(i == 0 ? 2 : (i == len - 1 ? 1 : tok(rng)));
    p.cu.push_back(static_cast<int32_t>(p.ids.size()));
  }
  return p;
}

std::vector<std::vector<float>> RunForward(Loaded& l, Isa isa, int threads, const Packed& p) {
  ThreadPool pool(threads);
  Ops ops(GetKernelTable(isa), pool);
  const int d = l.model->output_dim();
  std::vector<float> out((p.cu.size() - 1) * d);
  const Status st = l.model->Forward(ops, p.ids, p.cu, out.data());
  EXPECT_TRUE(st.ok()) << st.ToString();
  std::vector<std::vector<float>> rows;
  for (size_t s = 0; s + 1 < p.cu.size(); ++s) rows.emplace_back(out.begin() + s * d, out.begin() + (s + 1) * d);
  return rows;
}

class ForwardTest : public SynthFileTest {};

TEST_F(ForwardTest, EveryIsaGivesTheSameVectors) {
  // Float models: the levels differ only in rounding (e.g. RoPE / exp
  // evaluation), ~1e-7 relative per op. Q8_0 models quantise activations to
  // int8 before every matmul, so a 1e-7 difference occasionally flips one
  // rounding (one step = amax/127), which is why their bound is looser; it is
  // still ten times tighter than the Q8_0-vs-F32 difference (~1e-3, see
  // test_engine).
  const std::vector<int> lengths = {2, 1, 77, 300, 700};
  for (const auto& [name, min_cos] : std::vector<std::pair<std::string, double>>{
           {"tiny-f32", 0.999999}, {"tiny-bf16", 0.999999}, {"tiny-q8_0", 0.9999}}) {
    SCOPED_TRACE(name);
    Loaded l = Load(Models::Get().Path(name));
    ASSERT_NE(l.model, nullptr);
    const Packed p = RandomBatch(lengths, 11, static_cast<int32_t>(l.config.n_vocab));
    const auto ref = RunForward(l, Isa::kGeneric, 2, p);
    for (Isa isa : SupportedIsas()) {
      SCOPED_TRACE(std::string(IsaName(isa)));
      const auto got = RunForward(l, isa, 2, p);
      ASSERT_EQ(got.size(), ref.size());
      double worst = 1.0;
      for (size_t s = 0; s < ref.size(); ++s) {
        const double cos = Cosine(got[s], ref[s]);
        worst = std::min(worst, cos);
        EXPECT_GE(cos, min_cos) << "sequence " << s << " (length " << lengths[s] << ")";
      }
      std::printf("[ isa      ] %-10s %-11s worst cosine vs generic %.9f\n", name.c_str(),
                  std::string(IsaName(isa)).c_str(), worst);
    }
  }
}

TEST_F(ForwardTest, ThreadCountDoesNotChangeResults) {
  Loaded l = Load(Models::Get().Path("tiny-q8_0"));
  ASSERT_NE(l.model, nullptr);
  const Packed p = RandomBatch({5, 260, 33}, 3, static_cast<int32_t>(l.config.n_vocab));
  const Isa best = BestIsa();
  const auto one = RunForward(l, best, 1, p);
  EXPECT_EQ(RunForward(l, best, 2, p), one);  // bit-identical
  EXPECT_EQ(RunForward(l, best, 3, p), one);
  EXPECT_EQ(RunForward(l, best, 1, p), one);  // and deterministic
}

TEST_F(ForwardTest, DeepModelStaysFiniteAndSeparatesInputs) {
  // 24 layers as in the real model: the residual stream must stay finite and
  // the embeddings of different inputs must stay clearly apart.
  Loaded l = Load(Models::Get().Path("tiny-f32-deep"));
  ASSERT_NE(l.model, nullptr);
  ASSERT_EQ(l.config.n_layer, 24u);
  const std::vector<int> lengths = {2, 5, 9, 17, 40, 300};
  const Packed p = RandomBatch(lengths, 5, static_cast<int32_t>(l.config.n_vocab));
  ThreadPool pool(2);
  Ops ops(GetKernelTable(BestIsa()), pool);
  std::vector<float> out(lengths.size() * l.model->output_dim());
  std::map<std::string, int> seen;
  double max_abs = 0;
  bool finite = true;
  const Status st = l.model->Forward(ops, p.ids, p.cu, out.data(),
                                     [&](const char* name, int layer, const float* x, int64_t rows, int64_t cols) {
                                       seen[name]++;
                                       for (int64_t i = 0; i < rows * cols; ++i) {
                                         finite &= std::isfinite(x[i]);
                                         max_abs = std::max(max_abs, double(std::fabs(x[i])));
                                       }
                                     });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(finite);
  EXPECT_LT(max_abs, 1e4) << "residual stream grows too much";
  // Every named intermediate was produced once per layer.
  for (const char* name : {"attn_norm", "Qcur_normed", "Kcur_rope", "kqv_out", "ffn_inp", "ffn_geglu", "l_out"}) {
    EXPECT_EQ(seen[name], 24) << name;
  }
  for (const char* name : {"inp_embd", "result_norm", "pooled", "dense_2", "embedding"}) EXPECT_EQ(seen[name], 1) << name;
  const int d = l.model->output_dim();
  for (size_t a = 0; a < lengths.size(); ++a) {
    for (size_t b = a + 1; b < lengths.size(); ++b) {
      std::vector<float> va(out.begin() + a * d, out.begin() + (a + 1) * d), vb(out.begin() + b * d, out.begin() + (b + 1) * d);
      EXPECT_LT(Cosine(va, vb), 0.95) << a << " vs " << b;
    }
  }
}

TEST_F(ForwardTest, BadBatchesAreErrorsNotCrashes) {
  Loaded l = Load(Models::Get().Path("tiny-f32"));
  ASSERT_NE(l.model, nullptr);
  ThreadPool pool(2);
  Ops ops(GetKernelTable(BestIsa()), pool);
  std::vector<float> out(4 * l.model->output_dim());
  const std::vector<int32_t> ids = {2, 100, 1, 2, 1};
  // Token id outside the vocabulary.
  std::vector<int32_t> bad_ids = ids;
  bad_ids[1] = 262144;
  EXPECT_EQ(l.model->Forward(ops, bad_ids, std::vector<int32_t>{0, 3, 5}, out.data()).code(), StatusCode::kOutOfRange);
  bad_ids[1] = -5;
  EXPECT_FALSE(l.model->Forward(ops, bad_ids, std::vector<int32_t>{0, 3, 5}, out.data()).ok());
  // Malformed cu_seqlens: wrong total, empty sequence, decreasing, no sequences.
  EXPECT_FALSE(l.model->Forward(ops, ids, std::vector<int32_t>{0, 3, 4}, out.data()).ok());
  EXPECT_FALSE(l.model->Forward(ops, ids, std::vector<int32_t>{0, 3, 3, 5}, out.data()).ok());
  EXPECT_FALSE(l.model->Forward(ops, ids, std::vector<int32_t>{0, 4, 3, 5}, out.data()).ok());
  EXPECT_FALSE(l.model->Forward(ops, ids, std::vector<int32_t>{0}, out.data()).ok());
  EXPECT_FALSE(l.model->Forward(ops, ids, std::vector<int32_t>{}, out.data()).ok());
  // A sequence longer than the context.
  const Packed longp = RandomBatch({2049}, 1, 1000);
  out.resize(l.model->output_dim());
  EXPECT_EQ(l.model->Forward(ops, longp.ids, longp.cu, out.data()).code(), StatusCode::kInvalidArgument);
  // The model still works afterwards.
  EXPECT_TRUE(l.model->Forward(ops, std::vector<int32_t>{2, 1}, std::vector<int32_t>{0, 2}, out.data()).ok());
}

}  // namespace
}  // namespace gembed
