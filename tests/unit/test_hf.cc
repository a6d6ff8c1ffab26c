// Hugging Face sentence-transformers folders: config parsing (model/hf_config.h),
// loading (model/hf_model.h), conversion to GGUF (model/hf_convert.h) and the
// engine's folder path.
//
//  * config.json / modules.json / Pooling / Dense / sentence_bert /
//    config_sentence_transformers parsers: accepted values and one rejection
//    per unsupported or malformed setting (code + message naming the key).
//  * Task prompt precedence: folder table first, then built-in names; titles.
//  * Tiny folders written here with SafetensorsWriter (2 layers, 64 wide, a
//    267-token vocabulary): norms load as exactly 1 + w; matrices are views of
//    the file; "model." prefix, sharded index and BF16/F16 sources; the
//    converted GGUF has the converter's keys, names and dtypes, norms 1 + w and
//    Q8_0 blocks equal to EncodeTensor of the source; the engine gives the same
//    vectors from the folder and from the F32 GGUF converted from it; the
//    converted GGUF carries the folder's prompt table (gembed.prompts.* keys,
//    read back equal to the folder's; none without a table; malformed keys
//    are kCorruptFile naming the key).
//  * Broken folders (one defect each) -> a Status with the right code and a
//    message naming the file / tensor, from HfModel::Open, the converter and
//    Engine::Open.
//  * The golden cases of tests/golden/data/st_embeddinggemma.json: every
//    (task, title) resolves to the prompt sentence-transformers used, given
//    the folder prompt table recorded in that file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "base/half.h"
#include "engine/engine.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/hf_config.h"
#include "model/hf_convert.h"
#include "model/hf_model.h"
#include "model/synthetic.h"
#include "tokenizer/prompts.h"
#include "tokenizer/tokenizer.h"

namespace gembed {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// The value of an OK result, else `fallback` (Result has no value_or).
template <typename T, typename U>
T ValueOr(const Result<T>& r, U&& fallback) {
  return r.ok() ? *r : T(std::forward<U>(fallback));
}

// ---------------------------------------------------------------------------
// config.json
// ---------------------------------------------------------------------------

// The fields of google/embeddinggemma-300m's config.json that gembed reads.
Json RealConfig() {
  Json j = {
      {"_sliding_window_pattern", 6},
      {"architectures", {"Gemma3TextModel"}},
      {"attention_bias", false},
      {"attn_logit_softcapping", nullptr},
      {"head_dim", 256},
      {"hidden_activation", "gelu_pytorch_tanh"},
      {"hidden_size", 768},
      {"intermediate_size", 1152},
      {"max_position_embeddings", 2048},
      {"model_type", "gemma3_text"},
      {"num_attention_heads", 3},
      {"num_hidden_layers", 24},
      {"num_key_value_heads", 1},
      {"query_pre_attn_scalar", 256},
      {"rms_norm_eps", 1e-06},
      {"rope_local_base_freq", 10000.0},
      {"rope_scaling", nullptr},
      {"rope_theta", 1000000.0},
      {"sliding_window", 512},
      {"use_bidirectional_attention", true},
      {"vocab_size", 262144},
  };
  Json types = Json::array();
  for (int i = 0; i < 24; ++i) types.push_back(i % 6 == 5 ? "full_attention" : "sliding_attention");
  j["layer_types"] = types;
  return j;
}

TEST(HfConfig, ParsesTheRealConfig) {
  auto c = ParseHfModelConfig(RealConfig().dump());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->n_vocab, 262144u);
  EXPECT_EQ(c->context_length, 2048u);
  EXPECT_EQ(c->n_embd, 768u);
  EXPECT_EQ(c->n_layer, 24u);
  EXPECT_EQ(c->n_ff, 1152u);
  EXPECT_EQ(c->n_head, 3u);
  EXPECT_EQ(c->n_head_kv, 1u);
  EXPECT_EQ(c->head_dim, 256u);
  EXPECT_FLOAT_EQ(c->rms_eps, 1e-6f);
  EXPECT_EQ(c->rope_base, 1e6f);
  EXPECT_EQ(c->rope_base_swa, 1e4f);
  EXPECT_EQ(c->sliding_window, 512u);
  EXPECT_EQ(c->window_radius(), 256u);  // MODEL-SPEC §5.4: ±256
  EXPECT_EQ(c->pooling, PoolingType::kMean);
  EXPECT_FALSE(c->has_dense());
  ASSERT_EQ(c->layer_is_sliding.size(), 24u);
  for (uint32_t il = 0; il < 24; ++il) EXPECT_EQ(c->IsSliding(il), il % 6 != 5) << il;
  EXPECT_FLOAT_EQ(c->AttentionScale(), 1.0f / 16.0f);
}

TEST(HfConfig, LayerPatternFromPeriodMatchesLayerTypes) {
  Json j = RealConfig();
  j.erase("layer_types");
  auto from_period = ParseHfModelConfig(j.dump());
  ASSERT_TRUE(from_period.ok()) << from_period.status().ToString();
  auto from_types = ParseHfModelConfig(RealConfig().dump());
  ASSERT_TRUE(from_types.ok());
  EXPECT_EQ(from_period->layer_is_sliding, from_types->layer_is_sliding);
  j.erase("_sliding_window_pattern");
  j["sliding_window_pattern"] = 3;
  auto p3 = ParseHfModelConfig(j.dump());
  ASSERT_TRUE(p3.ok());
  for (uint32_t il = 0; il < 24; ++il) EXPECT_EQ(p3->IsSliding(il), il % 3 != 2) << il;
}

TEST(HfConfig, DefaultsForOptionalKeys) {
  Json j = RealConfig();
  for (const char* k : {"num_key_value_heads", "rms_norm_eps", "rope_theta", "rope_local_base_freq",
                        "hidden_activation", "query_pre_attn_scalar", "rope_scaling", "attention_bias"}) {
    j.erase(k);
  }
  auto c = ParseHfModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->n_head_kv, 3u);  // = num_attention_heads
  EXPECT_EQ(c->rope_base, 1e6f);
  EXPECT_EQ(c->rope_base_swa, 1e4f);
  j["head_dim"] = 128;  // query_pre_attn_scalar defaults to 256: scale 1/16 != 1/sqrt(128)
  auto bad = ParseHfModelConfig(j.dump());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kUnsupported);
  EXPECT_THAT(bad.status().message(), HasSubstr("query_pre_attn_scalar"));
}

struct ConfigCase {
  const char* what;
  std::function<void(Json&)> edit;
  StatusCode code;
  const char* message;
};

TEST(HfConfig, RejectsUnsupportedAndMalformedSettings) {
  const ConfigCase cases[] = {
      {"causal", [](Json& j) { j["use_bidirectional_attention"] = false; }, StatusCode::kUnsupported,
       "use_bidirectional_attention"},
      {"no bidirectional key", [](Json& j) { j.erase("use_bidirectional_attention"); }, StatusCode::kUnsupported,
       "use_bidirectional_attention"},
      {"gemma2", [](Json& j) { j["model_type"] = "gemma2"; }, StatusCode::kUnsupported, "model_type 'gemma2'"},
      {"no model_type", [](Json& j) { j.erase("model_type"); }, StatusCode::kNotFound, "model_type"},
      {"scale", [](Json& j) { j["query_pre_attn_scalar"] = 224; }, StatusCode::kUnsupported,
       "query_pre_attn_scalar"},
      {"activation", [](Json& j) { j["hidden_activation"] = "relu"; }, StatusCode::kUnsupported, "relu"},
      {"rope scaling", [](Json& j) { j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 8.0}}; },
       StatusCode::kUnsupported, "rope_scaling"},
      {"attention bias", [](Json& j) { j["attention_bias"] = true; }, StatusCode::kUnsupported, "attention_bias"},
      {"softcap", [](Json& j) { j["attn_logit_softcapping"] = 50.0; }, StatusCode::kUnsupported,
       "attn_logit_softcapping"},
      {"missing hidden_size", [](Json& j) { j.erase("hidden_size"); }, StatusCode::kNotFound, "hidden_size"},
      {"string width", [](Json& j) { j["hidden_size"] = "768"; }, StatusCode::kCorruptFile, "hidden_size"},
      {"negative", [](Json& j) { j["intermediate_size"] = -1; }, StatusCode::kCorruptFile, "intermediate_size"},
      {"fractional", [](Json& j) { j["num_hidden_layers"] = 2.5; }, StatusCode::kCorruptFile,
       "num_hidden_layers"},
      {"layer_types length", [](Json& j) { j["layer_types"].erase(0); }, StatusCode::kCorruptFile, "layer_types"},
      {"layer type", [](Json& j) { j["layer_types"][3] = "chunked_attention"; }, StatusCode::kUnsupported,
       "chunked_attention"},
      {"bool eps", [](Json& j) { j["rms_norm_eps"] = true; }, StatusCode::kCorruptFile, "rms_norm_eps"},
      {"heads do not divide", [](Json& j) { j["num_key_value_heads"] = 2; }, StatusCode::kUnsupported,
       "head_count"},
      {"zero heads", [](Json& j) { j["num_attention_heads"] = 0; }, StatusCode::kUnsupported,
       "num_attention_heads"},
  };
  for (const ConfigCase& c : cases) {
    Json j = RealConfig();
    c.edit(j);
    auto r = ParseHfModelConfig(j.dump());
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_EQ(r.status().code(), c.code) << c.what << ": " << r.status().ToString();
    EXPECT_THAT(r.status().message(), HasSubstr(c.message)) << c.what;
    EXPECT_THAT(r.status().message(), HasSubstr("config.json")) << c.what;
  }
  for (const char* text : {"", "{", "[1, 2]", "{\"model_type\": \"gemma3_text\",}", "null"}) {
    auto r = ParseHfModelConfig(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), StatusCode::kCorruptFile) << text;
  }
}

// ---------------------------------------------------------------------------
// modules.json and the module configs
// ---------------------------------------------------------------------------
const char* kRealModules = R"([
  {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
  {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
  {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
  {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"},
  {"idx": 4, "name": "4", "path": "4_Normalize", "type": "sentence_transformers.models.Normalize"}
])";

TEST(HfModules, ParsesTheRealPipeline) {
  auto m = ParseHfModulesJson(kRealModules);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->size(), 5u);
  EXPECT_EQ((*m)[2].path, "2_Dense");
  EXPECT_EQ((*m)[4].type, "sentence_transformers.models.Normalize");
  // idx decides the order, not the position in the file.
  auto shuffled = ParseHfModulesJson(R"([
    {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"}])");
  ASSERT_TRUE(shuffled.ok()) << shuffled.status().ToString();
  EXPECT_EQ((*shuffled)[0].type, "sentence_transformers.models.Transformer");
}

TEST(HfModules, RejectsOtherPipelines) {
  struct Case {
    const char* json;
    StatusCode code;
    const char* message;
  } cases[] = {
      {R"([{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
           {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
           {"idx": 2, "path": "2_Dense", "type": "sentence_transformers.models.Dense"}])",
       StatusCode::kUnsupported, "1 Dense"},
      {R"([{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"}])", StatusCode::kUnsupported,
       "Pooling"},
      {R"([{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
           {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
           {"idx": 2, "path": "2_LayerNorm", "type": "sentence_transformers.models.LayerNorm"}])",
       StatusCode::kUnsupported, "LayerNorm"},
      {R"([{"idx": 0, "path": "sub", "type": "sentence_transformers.models.Transformer"},
           {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])",
       StatusCode::kUnsupported, "Transformer"},
      {R"([{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
           {"idx": 1, "path": "../1_Pooling", "type": "sentence_transformers.models.Pooling"}])",
       StatusCode::kUnsupported, ".."},
      {R"([{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
           {"idx": 1, "path": "/etc", "type": "sentence_transformers.models.Pooling"}])",
       StatusCode::kUnsupported, "relative"},
      {R"([{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
           {"idx": 0, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])",
       StatusCode::kCorruptFile, "idx 0"},
      {R"([{"idx": 0, "path": ""}])", StatusCode::kCorruptFile, "type"},
      {R"({"idx": 0})", StatusCode::kCorruptFile, "array"},
      {R"([{"idx": 0, "path": "", "type": "x"},)", StatusCode::kCorruptFile, "invalid JSON"},
  };
  for (const Case& c : cases) {
    auto r = ParseHfModulesJson(c.json);
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.status().code(), c.code) << r.status().ToString();
    EXPECT_THAT(r.status().message(), HasSubstr(c.message)) << r.status().ToString();
  }
}

TEST(HfModules, PoolingConfig) {
  const std::string real = R"({"word_embedding_dimension": 768, "pooling_mode_cls_token": false,
    "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false,
    "pooling_mode_mean_sqrt_len_tokens": false, "pooling_mode_weightedmean_tokens": false,
    "pooling_mode_lasttoken": false, "include_prompt": true})";
  EXPECT_TRUE(CheckHfPoolingConfig(real, 768).ok());
  auto edit = [&](const char* key, Json value) {
    Json j = Json::parse(real);
    j[key] = std::move(value);
    return CheckHfPoolingConfig(j.dump(), 768);
  };
  Status s = edit("include_prompt", false);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_THAT(s.message(), HasSubstr("include_prompt"));
  s = edit("pooling_mode_cls_token", true);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_THAT(s.message(), HasSubstr("pooling_mode_cls_token"));
  s = edit("pooling_mode_mean_tokens", false);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  s = edit("word_embedding_dimension", 512);
  EXPECT_EQ(s.code(), StatusCode::kCorruptFile);
  EXPECT_THAT(s.message(), HasSubstr("512"));
  s = edit("include_prompt", "yes");
  EXPECT_EQ(s.code(), StatusCode::kCorruptFile);
}

TEST(HfModules, DenseConfig) {
  auto d = ParseHfDenseConfig(
      R"({"in_features": 768, "out_features": 3072, "bias": false,
          "activation_function": "torch.nn.modules.linear.Identity"})",
      "2_Dense");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->in_features, 768u);
  EXPECT_EQ(d->out_features, 3072u);
  EXPECT_EQ(d->path, "2_Dense");
  struct Case {
    const char* json;
    StatusCode code;
    const char* message;
  } cases[] = {
      {R"({"in_features": 768, "out_features": 3072, "bias": true,
           "activation_function": "torch.nn.modules.linear.Identity"})",
       StatusCode::kUnsupported, "bias"},
      {R"({"in_features": 768, "out_features": 3072,
           "activation_function": "torch.nn.modules.linear.Identity"})",
       StatusCode::kUnsupported, "bias"},
      {R"({"in_features": 768, "out_features": 3072, "bias": false,
           "activation_function": "torch.nn.modules.activation.Tanh"})",
       StatusCode::kUnsupported, "Tanh"},
      {R"({"in_features": 768, "out_features": 3072, "bias": false})", StatusCode::kUnsupported,
       "activation_function"},
      {R"({"out_features": 3072, "bias": false, "activation_function": "torch.nn.modules.linear.Identity"})",
       StatusCode::kNotFound, "in_features"},
  };
  for (const Case& c : cases) {
    auto r = ParseHfDenseConfig(c.json, "2_Dense");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.status().code(), c.code) << r.status().ToString();
    EXPECT_THAT(r.status().message(), HasSubstr(c.message));
    EXPECT_THAT(r.status().message(), HasSubstr("2_Dense/config.json"));
  }
}

TEST(HfModules, SentenceBertConfig) {
  auto m = ParseHfSentenceBertConfig(R"({"max_seq_length": 2048, "do_lower_case": false})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->value_or(0), 2048u);
  auto none = ParseHfSentenceBertConfig(R"({"max_seq_length": null})");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(ParseHfSentenceBertConfig(R"({"do_lower_case": true})").status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(ParseHfSentenceBertConfig(R"({"max_seq_length": 1})").status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(ParseHfSentenceBertConfig(R"({"max_seq_length": "2048"})").status().code(), StatusCode::kCorruptFile);
}

// ---------------------------------------------------------------------------
// Prompts
// ---------------------------------------------------------------------------
TEST(HfPrompts, FolderNamesFirstThenBuiltIns) {
  auto t = ParseHfPromptTable(R"({"prompts": {"query": "Q: ", "document": "title: none | text: ",
      "STS": "task: sentence similarity | query: "}, "default_prompt_name": null})");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->prompts.size(), 3u);
  EXPECT_EQ(t->prompts[2].name, "STS");  // file order kept
  // A folder name shadows the built-in one of the same name.
  EXPECT_EQ(ValueOr(ResolveTaskPrompt(*t, "query"), "?"), "Q: ");
  EXPECT_EQ(ValueOr(ResolveTaskPrompt(*t, "STS"), "?"), "task: sentence similarity | query: ");
  // Built-in names still work.
  EXPECT_EQ(ValueOr(ResolveTaskPrompt(*t, "fact-checking"), "?"), "task: fact checking | query: ");
  // Names are case-sensitive: "sts" is neither.
  auto unknown = ResolveTaskPrompt(*t, "sts");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown task 'sts'"));
  EXPECT_THAT(unknown.status().message(), HasSubstr("query, document, STS, question-answering"));
  const std::vector<std::string> names = AvailableTaskNames(*t);
  EXPECT_EQ(names.size(), 3u + std::size(kTaskPrompts) - 2);  // query/document listed once
  EXPECT_EQ(names[0], "query");
}

TEST(HfPrompts, Titles) {
  auto t = ParseHfPromptTable(R"({"prompts": {"document": "title: none | text: ", "q": "task: x | query: "}})");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(ValueOr(ResolveTaskPrompt(*t, "document", "Paris"), "?"), "title: Paris | text: ");
  EXPECT_EQ(ValueOr(ResolveTaskPrompt(*t, "document"), "?"), "title: none | text: ");
  EXPECT_EQ(ResolveTaskPrompt(*t, "q", "T").status().code(), StatusCode::kInvalidArgument);
  // Built-in document template; and a built-in without a title slot.
  HfPromptTable empty;
  EXPECT_EQ(ValueOr(ResolveTaskPrompt(empty, "document", "A B"), "?"), "title: A B | text: ");
  EXPECT_EQ(ValueOr(ResolveTaskPrompt(empty, "document"), "?"), "title: none | text: ");
  auto bad = ResolveTaskPrompt(empty, "query", "T");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("a title cannot be used with task"));
}

TEST(HfPrompts, MalformedTables) {
  EXPECT_EQ(ParseHfPromptTable(R"({"prompts": {"a": 1}})").status().code(), StatusCode::kCorruptFile);
  EXPECT_EQ(ParseHfPromptTable(R"({"prompts": ["a"]})").status().code(), StatusCode::kCorruptFile);
  auto def = ParseHfPromptTable(R"({"prompts": {"a": "A: "}, "default_prompt_name": "b"})");
  ASSERT_FALSE(def.ok());
  EXPECT_THAT(def.status().message(), HasSubstr("default_prompt_name 'b'"));
  auto ok = ParseHfPromptTable(R"({"prompts": {"a": "A: "}, "default_prompt_name": "a"})");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->default_prompt_name, "a");
  auto none = ParseHfPromptTable(R"({"similarity_fn_name": "cosine"})");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->prompts.empty());
}

// Every golden case's (task, title) resolves to the prompt string that
// sentence-transformers was given (scripts/gen_st_golden.py), with the folder
// prompt table recorded in the golden file.
TEST(HfPrompts, GoldenCasesResolveToTheirPrompts) {
  const fs::path golden = fs::path(GEMBED_SOURCE_DIR) / "tests/golden/data/st_embeddinggemma.json";
  std::ifstream in(golden);
  ASSERT_TRUE(in) << golden;
  const Json doc = Json::parse(in);
  HfPromptTable table;
  for (auto it = doc["folder_prompts"].begin(); it != doc["folder_prompts"].end(); ++it) {
    table.prompts.push_back({it.key(), it.value().get<std::string>()});
  }
  ASSERT_EQ(table.prompts.size(), 14u);
  int checked = 0;
  for (const Json& c : doc["cases"]) {
    if (c["task"].is_null()) continue;
    const std::string title = c["title"].is_null() ? "" : c["title"].get<std::string>();
    auto p = ResolveTaskPrompt(table, c["task"].get<std::string>(), title);
    ASSERT_TRUE(p.ok()) << c["label"] << ": " << p.status().ToString();
    EXPECT_EQ(*p, c["prompt"].get<std::string>()) << c["label"];
    ++checked;
  }
  EXPECT_GE(checked, 40);
}

// ---------------------------------------------------------------------------
// Tiny folders
// ---------------------------------------------------------------------------

// A 267-token Gemma3-style tokenizer.json: <pad> <eos> <bos> <unk>, 256 byte
// tokens, a few pieces and merges, the EmbeddingGemma post-processor
// "<bos> $A <eos>", and one added token (<extra>, id 267) beyond the model
// vocabulary, like Gemma3's <image_soft_token>.
std::string TinyTokenizerJson() {
  std::string vocab = R"("<pad>":0,"<eos>":1,"<bos>":2,"<unk>":3)";
  for (int b = 0; b < 256; ++b) vocab += fmt::format(",\"<0x{:02X}>\":{}", b, 4 + b);
  vocab += R"(,"▁":260,"a":261,"b":262,"c":263,"ab":264,"▁a":265,"abc":266)";
  std::string j = R"({"version": "1.0", "truncation": null, "padding": null,
  "added_tokens": [
    {"id": 0, "content": "<pad>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 1, "content": "<eos>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 2, "content": "<bos>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 3, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 267, "content": "<extra>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
  ],
  "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
  "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false},
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
               {"SpecialToken": {"id": "<eos>", "type_id": 0}}],
    "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
             {"SpecialToken": {"id": "<eos>", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
             {"SpecialToken": {"id": "<eos>", "type_id": 1}}],
    "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]},
                       "<eos>": {"id": "<eos>", "ids": [1], "tokens": ["<eos>"]}}},
  "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
              {"type": "ByteFallback"}, {"type": "Fuse"}]},
  "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null,
    "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
    "vocab": {VOCAB}, "merges": [["a", "b"], ["▁", "a"], ["ab", "c"]]}})";
  j.replace(j.find("VOCAB"), 5, vocab);
  return j;
}

constexpr uint32_t kTinyVocab = 267;
constexpr int64_t kHidden = 64, kLayers = 2, kHeads = 2, kHeadDim = 32, kFf = 96, kDense = 96;

struct FolderOptions {
  SafetensorsDType dtype = SafetensorsDType::kF32;
  bool prefix = false;  // "model." names
  int shards = 1;
  bool dense = true;
};

void WriteText(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

std::vector<uint8_t> Encode(const std::vector<float>& v, SafetensorsDType t) {
  std::vector<uint8_t> b;
  if (t == SafetensorsDType::kF32) {
    b.resize(v.size() * 4);
    std::memcpy(b.data(), v.data(), b.size());
    return b;
  }
  b.resize(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = t == SafetensorsDType::kBF16 ? F32ToBf16(v[i]) : F32ToF16(v[i]);
    std::memcpy(b.data() + 2 * i, &h, 2);
  }
  return b;
}

float Decode(float x, SafetensorsDType t) {
  if (t == SafetensorsDType::kBF16) return Bf16ToF32(F32ToBf16(x));
  if (t == SafetensorsDType::kF16) return F16ToF32(F32ToF16(x));
  return x;
}

// The HF tensors of the tiny model: name -> (PyTorch shape, float values).
struct HfTensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
  bool norm = false;
};
using TensorMap = std::map<std::string, HfTensor>;

TensorMap TinyTensors(uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  TensorMap m;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale, bool norm = false) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    HfTensor t{std::move(shape), std::vector<float>(static_cast<size_t>(n)), norm};
    for (float& x : t.values) x = nd(rng) * scale;
    m[name] = std::move(t);
  };
  add("embed_tokens.weight", {kTinyVocab, kHidden}, 0.05f);
  for (int i = 0; i < kLayers; ++i) {
    const std::string b = fmt::format("layers.{}.", i);
    const float s = 1.0f / std::sqrt(static_cast<float>(kHidden));
    add(b + "input_layernorm.weight", {kHidden}, 0.1f, true);
    add(b + "self_attn.q_proj.weight", {kHeads * kHeadDim, kHidden}, s);
    add(b + "self_attn.k_proj.weight", {kHeadDim, kHidden}, s);
    add(b + "self_attn.v_proj.weight", {kHeadDim, kHidden}, s);
    add(b + "self_attn.q_norm.weight", {kHeadDim}, 0.1f, true);
    add(b + "self_attn.k_norm.weight", {kHeadDim}, 0.1f, true);
    add(b + "self_attn.o_proj.weight", {kHidden, kHeads * kHeadDim}, s);
    add(b + "post_attention_layernorm.weight", {kHidden}, 0.1f, true);
    add(b + "pre_feedforward_layernorm.weight", {kHidden}, 0.1f, true);
    add(b + "mlp.gate_proj.weight", {kFf, kHidden}, s);
    add(b + "mlp.up_proj.weight", {kFf, kHidden}, s);
    add(b + "mlp.down_proj.weight", {kHidden, kFf}, 1.0f / std::sqrt(static_cast<float>(kFf)));
    add(b + "post_feedforward_layernorm.weight", {kHidden}, 0.1f, true);
  }
  add("norm.weight", {kHidden}, 0.1f, true);
  return m;
}

Json TinyConfig() {
  return Json{{"model_type", "gemma3_text"},
              {"use_bidirectional_attention", true},
              {"hidden_size", kHidden},
              {"num_hidden_layers", kLayers},
              {"intermediate_size", kFf},
              {"num_attention_heads", kHeads},
              {"num_key_value_heads", 1},
              {"head_dim", kHeadDim},
              {"query_pre_attn_scalar", kHeadDim},
              {"vocab_size", kTinyVocab},
              {"max_position_embeddings", 64},
              {"sliding_window", 8},
              {"layer_types", {"sliding_attention", "full_attention"}},
              {"rms_norm_eps", 1e-6},
              {"rope_theta", 1000000.0},
              {"rope_local_base_freq", 10000.0},
              {"hidden_activation", "gelu_pytorch_tanh"}};
}

class HfFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / fmt::format("gembed_test_hf_{}_{}", getpid(),
                                                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Writes a complete tiny folder; returns its path.
  fs::path WriteFolder(const std::string& name, const FolderOptions& o = {}, const TensorMap& tensors = TinyTensors(),
                       const Json& config = TinyConfig()) {
    const fs::path d = root_ / name;
    fs::create_directories(d);
    WriteText(d / "config.json", config.dump(2));
    WriteText(d / "tokenizer.json", TinyTokenizerJson());
    WriteText(d / "tokenizer_config.json", R"({"add_bos_token": true, "add_eos_token": true})");
    WriteText(d / "sentence_bert_config.json",
              fmt::format(R"({{"max_seq_length": {}, "do_lower_case": false}})", max_seq_length_));
    WriteText(d / "config_sentence_transformers.json",
              R"({"prompts": {"query": "task: search result | query: ", "document": "title: none | text: "},
                  "default_prompt_name": null})");
    Json modules = Json::array({{{"idx", 0}, {"path", ""}, {"type", "sentence_transformers.models.Transformer"}},
                                {{"idx", 1}, {"path", "1_Pooling"}, {"type", "sentence_transformers.models.Pooling"}}});
    WriteText(d / "1_Pooling/config.json",
              fmt::format(R"({{"word_embedding_dimension": {}, "pooling_mode_mean_tokens": true,
                              "include_prompt": true}})",
                          kHidden));
    if (o.dense) {
      std::mt19937 rng(99);
      std::normal_distribution<float> nd(0.0f, 0.1f);
      int idx = 2;
      for (auto [dir, in, out] : {std::tuple{"2_Dense", kHidden, kDense}, std::tuple{"3_Dense", kDense, kHidden}}) {
        modules.push_back({{"idx", idx++}, {"path", dir}, {"type", "sentence_transformers.models.Dense"}});
        WriteText(d / dir / "config.json",
                  fmt::format(R"({{"in_features": {}, "out_features": {}, "bias": false,
                                  "activation_function": "torch.nn.modules.linear.Identity"}})",
                              in, out));
        std::vector<float> w(static_cast<size_t>(in * out));
        for (float& x : w) x = nd(rng);
        dense_[dir] = w;
        SafetensorsWriter sw;
        EXPECT_TRUE(sw.AddTensor("linear.weight", o.dtype, {out, in}, Encode(w, o.dtype)).ok());
        EXPECT_TRUE(sw.WriteFile((d / dir / "model.safetensors").string()).ok());
      }
    }
    modules.push_back({{"idx", 4}, {"path", "4_Normalize"}, {"type", "sentence_transformers.models.Normalize"}});
    WriteText(d / "modules.json", modules.dump(2));

    const std::string prefix = o.prefix ? "model." : "";
    std::vector<SafetensorsWriter> shards(static_cast<size_t>(o.shards));
    Json weight_map = Json::object();
    int k = 0;
    for (const auto& [n, t] : tensors) {
      const int s = k++ % o.shards;
      EXPECT_TRUE(shards[s].AddTensor(prefix + n, o.dtype, t.shape, Encode(t.values, o.dtype)).ok()) << n;
      weight_map[prefix + n] = fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, o.shards);
    }
    if (o.shards == 1) {
      EXPECT_TRUE(shards[0].WriteFile((d / "model.safetensors").string()).ok());
    } else {
      for (int s = 0; s < o.shards; ++s) {
        EXPECT_TRUE(
            shards[s].WriteFile((d / fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, o.shards)).string())
                .ok());
      }
      WriteText(d / "model.safetensors.index.json", Json{{"metadata", Json::object()}, {"weight_map", weight_map}}.dump());
    }
    return d;
  }

  fs::path root_;
  std::map<std::string, std::vector<float>> dense_;
  int max_seq_length_ = 64;  // sentence_bert_config.json (config.json: max_position_embeddings 64)
};

// Reads float i of a view (F32 / F16 / BF16).
float At(const TensorView& v, int64_t i) {
  const auto* p = static_cast<const uint8_t*>(v.data);
  uint16_t h;
  switch (v.dtype) {
    case DType::kF16:
      std::memcpy(&h, p + 2 * i, 2);
      return F16ToF32(h);
    case DType::kBF16:
      std::memcpy(&h, p + 2 * i, 2);
      return Bf16ToF32(h);
    default: {
      float f;
      std::memcpy(&f, p + 4 * i, 4);
      return f;
    }
  }
}

void ExpectWeightsMatch(const HfModel& m, const TensorMap& tensors, SafetensorsDType dtype) {
  ModelWeights w = m.weights();
  int n_norm = 0, n_mat = 0;
  Status st = ForEachTensor(m.config(), w, [&](const TensorSpec& s, TensorView& v) -> Status {
    if (s.name == "dense_2.weight" || s.name == "dense_3.weight") return Status::Ok();
    const std::string hf = HfTensorName(s);
    auto it = tensors.find(hf);
    EXPECT_NE(it, tensors.end()) << s.name << " -> " << hf;
    if (it == tensors.end()) return Status::Ok();
    const HfTensor& t = it->second;
    EXPECT_EQ(v.elements(), static_cast<int64_t>(t.values.size())) << s.name;
    EXPECT_EQ(t.norm, s.role == TensorRole::kNorm) << s.name;
    if (s.role == TensorRole::kNorm) {
      ++n_norm;
      EXPECT_EQ(v.dtype, DType::kF32) << s.name;
      // Exactly 1.0f + w (HF computes 1 + w.float() in fp32).
      for (size_t i = 0; i < t.values.size(); ++i) {
        if (At(v, static_cast<int64_t>(i)) != 1.0f + Decode(t.values[i], dtype)) {
          ADD_FAILURE() << s.name << "[" << i << "] is not 1 + w";
          break;
        }
      }
    } else {
      ++n_mat;
      // Same element order: PyTorch [out, in] row-major = ggml [in, out].
      for (size_t i = 0; i < t.values.size(); ++i) {
        if (At(v, static_cast<int64_t>(i)) != Decode(t.values[i], dtype)) {
          ADD_FAILURE() << s.name << "[" << i << "] differs from the file";
          break;
        }
      }
    }
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(n_norm, 1 + 6 * kLayers);
  EXPECT_EQ(n_mat, 1 + 7 * kLayers);
}

TEST_F(HfFolderTest, LoadsConfigAndFoldsNorms) {
  const TensorMap tensors = TinyTensors();
  max_seq_length_ = 48;
  const fs::path d = WriteFolder("f32", {}, tensors);
  EXPECT_TRUE(IsHfFolder(d.string()));
  EXPECT_FALSE(IsHfFolder((d / "config.json").string()));
  auto m = HfModel::Open(d.string());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const ModelConfig& c = (*m)->config();
  EXPECT_EQ(c.n_embd, kHidden);
  EXPECT_EQ(c.n_vocab, kTinyVocab);
  EXPECT_EQ(c.dense_hidden, kDense);
  EXPECT_EQ(c.context_length, 64u);
  EXPECT_EQ((*m)->EngineConfig().context_length, 48u);  // sentence_bert max_seq_length
  EXPECT_EQ((*m)->folder_config().prompts.prompts.size(), 2u);
  EXPECT_EQ((*m)->source_dtype(), DType::kF32);
  ExpectWeightsMatch(**m, tensors, SafetensorsDType::kF32);
  // Matrices are zero-copy views of the mapped file, Dense included.
  const ModelWeights& w = (*m)->weights();
  EXPECT_EQ(w.dense_2.ne[0], kHidden);
  EXPECT_EQ(w.dense_2.ne[1], kDense);
  EXPECT_EQ(At(w.dense_2, 5), dense_["2_Dense"][5]);
  EXPECT_EQ(At(w.dense_3, 7), dense_["3_Dense"][7]);

  // The engine's tokenizer drops <extra> (id 267, no embedding row); the
  // converter's vocabulary keeps it and WriteGgufVocab drops it.
  auto tok = (*m)->LoadTokenizer();
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ((*tok)->vocab_size(), static_cast<int32_t>(kTinyVocab));
  // BPE by merge rank: "abc" -> a b c -> ab c -> abc; "▁ab" -> ▁ a b -> ▁ ab (no "▁ ab" merge).
  EXPECT_EQ((*tok)->Encode("abc ab", true, true), (std::vector<int32_t>{2, 266, 260, 264, 1}));
  auto vocab = (*m)->ReadVocab();
  ASSERT_TRUE(vocab.ok());
  EXPECT_EQ(vocab->size(), static_cast<int32_t>(kTinyVocab + 1));
  EXPECT_TRUE(vocab->add_bos);
  EXPECT_TRUE(vocab->add_eos);
}

// The engine truncates to sentence_bert_config's max_seq_length (as
// sentence-transformers does), keeping BOS and EOS; a converted GGUF keeps
// config.json's max_position_embeddings as its context_length (llama.cpp's
// converter does the same).
TEST_F(HfFolderTest, EngineTruncatesToMaxSeqLength) {
  max_seq_length_ = 48;
  const fs::path d = WriteFolder("trunc");
  auto e = Engine::Open(d.string());
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ((*e)->config().context_length, 48u);
  bool truncated = false;
  auto ids = (*e)->Tokenize(std::string(100, 'c'), {}, &truncated);
  ASSERT_TRUE(ids.ok());
  EXPECT_TRUE(truncated);
  ASSERT_EQ(ids->size(), 48u);
  EXPECT_EQ(ids->front(), 2);
  EXPECT_EQ(ids->back(), 1);
  EXPECT_EQ((*ids)[46], 263);
  EmbedOptions strict;
  strict.truncate = false;
  EXPECT_EQ((*e)->Embed({std::string(100, 'c')}, strict).status().code(), StatusCode::kInvalidArgument);
  const fs::path gguf = root_ / "trunc.gguf";
  ASSERT_TRUE(ConvertHfFolderToGguf(d.string(), gguf.string()).ok());
  auto g = GgufFile::Open(gguf.string());
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(ValueOr((*g)->GetU32("gemma-embedding.context_length"), 0), 64u);
}

TEST_F(HfFolderTest, PrefixedShardedAndHalfPrecisionSources) {
  const TensorMap tensors = TinyTensors(5);
  for (auto dtype : {SafetensorsDType::kBF16, SafetensorsDType::kF16}) {
    FolderOptions o;
    o.dtype = dtype;
    o.prefix = true;
    o.shards = 3;
    const fs::path d = WriteFolder(dtype == SafetensorsDType::kBF16 ? "bf16" : "f16", o, tensors);
    auto m = HfModel::Open(d.string());
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ((*m)->source_dtype(), dtype == SafetensorsDType::kBF16 ? DType::kBF16 : DType::kF16);
    ExpectWeightsMatch(**m, tensors, dtype);
  }
}

TEST_F(HfFolderTest, NoModulesJsonMeansMeanPoolingWithoutDense) {
  FolderOptions o;
  o.dense = false;
  const fs::path d = WriteFolder("bare", o);
  fs::remove(d / "modules.json");
  auto m = HfModel::Open(d.string());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_FALSE((*m)->config().has_dense());
  EXPECT_FALSE((*m)->folder_config().has_modules_json);
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_F(HfFolderTest, ConvertWritesTheConverterLayout) {
  const TensorMap tensors = TinyTensors(3);
  const fs::path d = WriteFolder("src", {}, tensors);
  for (DType type : {DType::kF32, DType::kQ8_0, DType::kF16, DType::kBF16}) {
    const fs::path out = root_ / fmt::format("out_{}.gguf", DTypeName(type));
    HfConvertOptions o;
    o.type = type;
    o.threads = 2;
    auto stats = ConvertHfFolderToGguf(d.string(), out.string(), o);
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    EXPECT_EQ(stats->tensors, 1 + 13 * kLayers + 1 + 2);
    auto f = GgufFile::Open(out.string());
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    const GgufFile& g = **f;
    EXPECT_EQ(ValueOr(g.GetString("general.architecture"), ""), "gemma-embedding");
    EXPECT_EQ(ValueOr(g.GetString("general.name"), ""), "src");
    EXPECT_EQ(ValueOr(g.GetU32("general.file_type"), 99), LlamaFileType(type));
    EXPECT_EQ(ValueOr(g.GetU32("gemma-embedding.context_length"), 0), 64u);  // max_position_embeddings
    EXPECT_EQ(ValueOr(g.GetU32("gemma-embedding.attention.sliding_window"), 0), 8u);
    EXPECT_EQ(ValueOr(g.GetF32("gemma-embedding.rope.freq_base"), 0), 1e6f);
    EXPECT_EQ(ValueOr(g.GetF32("gemma-embedding.rope.freq_base_swa"), 0), 1e4f);
    EXPECT_EQ(ValueOr(g.GetU32("gemma-embedding.pooling_type"), 0), 1u);
    EXPECT_EQ(ValueOr(g.GetU32("gemma-embedding.dense_2_feat_in"), 0), kHidden);
    EXPECT_EQ(ValueOr(g.GetU32("gemma-embedding.dense_2_feat_out"), 0), kDense);
    EXPECT_EQ(ValueOr(g.GetU32("gemma-embedding.dense_3_feat_in"), 0), kDense);
    EXPECT_EQ(ValueOr(g.GetU32("gemma-embedding.dense_3_feat_out"), 0), kHidden);
    // layer_types (sliding, full) is not the default period 6: the pattern is stored.
    ASSERT_NE(g.Find("gemma-embedding.attention.sliding_window_pattern"), nullptr);
    EXPECT_EQ(g.Find("gemma-embedding.attention.sliding_window_pattern")->arr_bool, (std::vector<bool>{true, false}));
    EXPECT_EQ(ValueOr(g.GetBool("tokenizer.ggml.add_bos_token"), false), true);
    EXPECT_EQ(ValueOr(g.GetBool("tokenizer.ggml.add_eos_token"), false), true);
    EXPECT_EQ(ValueOr(g.GetStringArray("tokenizer.ggml.tokens"), std::vector<std::string_view>{}).size(), kTinyVocab);  // <extra> dropped
    // Dtypes: norms F32; every 2-D weight the requested type.
    for (const GgufTensorInfo& t : g.tensors()) {
      EXPECT_EQ(t.dtype, t.n_dims == 1 ? DType::kF32 : type) << t.name;
    }
    // The file loads as a model with the folder's config.
    auto c = ConfigFromGguf(g);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->layer_is_sliding, (std::vector<bool>{true, false}));
    EXPECT_EQ(c->dense_hidden, kDense);
    // Norms: 1 + w exactly.
    const TensorView qn = g.View(*g.FindTensor("blk.1.attn_q_norm.weight"));
    const HfTensor& src = tensors.at("layers.1.self_attn.q_norm.weight");
    for (int64_t i = 0; i < kHeadDim; ++i) EXPECT_EQ(At(qn, i), 1.0f + src.values[i]);
    // A matrix: bytes equal EncodeTensor of the source values (Q8_0: ggml's rule).
    const GgufTensorInfo* up = g.FindTensor("blk.0.ffn_up.weight");
    ASSERT_NE(up, nullptr);
    EXPECT_EQ(up->ne[0], kHidden);
    EXPECT_EQ(up->ne[1], kFf);
    const HfTensor& up_src = tensors.at("layers.0.mlp.up_proj.weight");
    auto want = EncodeTensor(up_src.values.data(), kHidden, kFf, type);
    ASSERT_TRUE(want.ok());
    const TensorView upv = g.View(*up);
    ASSERT_EQ(upv.nbytes, want->size());
    EXPECT_EQ(std::memcmp(upv.data, want->data(), want->size()), 0);
    const GgufTensorInfo* embd = g.FindTensor("token_embd.weight");
    ASSERT_NE(embd, nullptr);
    EXPECT_EQ(embd->ne[1], kTinyVocab);
  }
  // Deterministic: converting twice gives identical bytes.
  const fs::path again = root_ / "again.gguf";
  HfConvertOptions o;
  o.type = DType::kQ8_0;
  o.threads = 1;  // a different thread count must not matter
  ASSERT_TRUE(ConvertHfFolderToGguf(d.string(), again.string(), o).ok());
  EXPECT_EQ(ReadAll(again), ReadAll(root_ / "out_Q8_0.gguf"));
}

TEST_F(HfFolderTest, EngineGivesTheSameVectorsFromFolderAndConvertedGguf) {
  const fs::path d = WriteFolder("eng");
  const fs::path gguf = root_ / "eng.gguf";
  ASSERT_TRUE(ConvertHfFolderToGguf(d.string(), gguf.string()).ok());
  EngineOptions eo;
  eo.threads = 2;
  auto ef = Engine::Open(d.string(), eo);
  ASSERT_TRUE(ef.ok()) << ef.status().ToString();
  auto eg = Engine::Open(gguf.string(), eo);
  ASSERT_TRUE(eg.ok()) << eg.status().ToString();
  EXPECT_EQ((*ef)->config().context_length, 64u);
  // Longer than the radius-4 window (sliding_window 8), with prompts, and
  // truncated at 64 tokens.
  const std::vector<std::string> texts = {"", "abc", "ab ab abc a b c", std::string(30, 'a') + " abc abc",
                                          "c b a abc <bos> x y z", std::string(200, 'b')};
  for (const char* prompt : {"", "task: search result | query: "}) {
    EmbedOptions opt;
    opt.prompt = prompt;
    for (const std::string& t : texts) {
      EXPECT_EQ(ValueOr((*ef)->Tokenize(t, opt), std::vector<int32_t>{}),
                ValueOr((*eg)->Tokenize(t, opt), std::vector<int32_t>{-1}))
          << t;
    }
    auto vf = (*ef)->Embed(texts, opt);
    auto vg = (*eg)->Embed(texts, opt);
    ASSERT_TRUE(vf.ok()) << vf.status().ToString();
    ASSERT_TRUE(vg.ok()) << vg.status().ToString();
    for (size_t i = 0; i < texts.size(); ++i) {
      double dot = 0, nf = 0, ng = 0;
      for (size_t j = 0; j < (*vf)[i].size(); ++j) {
        dot += double((*vf)[i][j]) * (*vg)[i][j];
        nf += double((*vf)[i][j]) * (*vf)[i][j];
        ng += double((*vg)[i][j]) * (*vg)[i][j];
      }
      EXPECT_GE(dot / std::sqrt(nf * ng), 0.999999) << texts[i];
    }
  }
}

bool SameTable(const HfPromptTable& a, const HfPromptTable& b) {
  if (a.prompts.size() != b.prompts.size() || a.default_prompt_name != b.default_prompt_name) return false;
  for (size_t i = 0; i < a.prompts.size(); ++i) {
    if (a.prompts[i].name != b.prompts[i].name || a.prompts[i].prefix != b.prompts[i].prefix) return false;
  }
  return true;
}

// `gembed convert` writes the folder's prompt table as gembed.prompts.* keys,
// and ReadHfPromptTable gives the same table from the GGUF as from the folder.
TEST_F(HfFolderTest, ConvertCarriesThePromptTable) {
  const fs::path d = WriteFolder("prompts");
  // Folder-only names, a built-in name redefined, a document prompt, a
  // non-ASCII prefix, file order that is not sorted, and a default name.
  WriteText(d / "config_sentence_transformers.json",
            R"({"prompts": {"STS": "task: sentence similarity | query: ", "query": "Q: ",
                "Retrieval-document": "title: none | text: ", "Ünïcode": "tâche : 東京 | ",
                "Empty": ""}, "default_prompt_name": "STS", "similarity_fn_name": "cosine"})");
  const fs::path gguf = root_ / "prompts.gguf";
  ASSERT_TRUE(ConvertHfFolderToGguf(d.string(), gguf.string()).ok());

  // The keys hold exactly the table, in file order.
  auto f = GgufFile::Open(gguf.string());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const std::vector<std::string_view> want_names = {"STS", "query", "Retrieval-document", "Ünïcode", "Empty"};
  const std::vector<std::string_view> want_prefixes = {"task: sentence similarity | query: ", "Q: ",
                                                       "title: none | text: ", "tâche : 東京 | ", ""};
  EXPECT_EQ(ValueOr((*f)->GetStringArray(kGgufPromptNamesKey), std::vector<std::string_view>{}), want_names);
  EXPECT_EQ(ValueOr((*f)->GetStringArray(kGgufPromptPrefixesKey), std::vector<std::string_view>{}), want_prefixes);
  EXPECT_EQ(ValueOr((*f)->GetString(kGgufPromptDefaultKey), "?"), "STS");
  EXPECT_EQ(std::string(kGgufPromptNamesKey), "gembed.prompts.names");
  EXPECT_EQ(std::string(kGgufPromptPrefixesKey), "gembed.prompts.prefixes");
  EXPECT_EQ(std::string(kGgufPromptDefaultKey), "gembed.prompts.default_name");

  // Read back: the same table as the folder's, so --task resolves the same.
  auto from_folder = ReadHfPromptTable(d.string());
  auto from_gguf = ReadHfPromptTable(gguf.string());
  ASSERT_TRUE(from_folder.ok()) << from_folder.status().ToString();
  ASSERT_TRUE(from_gguf.ok()) << from_gguf.status().ToString();
  ASSERT_EQ(from_folder->prompts.size(), 5u);
  EXPECT_TRUE(SameTable(*from_folder, *from_gguf));
  EXPECT_EQ(from_gguf->default_prompt_name, "STS");
  EXPECT_EQ(AvailableTaskNames(*from_gguf), AvailableTaskNames(*from_folder));
  EXPECT_EQ(AvailableTaskNames(*from_gguf).front(), "STS");
  EXPECT_EQ(ValueOr(ResolveTaskPrompt(*from_gguf, "STS"), "?"), "task: sentence similarity | query: ");
  EXPECT_EQ(ValueOr(ResolveTaskPrompt(*from_gguf, "query"), "?"), "Q: ");  // the folder's, not the built-in
  EXPECT_EQ(ValueOr(ResolveTaskPrompt(*from_gguf, "Retrieval-document", "T"), "?"), "title: T | text: ");
  EXPECT_EQ(ValueOr(ResolveTaskPrompt(*from_gguf, "fact-checking"), "?"), "task: fact checking | query: ");
  // The engine still opens the file (the keys are not in its way).
  EXPECT_TRUE(Engine::Open(gguf.string()).ok());

  // A table without a default name: names and prefixes, no default key.
  const fs::path d2 = WriteFolder("no_default");  // the fixture's table: query, document; default null
  const fs::path g2 = root_ / "no_default.gguf";
  ASSERT_TRUE(ConvertHfFolderToGguf(d2.string(), g2.string()).ok());
  auto f2 = GgufFile::Open(g2.string());
  ASSERT_TRUE(f2.ok());
  EXPECT_EQ(ValueOr((*f2)->GetStringArray(kGgufPromptNamesKey), std::vector<std::string_view>{}),
            (std::vector<std::string_view>{"query", "document"}));
  EXPECT_EQ((*f2)->Find(kGgufPromptDefaultKey), nullptr);
  auto t2 = ReadHfPromptTable(g2.string());
  ASSERT_TRUE(t2.ok()) << t2.status().ToString();
  EXPECT_TRUE(SameTable(*t2, ValueOr(ReadHfPromptTable(d2.string()), HfPromptTable{})));
  EXPECT_EQ(t2->prompts.size(), 2u);
  EXPECT_TRUE(t2->default_prompt_name.empty());
}

TEST_F(HfFolderTest, ConvertWithoutPromptTableWritesNoPromptKeys) {
  const fs::path d = WriteFolder("no_table");
  fs::remove(d / "config_sentence_transformers.json");
  const fs::path gguf = root_ / "no_table.gguf";
  ASSERT_TRUE(ConvertHfFolderToGguf(d.string(), gguf.string()).ok());
  auto f = GgufFile::Open(gguf.string());
  ASSERT_TRUE(f.ok());
  int prompt_keys = 0;
  for (const auto& kv : (*f)->metadata()) prompt_keys += kv.first.rfind("gembed.", 0) == 0;
  EXPECT_EQ(prompt_keys, 0);
  auto t = ReadHfPromptTable(gguf.string());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE(t->prompts.empty());
  EXPECT_TRUE(t->default_prompt_name.empty());
  // A table that names no prompt writes nothing either.
  WriteText(d / "config_sentence_transformers.json", R"({"prompts": {}, "default_prompt_name": null})");
  ASSERT_TRUE(ConvertHfFolderToGguf(d.string(), gguf.string()).ok());
  auto f2 = GgufFile::Open(gguf.string());
  ASSERT_TRUE(f2.ok());
  EXPECT_EQ((*f2)->Find(kGgufPromptNamesKey), nullptr);
  EXPECT_EQ((*f2)->Find(kGgufPromptPrefixesKey), nullptr);
  // Paths that are neither a folder nor a GGUF: the empty table (opening the
  // model reports the problem).
  for (const fs::path& p : {root_ / "missing.gguf", d / "config.json"}) {
    auto e = ReadHfPromptTable(p.string());
    ASSERT_TRUE(e.ok()) << p;
    EXPECT_TRUE(e->prompts.empty()) << p;
  }
}

TEST(HfPromptsGguf, MalformedKeysAreCorruptFileNamingTheKey) {
  const std::string names = kGgufPromptNamesKey, prefixes = kGgufPromptPrefixesKey, def = kGgufPromptDefaultKey;
  struct Case {
    const char* what;
    std::function<void(GgufWriter&)> write;
    std::string key;  // the key the message must name
  };
  const Case cases[] = {
      {"names not an array", [&](GgufWriter& w) {
         w.SetString(names, "query");
         w.SetStringArray(prefixes, {"Q: "});
       }, names},
      {"names of u32", [&](GgufWriter& w) {
         w.SetU32Array(names, {1, 2});
         w.SetStringArray(prefixes, {"A: ", "B: "});
       }, names},
      {"prefixes of i32", [&](GgufWriter& w) {
         w.SetStringArray(names, {"a", "b"});
         w.SetI32Array(prefixes, {1, 2});
       }, prefixes},
      {"prefixes not an array", [&](GgufWriter& w) {
         w.SetStringArray(names, {"a"});
         w.SetU32(prefixes, 7);
       }, prefixes},
      {"default not a string", [&](GgufWriter& w) {
         w.SetStringArray(names, {"a"});
         w.SetStringArray(prefixes, {"A: "});
         w.SetU32(def, 0);
       }, def},
      {"default an array", [&](GgufWriter& w) {
         w.SetStringArray(names, {"a"});
         w.SetStringArray(prefixes, {"A: "});
         w.SetStringArray(def, {"a"});
       }, def},
      {"lengths differ", [&](GgufWriter& w) {
         w.SetStringArray(names, {"a", "b", "c"});
         w.SetStringArray(prefixes, {"A: ", "B: "});
       }, prefixes},
      {"names without prefixes", [&](GgufWriter& w) { w.SetStringArray(names, {"a"}); }, prefixes},
      {"prefixes without names", [&](GgufWriter& w) { w.SetStringArray(prefixes, {"A: "}); }, names},
      {"default not a name", [&](GgufWriter& w) {
         w.SetStringArray(names, {"a", "b"});
         w.SetStringArray(prefixes, {"A: ", "B: "});
         w.SetString(def, "c");
       }, def},
      {"default without a table", [&](GgufWriter& w) { w.SetString(def, "a"); }, def},
      {"empty default", [&](GgufWriter& w) {
         w.SetStringArray(names, {"a"});
         w.SetStringArray(prefixes, {"A: "});
         w.SetString(def, "");
       }, def},
      {"empty name", [&](GgufWriter& w) {
         w.SetStringArray(names, {"a", ""});
         w.SetStringArray(prefixes, {"A: ", "B: "});
       }, names},
      {"repeated name", [&](GgufWriter& w) {
         w.SetStringArray(names, {"a", "b", "a"});
         w.SetStringArray(prefixes, {"A: ", "B: ", "C: "});
       }, names},
  };
  for (const Case& c : cases) {
    GgufWriter w;
    w.SetString("general.architecture", "gemma-embedding");
    c.write(w);
    const std::vector<uint8_t> bytes = w.ToBytes();
    auto f = GgufFile::FromBytes(bytes.data(), bytes.size());
    ASSERT_TRUE(f.ok()) << c.what << ": " << f.status().ToString();  // a valid GGUF; only the table is wrong
    auto t = HfPromptTableFromGguf(**f);
    ASSERT_FALSE(t.ok()) << c.what;
    EXPECT_EQ(t.status().code(), StatusCode::kCorruptFile) << c.what << ": " << t.status().ToString();
    EXPECT_THAT(t.status().message(), HasSubstr(c.key)) << c.what;
  }

  // A well-formed table, an empty one and none at all.
  GgufWriter ok;
  ok.SetStringArray(names, {"b", "a"});
  ok.SetStringArray(prefixes, {"B: ", ""});
  ok.SetString(def, "a");
  auto ok_bytes = ok.ToBytes();
  auto okf = GgufFile::FromBytes(ok_bytes.data(), ok_bytes.size());
  ASSERT_TRUE(okf.ok());
  auto t = HfPromptTableFromGguf(**okf);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->prompts.size(), 2u);
  EXPECT_EQ(t->prompts[0].name, "b");
  EXPECT_EQ(t->prompts[0].prefix, "B: ");
  EXPECT_EQ(t->prompts[1].name, "a");
  EXPECT_EQ(t->prompts[1].prefix, "");
  EXPECT_EQ(t->default_prompt_name, "a");
  GgufWriter empty;
  empty.SetStringArray(names, {});
  empty.SetStringArray(prefixes, {});
  auto empty_bytes = empty.ToBytes();
  auto ef = GgufFile::FromBytes(empty_bytes.data(), empty_bytes.size());
  ASSERT_TRUE(ef.ok());
  auto te = HfPromptTableFromGguf(**ef);
  ASSERT_TRUE(te.ok()) << te.status().ToString();
  EXPECT_TRUE(te->prompts.empty());
  GgufWriter none;
  none.SetString("general.architecture", "gemma-embedding");
  auto none_bytes = none.ToBytes();
  auto nf = GgufFile::FromBytes(none_bytes.data(), none_bytes.size());
  ASSERT_TRUE(nf.ok());
  auto tn = HfPromptTableFromGguf(**nf);
  ASSERT_TRUE(tn.ok());
  EXPECT_TRUE(tn->prompts.empty());
  EXPECT_TRUE(tn->default_prompt_name.empty());
}

// Through a file: ReadHfPromptTable reports a malformed table with the path
// and the key, and a broken GGUF with the reader's error.
TEST_F(HfFolderTest, ReadHfPromptTableReportsMalformedGgufFiles) {
  GgufWriter w;
  w.SetString("general.architecture", "gemma-embedding");
  w.SetStringArray(kGgufPromptNamesKey, {"a", "b"});
  w.SetStringArray(kGgufPromptPrefixesKey, {"A: "});
  const fs::path p = root_ / "bad_table.gguf";
  ASSERT_TRUE(w.WriteFile(p.string()).ok());
  auto t = ReadHfPromptTable(p.string());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kCorruptFile);
  EXPECT_THAT(t.status().message(), HasSubstr(p.string()));
  EXPECT_THAT(t.status().message(), HasSubstr(kGgufPromptPrefixesKey));
  // The GGUF magic followed by garbage: the reader's error, not an empty table.
  const fs::path junk = root_ / "junk.gguf";
  WriteText(junk, std::string("GGUF\x03\0\0\0", 8) + "xyz");
  auto j = ReadHfPromptTable(junk.string());
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), StatusCode::kCorruptFile) << j.status().ToString();
  EXPECT_THAT(j.status().message(), HasSubstr(junk.string()));
}

// One defect per folder -> a clear Status from every entry point.
TEST_F(HfFolderTest, BrokenFoldersGiveClearErrors) {
  struct Case {
    const char* what;
    std::function<void(const fs::path&)> damage;
    StatusCode code;
    const char* message;
  };
  const Case cases[] = {
      {"no config.json", [](const fs::path& d) { fs::remove(d / "config.json"); }, StatusCode::kNotFound,
       "config.json"},
      {"bad config.json", [](const fs::path& d) { WriteText(d / "config.json", "{\"model_type\": "); },
       StatusCode::kCorruptFile, "config.json: invalid JSON"},
      {"causal", [](const fs::path& d) {
         Json c = TinyConfig();
         c["use_bidirectional_attention"] = false;
         WriteText(d / "config.json", c.dump());
       }, StatusCode::kUnsupported, "use_bidirectional_attention"},
      {"no weights", [](const fs::path& d) { fs::remove(d / "model.safetensors"); }, StatusCode::kNotFound,
       "model.safetensors"},
      {"only pytorch_model.bin", [](const fs::path& d) {
         fs::rename(d / "model.safetensors", d / "pytorch_model.bin");
       }, StatusCode::kUnsupported, "pytorch_model.bin"},
      {"truncated weights", [](const fs::path& d) {
         fs::resize_file(d / "model.safetensors", fs::file_size(d / "model.safetensors") - 10);
       }, StatusCode::kCorruptFile, "model.safetensors"},
      {"no tokenizer", [](const fs::path& d) { fs::remove(d / "tokenizer.json"); }, StatusCode::kNotFound,
       "tokenizer.json"},
      {"no pooling config", [](const fs::path& d) { fs::remove(d / "1_Pooling/config.json"); },
       StatusCode::kNotFound, "1_Pooling/config.json"},
      {"cls pooling", [](const fs::path& d) {
         WriteText(d / "1_Pooling/config.json", R"({"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false})");
       }, StatusCode::kUnsupported, "mean pooling"},
      {"no dense weights", [](const fs::path& d) { fs::remove(d / "3_Dense/model.safetensors"); },
       StatusCode::kNotFound, "3_Dense/model.safetensors"},
      {"dense bias", [](const fs::path& d) {
         WriteText(d / "2_Dense/config.json", R"({"in_features": 64, "out_features": 96, "bias": true,
             "activation_function": "torch.nn.modules.linear.Identity"})");
       }, StatusCode::kUnsupported, "bias"},
      {"dense widths", [](const fs::path& d) {
         WriteText(d / "2_Dense/config.json", R"({"in_features": 64, "out_features": 128, "bias": false,
             "activation_function": "torch.nn.modules.linear.Identity"})");
       }, StatusCode::kUnsupported, "Dense"},
      {"bad modules.json", [](const fs::path& d) { WriteText(d / "modules.json", "[{]"); }, StatusCode::kCorruptFile,
       "modules.json"},
      {"bad prompts", [](const fs::path& d) {
         WriteText(d / "config_sentence_transformers.json", R"({"prompts": {"query": 5}})");
       }, StatusCode::kCorruptFile, "config_sentence_transformers.json"},
  };
  for (const Case& c : cases) {
    const fs::path d = WriteFolder(fmt::format("broken_{}", &c - cases));
    c.damage(d);
    // HfModel::Open does not read the tokenizer; the converter and the engine do.
    auto m = HfModel::Open(d.string());
    Status st = m.ok() ? (*m)->LoadTokenizer().status() : m.status();
    ASSERT_FALSE(st.ok()) << c.what;
    EXPECT_EQ(st.code(), c.code) << c.what << ": " << st.ToString();
    EXPECT_THAT(st.message(), HasSubstr(c.message)) << c.what << ": " << st.ToString();
    auto conv = ConvertHfFolderToGguf(d.string(), (root_ / "x.gguf").string());
    ASSERT_FALSE(conv.ok()) << c.what;
    EXPECT_THAT(conv.status().message(), HasSubstr(c.message)) << c.what;
    auto e = Engine::Open(d.string());
    ASSERT_FALSE(e.ok()) << c.what;
    EXPECT_THAT(e.status().message(), HasSubstr(c.message)) << c.what;
  }
}

TEST_F(HfFolderTest, BrokenTensorsGiveClearErrors) {
  {  // missing tensor
    TensorMap t = TinyTensors();
    t.erase("layers.1.mlp.up_proj.weight");
    auto m = HfModel::Open(WriteFolder("missing", {}, t).string());
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
    EXPECT_THAT(m.status().message(), HasSubstr("layers.1.mlp.up_proj.weight"));
  }
  {  // transposed matrix
    TensorMap t = TinyTensors();
    t["layers.0.self_attn.k_proj.weight"].shape = {kHidden, kHeadDim};
    auto m = HfModel::Open(WriteFolder("transposed", {}, t).string());
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), StatusCode::kCorruptFile);
    EXPECT_THAT(m.status().message(), HasSubstr("layers.0.self_attn.k_proj.weight: shape [64, 32]"));
    EXPECT_THAT(m.status().message(), HasSubstr("[32, 64]"));
  }
  {  // vocabulary larger than the embedding table
    Json c = TinyConfig();
    c["vocab_size"] = 200;
    TensorMap t = TinyTensors();
    t["embed_tokens.weight"].shape = {200, kHidden};
    t["embed_tokens.weight"].values.resize(200 * kHidden);
    const fs::path d = WriteFolder("small_vocab", {}, t, c);
    auto m = HfModel::Open(d.string());
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    auto tok = (*m)->LoadTokenizer();
    ASSERT_FALSE(tok.ok());
    EXPECT_THAT(tok.status().message(), HasSubstr("vocab_size"));
  }
  {  // a bias tensor
    const fs::path d = WriteFolder("bias");
    SafetensorsWriter w;
    for (const auto& [n, t] : TinyTensors()) ASSERT_TRUE(w.AddTensor(n, SafetensorsDType::kF32, t.shape, Encode(t.values, SafetensorsDType::kF32)).ok());
    ASSERT_TRUE(w.AddTensor("layers.0.self_attn.q_proj.bias", SafetensorsDType::kF32, {kHeads * kHeadDim},
                            std::vector<uint8_t>(kHeads * kHeadDim * 4)).ok());
    ASSERT_TRUE(w.WriteFile((d / "model.safetensors").string()).ok());
    auto m = HfModel::Open(d.string());
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), StatusCode::kUnsupported);
    EXPECT_THAT(m.status().message(), HasSubstr("q_proj.bias"));
  }
  {  // a dtype gembed does not compute with
    const fs::path d = WriteFolder("f64");
    SafetensorsWriter w;
    for (const auto& [n, t] : TinyTensors()) {
      if (n == "norm.weight") {
        std::vector<uint8_t> b(t.values.size() * 8);
        for (size_t i = 0; i < t.values.size(); ++i) {
          const double x = t.values[i];
          std::memcpy(b.data() + 8 * i, &x, 8);
        }
        ASSERT_TRUE(w.AddTensor(n, SafetensorsDType::kF64, t.shape, b).ok());
      } else {
        ASSERT_TRUE(w.AddTensor(n, SafetensorsDType::kF32, t.shape, Encode(t.values, SafetensorsDType::kF32)).ok());
      }
    }
    ASSERT_TRUE(w.WriteFile((d / "model.safetensors").string()).ok());
    auto m = HfModel::Open(d.string());
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), StatusCode::kUnsupported);
    EXPECT_THAT(m.status().message(), HasSubstr("norm.weight"));
  }
  {  // not a folder at all
    auto m = HfModel::Open((root_ / "nope").string());
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
  }
  {  // an output type the converter does not write
    HfConvertOptions o;
    o.type = DType::kQ4_0;
    auto r = ConvertHfFolderToGguf(WriteFolder("type").string(), (root_ / "t.gguf").string(), o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace gembed
