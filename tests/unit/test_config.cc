// ModelConfig / weight-table validation: every class of bad file gives a
// non-OK Status with a message that names the problem. Files are built in
// memory with GgufWriter from a small valid config, then broken one way each.
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>

#include "io/gguf.h"
#include "model/config.h"
#include "model/weights.h"

namespace gembed {
namespace {

ModelConfig SmallConfig() {
  ModelConfig c;
  c.n_vocab = 40;
  c.context_length = 128;
  c.n_embd = 64;
  c.n_layer = 6;
  c.n_ff = 96;
  c.n_head = 2;
  c.n_head_kv = 1;
  c.head_dim = 32;
  c.rms_eps = 1e-6f;
  c.rope_base = 1e6f;
  c.rope_base_swa = 1e4f;
  c.sliding_window = 16;
  c.layer_is_sliding = {true, true, true, true, true, false};
  c.dense_hidden = 0;
  return c;
}

struct FileOptions {
  std::set<std::string> omit_keys;
  std::set<std::string> omit_tensors;
  // Runs on the keys after WriteArchKeys (set / replace values).
  std::function<void(GgufWriter&)> edit_keys;
  // May change a tensor's shape or dtype before it is added.
  std::function<void(TensorSpec&, DType&)> edit_tensor;
  std::vector<std::pair<std::string, std::vector<int64_t>>> extra_tensors;  // F32 zeros
};

// A file holds `bytes`; GgufFile views into them, so both live here.
struct BuiltFile {
  std::vector<uint8_t> bytes;
  std::unique_ptr<GgufFile> file;
};

void AddZeros(GgufWriter& w, const std::string& name, DType dtype, std::vector<int64_t> ne) {
  int64_t rows = 1;
  for (size_t i = 1; i < ne.size(); ++i) rows *= ne[i];
  const auto row_bytes = DTypeRowBytes(dtype, static_cast<uint64_t>(ne[0]));
  ASSERT_TRUE(row_bytes.has_value());
  std::vector<uint8_t> bytes(*row_bytes * static_cast<uint64_t>(rows));
  ASSERT_TRUE(w.AddTensor(name, dtype, std::move(ne), std::move(bytes)).ok()) << name;
}

BuiltFile Build(const ModelConfig& c, const FileOptions& o = {}) {
  GgufWriter keys;
  WriteArchKeys(c, keys);
  if (o.edit_keys) o.edit_keys(keys);
  GgufWriter w;
  for (const auto& [k, v] : keys.metadata()) {
    if (!o.omit_keys.count(k)) w.Set(k, v);
  }
  for (TensorSpec s : TensorSpecs(c)) {
    if (o.omit_tensors.count(s.name)) continue;
    DType dtype = DType::kF32;
    if (o.edit_tensor) o.edit_tensor(s, dtype);
    std::vector<int64_t> ne(s.ne.begin(), s.ne.begin() + s.n_dims);
    AddZeros(w, s.name, dtype, ne);
  }
  for (const auto& [name, ne] : o.extra_tensors) AddZeros(w, name, DType::kF32, ne);
  BuiltFile b;
  b.bytes = w.ToBytes();
  auto f = GgufFile::FromBytes(b.bytes.data(), b.bytes.size());
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  if (f.ok()) b.file = std::move(*f);
  return b;
}

// Config + weights, the way the engine loads a file.
Status Load(const GgufFile& f, ModelConfig* out = nullptr) {
  GEMBED_ASSIGN_OR_RETURN(ModelConfig c, ConfigFromGguf(f));
  GEMBED_ASSIGN_OR_RETURN(ModelWeights w, BindWeights(c, f));
  (void)w;
  if (out) *out = c;
  return Status::Ok();
}

void ExpectError(const BuiltFile& b, StatusCode code, const std::string& needle) {
  ASSERT_NE(b.file, nullptr);
  const Status st = Load(*b.file);
  ASSERT_FALSE(st.ok()) << "expected an error mentioning '" << needle << "'";
  EXPECT_EQ(st.code(), code) << st.ToString();
  EXPECT_NE(st.message().find(needle), std::string::npos) << "message: " << st.message();
}

TEST(ConfigTest, ValidSmallModelLoadsWithDerivedValues) {
  BuiltFile b = Build(SmallConfig());
  ModelConfig c;
  ASSERT_TRUE(Load(*b.file, &c).ok()) << Load(*b.file).ToString();
  EXPECT_EQ(c.n_vocab, 40u);
  EXPECT_EQ(c.n_embd, 64u);
  EXPECT_EQ(c.n_layer, 6u);
  EXPECT_EQ(c.n_ff, 96u);
  EXPECT_EQ(c.n_head, 2u);
  EXPECT_EQ(c.n_head_kv, 1u);
  EXPECT_EQ(c.head_dim, 32u);
  EXPECT_EQ(c.window_radius(), 8u);
  EXPECT_FLOAT_EQ(c.AttentionScale(), 1.0f / std::sqrt(32.0f));
  EXPECT_EQ(c.EmbeddingScale(), std::sqrt(64.0f));
  EXPECT_EQ(c.RopeBase(0), 1e4f);
  EXPECT_EQ(c.RopeBase(5), 1e6f);
  EXPECT_FALSE(c.has_dense());
  EXPECT_EQ(c.pooling, PoolingType::kMean);
}

TEST(ConfigTest, DefaultsOfOptionalKeys) {
  ModelConfig base = SmallConfig();
  base.n_layer = 12;
  base.layer_is_sliding.assign(12, true);
  for (int il : {5, 11}) base.layer_is_sliding[il] = false;
  base.n_head_kv = base.n_head;  // what the default will give, so the tensors agree
  FileOptions o;
  o.omit_keys = {ArchKey("rope.freq_base_swa"), ArchKey("attention.head_count_kv"),
                 ArchKey("attention.key_length"), ArchKey("attention.value_length"), ArchKey("pooling_type")};
  BuiltFile b = Build(base, o);
  ModelConfig c;
  ASSERT_TRUE(Load(*b.file, &c).ok());
  EXPECT_EQ(c.rope_base_swa, 10000.0f);      // llama.cpp's built-in default
  EXPECT_EQ(c.n_head_kv, c.n_head);          // head_count_kv defaults to head_count
  EXPECT_EQ(c.head_dim, 64u / 2u);           // key_length defaults to n_embd / n_head
  EXPECT_EQ(c.pooling, PoolingType::kMean);
  // Period 6 when no pattern key: layers 5 and 11 are global.
  for (uint32_t il = 0; il < 12; ++il) EXPECT_EQ(c.IsSliding(il), il % 6 != 5) << il;
}

TEST(ConfigTest, RopeBaseDefaultsTo10000WhenAbsent) {
  FileOptions o;
  o.omit_keys = {ArchKey("rope.freq_base")};
  BuiltFile b = Build(SmallConfig(), o);
  ModelConfig c;
  ASSERT_TRUE(Load(*b.file, &c).ok());
  EXPECT_EQ(c.rope_base, 10000.0f);
}

TEST(ConfigTest, SlidingWindowPatternKey) {
  FileOptions o;
  o.edit_keys = [](GgufWriter& w) { w.SetU32(ArchKey("attention.sliding_window_pattern"), 3); };
  BuiltFile b = Build(SmallConfig(), o);
  ModelConfig c;
  ASSERT_TRUE(Load(*b.file, &c).ok());
  for (uint32_t il = 0; il < 6; ++il) EXPECT_EQ(c.IsSliding(il), il % 3 < 2) << il;

  ModelConfig custom = SmallConfig();
  custom.layer_is_sliding = {false, true, false, true, true, true};
  BuiltFile b2 = Build(custom);  // written as a bool array
  ASSERT_TRUE(Load(*b2.file, &c).ok());
  EXPECT_EQ(c.layer_is_sliding, custom.layer_is_sliding);
}

TEST(ConfigTest, WrongArchitecture) {
  FileOptions o;
  o.edit_keys = [](GgufWriter& w) { w.SetString("general.architecture", "llama"); };
  ExpectError(Build(SmallConfig(), o), StatusCode::kUnsupported, "llama");
}

TEST(ConfigTest, MissingRequiredKeys) {
  for (const std::string& key :
       {std::string("general.architecture"), ArchKey("context_length"), ArchKey("embedding_length"),
        ArchKey("block_count"), ArchKey("feed_forward_length"), ArchKey("attention.head_count"),
        ArchKey("attention.layer_norm_rms_epsilon"), ArchKey("attention.sliding_window")}) {
    SCOPED_TRACE(key);
    FileOptions o;
    o.omit_keys = {key};
    ExpectError(Build(SmallConfig(), o), StatusCode::kNotFound, key);
  }
}

TEST(ConfigTest, KeyOfWrongType) {
  FileOptions o;
  o.edit_keys = [](GgufWriter& w) { w.SetString(ArchKey("block_count"), "six"); };
  BuiltFile b = Build(SmallConfig(), o);
  const Status st = Load(*b.file);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("block_count"), std::string::npos) << st.message();
}

TEST(ConfigTest, UnsupportedValues) {
  struct Case {
    const char* what;
    std::function<void(GgufWriter&)> edit;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"odd head dim", [](GgufWriter& w) {
         w.SetU32(ArchKey("attention.key_length"), 33);
         w.SetU32(ArchKey("attention.value_length"), 33);
       }, "odd"},
      {"n_head % n_head_kv", [](GgufWriter& w) { w.SetU32(ArchKey("attention.head_count_kv"), 3); },
       "head_count_kv"},
      {"pooling cls", [](GgufWriter& w) { w.SetU32(ArchKey("pooling_type"), 2); }, "pooling"},
      {"value_length", [](GgufWriter& w) { w.SetU32(ArchKey("attention.value_length"), 16); }, "value_length"},
      {"zero eps", [](GgufWriter& w) { w.SetF32(ArchKey("attention.layer_norm_rms_epsilon"), 0.0f); },
       "epsilon"},
      {"zero layers", [](GgufWriter& w) { w.SetU32(ArchKey("block_count"), 0); }, "block_count"},
      {"zero heads", [](GgufWriter& w) { w.SetU32(ArchKey("attention.head_count"), 0); }, "head_count"},
      {"partial rotary", [](GgufWriter& w) { w.SetU32(ArchKey("rope.dimension_count"), 16); }, "rotary"},
      {"rope scaling", [](GgufWriter& w) { w.SetF32(ArchKey("rope.scaling.factor"), 4.0f); }, "scaling"},
      {"per-layer heads differ", [](GgufWriter& w) {
         w.SetU32Array(ArchKey("attention.head_count"), {2, 2, 2, 2, 2, 4});
       }, "differ"},
      {"pattern length", [](GgufWriter& w) {
         GgufValue v;
         v.type = GgufType::kArray;
         v.array_type = GgufType::kBool;
         v.arr_bool = {true, false};
         w.Set(ArchKey("attention.sliding_window_pattern"), v);
       }, "sliding_window_pattern"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    FileOptions o;
    o.edit_keys = c.edit;
    BuiltFile b = Build(SmallConfig(), o);
    ASSERT_NE(b.file, nullptr);
    const Status st = Load(*b.file);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find(c.needle), std::string::npos) << st.ToString();
  }
}

TEST(ConfigTest, PerLayerArrayWithEqualValuesIsAccepted) {
  FileOptions o;
  o.edit_keys = [](GgufWriter& w) { w.SetU32Array(ArchKey("feed_forward_length"), {96, 96, 96, 96, 96, 96}); };
  BuiltFile b = Build(SmallConfig(), o);
  ModelConfig c;
  ASSERT_TRUE(Load(*b.file, &c).ok());
  EXPECT_EQ(c.n_ff, 96u);
}

TEST(ConfigTest, ShapeDisagreesWithTensors) {
  // key_length says 16 but attn_q was written for 2 x 32.
  FileOptions o;
  o.edit_keys = [](GgufWriter& w) {
    w.SetU32(ArchKey("attention.key_length"), 16);
    w.SetU32(ArchKey("attention.value_length"), 16);
  };
  ExpectError(Build(SmallConfig(), o), StatusCode::kCorruptFile, "blk.0.attn_q.weight");

  // One tensor with a wrong shape.
  FileOptions o2;
  o2.edit_tensor = [](TensorSpec& s, DType&) {
    if (s.name == "blk.3.ffn_down.weight") s.ne[0] = 64;
  };
  ExpectError(Build(SmallConfig(), o2), StatusCode::kCorruptFile, "blk.3.ffn_down.weight");

  // Vocabulary size comes from token_embd; a 1-D table is not one.
  FileOptions o3;
  o3.edit_tensor = [](TensorSpec& s, DType&) {
    if (s.name == "token_embd.weight") s.n_dims = 1;
  };
  ExpectError(Build(SmallConfig(), o3), StatusCode::kCorruptFile, "token_embd");
}

TEST(ConfigTest, MissingTensors) {
  for (const char* name : {"token_embd.weight", "blk.4.ffn_up.weight", "blk.0.attn_k_norm.weight",
                           "output_norm.weight"}) {
    SCOPED_TRACE(name);
    FileOptions o;
    o.omit_tensors = {name};
    ExpectError(Build(SmallConfig(), o), StatusCode::kNotFound, name);
  }
}

// block_count must describe the blk.N. tensors exactly. A file whose
// block_count is lower than its layers would otherwise run with fewer layers
// and exit 0 (llama.cpp refuses it: "wrong number of tensors").
TEST(ConfigTest, BlockCountMustMatchTheLayerTensors) {
  // 7 layers of tensors, block_count 6 (the keys of a 6-layer config).
  ModelConfig seven = SmallConfig();
  seven.n_layer = 7;
  seven.layer_is_sliding = {true, true, true, true, true, false, true};
  FileOptions extra;
  for (TensorSpec s : TensorSpecs(seven)) {
    if (s.layer == 6) extra.extra_tensors.push_back({s.name, std::vector<int64_t>(s.ne.begin(), s.ne.begin() + s.n_dims)});
  }
  ASSERT_EQ(extra.extra_tensors.size(), 13u);
  ExpectError(Build(SmallConfig(), extra), StatusCode::kCorruptFile, "belongs to layer 6, but gemma-embedding.block_count is 6");
  // One stray tensor of a layer past the end is enough.
  FileOptions one;
  one.extra_tensors = {{"blk.6.attn_norm.weight", {64}}};
  ExpectError(Build(SmallConfig(), one), StatusCode::kCorruptFile, "blk.6.attn_norm.weight belongs to layer 6");
  FileOptions far;
  far.extra_tensors = {{"blk.99999999999999999999.ffn_up.weight", {64}}};
  ExpectError(Build(SmallConfig(), far), StatusCode::kCorruptFile, "more layers than it declares");

  // block_count 7, tensors for layers 0..5 only.
  FileOptions missing;
  for (TensorSpec s : TensorSpecs(seven)) {
    if (s.layer == 6) missing.omit_tensors.insert(s.name);
  }
  ExpectError(Build(seven, missing), StatusCode::kCorruptFile,
              "gemma-embedding.block_count is 7 but the file has no tensors for layer 6 (blk.6.*)");

  // Names that only look like layer tensors are not layers (logged, ignored).
  FileOptions odd;
  odd.extra_tensors = {{"blk.x.ffn_up.weight", {64}}, {"blk.6", {64}}, {"blk..weight", {64}}};
  BuiltFile ok = Build(SmallConfig(), odd);
  EXPECT_TRUE(Load(*ok.file).ok());
}

TEST(ConfigTest, LayerIndexOf) {
  EXPECT_EQ(LayerIndexOf("blk.0.attn_q.weight", "blk."), 0u);
  EXPECT_EQ(LayerIndexOf("blk.23.ffn_up.weight", "blk."), 23u);
  EXPECT_EQ(LayerIndexOf("model.layers.5.mlp.up_proj.weight", "model.layers."), 5u);
  EXPECT_GE(*LayerIndexOf("blk.99999999999999999999999.x", "blk."), uint64_t{1} << 32);
  EXPECT_FALSE(LayerIndexOf("blk.x.attn_q.weight", "blk."));
  EXPECT_FALSE(LayerIndexOf("blk.3", "blk."));
  EXPECT_FALSE(LayerIndexOf("blk..weight", "blk."));
  EXPECT_FALSE(LayerIndexOf("token_embd.weight", "blk."));
}

TEST(ConfigTest, DtypeNotAllowedForRole) {
  FileOptions o;
  o.edit_tensor = [](TensorSpec& s, DType& d) {
    if (s.name == "blk.2.ffn_norm.weight") d = DType::kF16;
  };
  ExpectError(Build(SmallConfig(), o), StatusCode::kUnsupported, "blk.2.ffn_norm.weight");
  FileOptions o2;
  o2.edit_tensor = [](TensorSpec& s, DType& d) {
    if (s.name == "blk.1.attn_v.weight") d = DType::kI32;
  };
  ExpectError(Build(SmallConfig(), o2), StatusCode::kUnsupported, "blk.1.attn_v.weight");
}

TEST(ConfigTest, FusedQkvAndBiasesAreRejected) {
  FileOptions o;
  o.extra_tensors = {{"blk.0.attn_qkv.weight", {64, 128}}};
  ExpectError(Build(SmallConfig(), o), StatusCode::kUnsupported, "fused");
  FileOptions o2;
  o2.extra_tensors = {{"blk.0.attn_q.bias", {64}}};
  ExpectError(Build(SmallConfig(), o2), StatusCode::kUnsupported, "bias");
  // An LM head is allowed and ignored.
  FileOptions o3;
  o3.extra_tensors = {{"output.weight", {64, 40}}};
  BuiltFile b = Build(SmallConfig(), o3);
  EXPECT_TRUE(Load(*b.file).ok());
}

TEST(ConfigTest, DenseHead) {
  ModelConfig c = SmallConfig();
  c.dense_hidden = 256;
  BuiltFile ok = Build(c);
  ModelConfig got;
  ASSERT_TRUE(Load(*ok.file, &got).ok());
  EXPECT_TRUE(got.has_dense());
  EXPECT_EQ(got.dense_hidden, 256u);

  FileOptions half;
  half.omit_tensors = {"dense_3.weight"};
  ExpectError(Build(c, half), StatusCode::kCorruptFile, "dense_3.weight");

  FileOptions bad_key;
  bad_key.edit_keys = [](GgufWriter& w) { w.SetU32(ArchKey("dense_2_feat_in"), 32); };
  ExpectError(Build(c, bad_key), StatusCode::kCorruptFile, "dense_2_feat_in");

  FileOptions bad_shape;
  bad_shape.edit_tensor = [](TensorSpec& s, DType&) {
    if (s.name == "dense_3.weight") s.ne[1] = 32;
  };
  ExpectError(Build(c, bad_shape), StatusCode::kCorruptFile, "dense_3.weight");
}

TEST(ConfigTest, TensorListMatchesTheConverter) {
  ModelConfig c = SmallConfig();
  c.n_layer = 24;
  c.layer_is_sliding.assign(24, true);
  EXPECT_EQ(TensorSpecs(c).size(), 314u);  // MODEL-SPEC §3: 1 + 24 x 13 + 1
  c.dense_hidden = 128;
  const auto specs = TensorSpecs(c);
  EXPECT_EQ(specs.size(), 316u);
  int norms = 0;
  for (const auto& s : specs) norms += s.role == TensorRole::kNorm;
  EXPECT_EQ(norms, 145);  // the F32 tensors of the Q8_0 file
}

}  // namespace
}  // namespace gembed
