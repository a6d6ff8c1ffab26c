// The request logic of `gembed serve` without sockets: body parsing and
// validation (every bad shape is a 4xx naming the field), the OpenAI / TEI
// response bodies (floats round-trip, base64 is little-endian float32),
// metrics text, the API key, limits, draining, and the Service answering
// with the same vectors as Engine::Embed, on a small synthetic Q8_0 model.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "engine/engine.h"
#include "model/synthetic.h"
#include "server/api.h"
#include "server/metrics.h"
#include "server/service.h"

namespace gembed::server {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

ParseLimits Limits() {
  ParseLimits l;
  l.max_inputs = 4;
  l.vocab_size = 1000;
  l.max_sequence_tokens = 8;
  l.dims = {256, 128};
  return l;
}

ApiError ParseError(std::string_view body) {
  EmbedRequest r;
  auto e = ParseOpenAiEmbeddings(body, Limits(), &r);
  EXPECT_TRUE(e.has_value()) << body;
  return e.value_or(ApiError{});
}

// ---- parsing ----------------------------------------------------------------

TEST(ServerApi, OpenAiInputShapes) {
  EmbedRequest r;
  ASSERT_FALSE(ParseOpenAiEmbeddings(R"({"input": "hello", "model": "m"})", Limits(), &r));
  EXPECT_EQ(r.texts, std::vector<std::string>{"hello"});
  EXPECT_FALSE(r.tokens);
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.encoding, Encoding::kFloat);
  EXPECT_TRUE(r.truncate);

  ASSERT_FALSE(ParseOpenAiEmbeddings(R"({"input": ["a", "", "c"], "encoding_format": "base64", "user": 5})",
                                     Limits(), &r));
  EXPECT_EQ(r.texts, (std::vector<std::string>{"a", "", "c"}));
  EXPECT_EQ(r.encoding, Encoding::kBase64);

  ASSERT_FALSE(ParseOpenAiEmbeddings(R"({"input": [2, 17, 1]})", Limits(), &r));  // one token-id input
  ASSERT_TRUE(r.tokens);
  EXPECT_EQ(r.token_ids, (std::vector<std::vector<int32_t>>{{2, 17, 1}}));

  ASSERT_FALSE(ParseOpenAiEmbeddings(R"({"input": [[2, 1], [2, 999, 1]], "dimensions": 128})", Limits(), &r));
  EXPECT_EQ(r.token_ids, (std::vector<std::vector<int32_t>>{{2, 1}, {2, 999, 1}}));
  EXPECT_EQ(r.dimensions, 128);

  ASSERT_FALSE(ParseOpenAiEmbeddings(
      R"({"input": "x", "task": "document", "title": "T", "truncate": false, "dimensions": null})", Limits(), &r));
  EXPECT_EQ(r.task, "document");
  EXPECT_EQ(r.title, "T");
  EXPECT_FALSE(r.truncate);
  EXPECT_EQ(r.dimensions, 0);
  EXPECT_FALSE(r.prompt.has_value());

  ASSERT_FALSE(ParseOpenAiEmbeddings(R"({"input": "x", "prompt": ""})", Limits(), &r));
  ASSERT_TRUE(r.prompt.has_value());  // an empty custom prompt is "no prefix", not "default prompt"
  EXPECT_EQ(*r.prompt, "");
}

TEST(ServerApi, OpenAiBadBodiesAre4xxNamingTheProblem) {
  struct Case {
    const char* body;
    int status;
    const char* needle;
  };
  const Case cases[] = {
      {"", 400, "empty"},
      {"{", 400, "invalid JSON"},
      {"[1, 2]", 400, "must be a JSON object"},
      {R"({"model": "m"})", 400, "'input' is required"},
      {R"({"input": 5})", 400, "'input' must be"},
      {R"({"input": null})", 400, "'input' is required"},
      {R"({"input": []})", 400, "empty array"},
      {R"({"input": ["a", 3]})", 400, "'input[1]' must be a string"},
      {R"({"input": [["a"]]})", 400, "must be an integer token id"},
      {R"({"input": [[1, [2]]]})", 400, "must be an integer token id"},
      {R"({"input": [[1], 2]})", 400, "'input[1]' must be an array of token ids"},
      {R"({"input": [[1, 1000]]})", 400, "outside the vocabulary [0, 1000)"},
      {R"({"input": [[-1]]})", 400, "outside the vocabulary"},
      {R"({"input": [[1.5]]})", 400, "must be an integer token id"},
      {R"({"input": [[]]})", 400, "empty token-id array"},
      {R"({"input": [[1,2,3,4,5,6,7,8,9]]})", 400, "at most 8"},
      {R"({"input": [{"a": 1}]})", 400, "first item is object"},
      {R"({"input": ["a","b","c","d","e"]})", 413, "at most 4"},
      {R"({"input": [[1],[1],[1],[1],[1]]})", 413, "at most 4"},
      {R"({"input": "x", "dimensions": 300})", 400, "allowed: 256, 128"},
      {R"({"input": "x", "dimensions": "128"})", 400, "'dimensions' must be an integer"},
      {R"({"input": "x", "dimensions": 128.0})", 400, "'dimensions' must be an integer"},
      {R"({"input": "x", "encoding_format": "int8"})", 400, "'float' or 'base64'"},
      {R"({"input": "x", "model": 7})", 400, "'model' must be a string"},
      {R"({"input": "x", "truncate": "yes"})", 400, "'truncate' must be true or false"},
      {R"({"input": "x", "task": ["query"]})", 400, "'task' must be a string"},
      {R"({"input": [[1, 2]], "task": "query"})", 400, "token-id inputs are embedded as given"},
      {R"({"input": "x", "task": "query", "prompt_name": "document"})", 400, "different tasks"},
      {"{\"input\": \"\xff\xfe\"}", 400, "invalid JSON"},        // invalid UTF-8 in a string
      {R"({"input": "\ud800"})", 400, "invalid JSON"},            // a lone surrogate escape
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    const ApiError e = ParseError(c.body);
    EXPECT_EQ(e.status, c.status);
    EXPECT_NE(e.message.find(c.needle), std::string::npos) << e.message;
    // The error body is valid JSON in OpenAI's shape, even for invalid UTF-8 input.
    const json j = json::parse(ErrorBody(e));
    // (invalid UTF-8 echoed from the input becomes U+FFFD in the body)
    EXPECT_EQ(j["error"]["message"].get<std::string>().substr(0, 24), e.message.substr(0, 24));
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    EXPECT_TRUE(j["error"].contains("code"));
    EXPECT_TRUE(j["error"].contains("param"));
  }
}

TEST(ServerApi, DeepNestingIsRefusedNotRecursed) {
  const std::string deep = R"({"input": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  const ApiError e = ParseError(deep);
  EXPECT_EQ(e.status, 400);
  EXPECT_NE(e.message.find("nested deeper"), std::string::npos) << e.message;
}

TEST(ServerApi, TeiEmbedAndTokenizeShapes) {
  EmbedRequest r;
  ASSERT_FALSE(ParseTeiEmbed(R"({"inputs": ["a", "b"], "normalize": true, "truncate": true,
                                 "truncation_direction": "Right", "prompt_name": "query", "dimensions": 256})",
                             Limits(), &r));
  EXPECT_EQ(r.texts, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.task, "query");
  EXPECT_EQ(r.dimensions, 256);
  auto e = ParseTeiEmbed(R"({"inputs": "a", "normalize": false})", Limits(), &r);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 400);
  EXPECT_NE(e->message.find("normalize"), std::string::npos);
  e = ParseTeiEmbed(R"({"inputs": "a", "truncation_direction": "Left"})", Limits(), &r);
  ASSERT_TRUE(e);
  EXPECT_NE(e->message.find("only 'right'"), std::string::npos);
  e = ParseTeiEmbed(R"({"input": "a"})", Limits(), &r);  // OpenAI's field name on TEI's route
  ASSERT_TRUE(e);
  EXPECT_NE(e->message.find("'inputs' is required"), std::string::npos);

  TokenizeRequest t;
  ASSERT_FALSE(ParseTokenize(R"({"inputs": ["x", "y"], "add_special_tokens": false})", Limits(), &t));
  EXPECT_EQ(t.texts.size(), 2u);
  EXPECT_FALSE(t.add_special);
  EXPECT_FALSE(t.llama_style);
  ASSERT_FALSE(ParseTokenize(R"({"content": "x", "with_pieces": true})", Limits(), &t));
  EXPECT_TRUE(t.llama_style);
  EXPECT_FALSE(t.add_special);  // llama.cpp's default
  EXPECT_TRUE(t.with_pieces);
  EXPECT_TRUE(ParseTokenize(R"({"inputs": [1, 2]})", Limits(), &t));
  EXPECT_TRUE(ParseTokenize(R"({"content": 5})", Limits(), &t));
  EXPECT_TRUE(ParseTokenize(R"({"inputs": ["a","b","c","d","e"]})", Limits(), &t));
}

// ---- response bodies ----------------------------------------------------------

std::vector<float> DecodeBase64Floats(const std::string& s) {
  auto val = [](char c) -> int {
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char* p = std::strchr(alphabet, c);
    return p && c ? static_cast<int>(p - alphabet) : -1;
  };
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i + 4 <= s.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s[i + k];
      v <<= 6;
      if (c == '=') {
        ++pad;
      } else {
        v |= static_cast<uint32_t>(val(c));
      }
    }
    bytes.push_back(static_cast<uint8_t>(v >> 16));
    if (pad < 2) bytes.push_back(static_cast<uint8_t>(v >> 8));
    if (pad < 1) bytes.push_back(static_cast<uint8_t>(v));
  }
  std::vector<float> out(bytes.size() / 4);
  for (size_t i = 0; i < out.size(); ++i) {
    const uint32_t u = bytes[4 * i] | (uint32_t{bytes[4 * i + 1]} << 8) | (uint32_t{bytes[4 * i + 2]} << 16) |
                       (uint32_t{bytes[4 * i + 3]} << 24);
    std::memcpy(&out[i], &u, 4);
  }
  return out;
}

TEST(ServerApi, Base64IsRfc4648) {
  auto b64 = [](std::string_view s) {
    return Base64Encode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  };
  EXPECT_EQ(b64(""), "");
  EXPECT_EQ(b64("f"), "Zg==");
  EXPECT_EQ(b64("fo"), "Zm8=");
  EXPECT_EQ(b64("foo"), "Zm9v");
  EXPECT_EQ(b64("foob"), "Zm9vYg==");
  EXPECT_EQ(b64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(b64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(b64(std::string_view("\xff\xfe\x00", 3)), "//4A");
}

TEST(ServerApi, EmbeddingBodiesRoundTripFloats) {
  const std::vector<float> v = {0.1f, -0.25f, 1e-8f, 0.33333334f, -1.0f, 3.0e-39f /*subnormal*/};
  const std::string f = OpenAiEmbeddingsBody(v, 2, 3, Encoding::kFloat, "my \"model\"", 17);
  const json j = json::parse(f);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "my \"model\"");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 17);
  EXPECT_EQ(j["usage"]["total_tokens"], 17);
  ASSERT_EQ(j["data"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(j["data"][i]["object"], "embedding");
    EXPECT_EQ(j["data"][i]["index"], i);
    for (size_t k = 0; k < 3; ++k) EXPECT_EQ(j["data"][i]["embedding"][k].get<float>(), v[i * 3 + k]);
  }
  const json b = json::parse(OpenAiEmbeddingsBody(v, 2, 3, Encoding::kBase64, "m", 1));
  for (size_t i = 0; i < 2; ++i) {
    const std::vector<float> got = DecodeBase64Floats(b["data"][i]["embedding"].get<std::string>());
    ASSERT_EQ(got.size(), 3u);
    for (size_t k = 0; k < 3; ++k) EXPECT_EQ(got[k], v[i * 3 + k]);  // bit-exact
  }
  const json t = json::parse(TeiEmbedBody(v, 3, 2));
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[2][1].get<float>(), v[5]);
}

TEST(ServerApi, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("secret-key", "secret-key"));
  EXPECT_FALSE(ConstantTimeEquals("secret-key", "secret-kez"));
  EXPECT_FALSE(ConstantTimeEquals("secret-key", "secret-key2"));
  EXPECT_FALSE(ConstantTimeEquals("secret-key", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret-key", ""));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

// ---- metrics -------------------------------------------------------------------

TEST(ServerMetrics, PrometheusText) {
  Metrics m;
  m.ObserveRequest("/v1/embeddings", 200, 0.003);
  m.ObserveRequest("/v1/embeddings", 200, 0.2);
  m.ObserveRequest("/v1/embeddings", 429, 0.0001);
  m.ObserveRequest(Metrics::EndpointLabel("/no/such/path"), 404, 0.0001);
  EXPECT_EQ(Metrics::EndpointLabel("/embed"), "/embed");
  EXPECT_EQ(Metrics::EndpointLabel("/embed/x"), "other");
  EXPECT_EQ(m.requests("/v1/embeddings", 200), 2u);
  Metrics::Gauges g;
  g.engine.forward_passes = 4;
  g.engine.sequences = 10;
  g.engine.tokens = 120;
  g.engine.queued_tokens = 7;
  g.requests_in_flight = 3;
  const std::string text = m.Render(g);
  auto has = [&](const std::string& line) { return text.find(line + "\n") != std::string::npos; };
  EXPECT_TRUE(has(R"(gembed_requests_total{endpoint="/v1/embeddings",status="200"} 2)")) << text;
  EXPECT_TRUE(has(R"(gembed_requests_total{endpoint="/v1/embeddings",status="429"} 1)"));
  EXPECT_TRUE(has(R"(gembed_requests_total{endpoint="other",status="404"} 1)"));
  // Cumulative buckets: 0.0001 and 0.003 are <= 0.005; 0.2 is not.
  EXPECT_TRUE(has(R"(gembed_request_duration_seconds_bucket{endpoint="/v1/embeddings",le="0.005"} 2)"));
  EXPECT_TRUE(has(R"(gembed_request_duration_seconds_bucket{endpoint="/v1/embeddings",le="0.25"} 3)"));
  EXPECT_TRUE(has(R"(gembed_request_duration_seconds_bucket{endpoint="/v1/embeddings",le="+Inf"} 3)"));
  EXPECT_TRUE(has(R"(gembed_request_duration_seconds_count{endpoint="/v1/embeddings"} 3)"));
  EXPECT_TRUE(has("gembed_forward_passes_total 4"));
  EXPECT_TRUE(has("gembed_forward_texts_total 10"));
  EXPECT_TRUE(has("gembed_forward_batch_texts_mean 2.5"));
  EXPECT_TRUE(has("gembed_forward_batch_tokens_mean 30"));
  EXPECT_TRUE(has("gembed_queue_tokens 7"));
  EXPECT_TRUE(has("gembed_requests_in_flight 3"));
  EXPECT_TRUE(has("# TYPE gembed_request_duration_seconds histogram"));
}

TEST(ServerMetrics, TokensPerSecondOverTheLastTenSeconds) {
  Metrics m;
  const auto t0 = Metrics::Clock::now();
  for (int s = 0; s < 20; ++s) m.ObserveEmbedded(1, 100, t0 + std::chrono::milliseconds(1000 * s + 10));
  // At second 20: seconds 10..19 each had 100 tokens.
  EXPECT_DOUBLE_EQ(m.TokensPerSecond(t0 + std::chrono::milliseconds(20 * 1000 + 500)), 100.0);
  // Long after, nothing recent.
  EXPECT_DOUBLE_EQ(m.TokensPerSecond(t0 + std::chrono::seconds(60)), 0.0);
}

// ---- the Service on a real (synthetic) engine ----------------------------------------

std::string TokenizerJson() {
  const char* env = std::getenv("GEMBED_SHARED_DIR");
  return std::string(env && *env ? env : GEMBED_DEFAULT_SHARED_DIR) + "/gemma3-tokenizer/tokenizer.json";
}

class ServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(TokenizerJson())) return;
    dir_ = fs::temp_directory_path() / ("gembed_test_server_" + std::to_string(getpid()));
    fs::create_directories(dir_);
    SyntheticOptions o = SyntheticOptions::Tiny();
    o.seed = 11;
    o.n_embd = 256;  // two Matryoshka dims: 256 and 128
    o.n_ff = 512;
    o.head_dim = 128;
    o.dtype = DType::kQ8_0;
    path_ = (dir_ / "e256-q8_0.gguf").string();
    const Status st = WriteSyntheticModel(path_, TokenizerJson(), o);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EngineOptions eo;
    eo.threads = 2;
    eo.max_queued_tokens = 64;
    auto e = Engine::Open(path_, eo);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }
  static void TearDownTestSuite() {
    engine_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    if (!engine_) GTEST_SKIP() << "Gemma3 tokenizer not found at " << TokenizerJson() << " (set GEMBED_SHARED_DIR)";
  }
  static std::unique_ptr<Service> Make(ServiceOptions o = {}) {
    o.max_client_batch_size = o.max_client_batch_size == 2048 ? 8 : o.max_client_batch_size;
    auto s = Service::Create(*engine_, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(*s);
  }
  static RequestHead Post(std::string path) {
    RequestHead h;
    h.method = "POST";
    h.path = std::move(path);
    h.content_type = "application/json";
    return h;
  }
  static RequestHead Get(std::string path) {
    RequestHead h;
    h.method = "GET";
    h.path = std::move(path);
    return h;
  }
  static std::vector<std::vector<float>> Vectors(const json& j) {
    std::vector<std::vector<float>> out;
    for (const auto& d : j["data"]) out.push_back(d["embedding"].get<std::vector<float>>());
    return out;
  }

  static inline fs::path dir_;
  static inline std::string path_;
  static inline std::unique_ptr<Engine> engine_;
};

TEST_F(ServiceTest, EmbeddingsEqualTheEngines) {
  auto s = Make();
  const std::vector<std::string> texts = {"hello world", "The quick brown fox.", ""};
  auto want = engine_->Embed(texts);
  ASSERT_TRUE(want.ok());
  const Response r = s->Handle(Post("/v1/embeddings"), R"({"input": ["hello world", "The quick brown fox.", ""]})");
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(Vectors(j), *want);  // bit-identical: same engine, same texts
  EXPECT_EQ(j["model"], "embeddinggemma-300m");  // the served name when the request names none
  // usage counts real tokens: [BOS] text [EOS] per text.
  size_t tokens = 0;
  for (const auto& t : texts) tokens += engine_->Tokenize(t, {}).value().size();
  EXPECT_EQ(j["usage"]["prompt_tokens"], tokens);

  // Task, dimensions, base64, the TEI route and token-id inputs.
  EmbedOptions q;
  q.task = "query";
  q.dim = 128;
  auto want_q = engine_->Embed({"hello world"}, q);
  const Response rq = s->Handle(Post("/v1/embeddings"),
                                R"({"input": "hello world", "task": "query", "dimensions": 128,
                                    "encoding_format": "base64", "model": "x"})");
  ASSERT_EQ(rq.status, 200) << rq.body;
  const json jq = json::parse(rq.body);
  EXPECT_EQ(jq["model"], "x");
  EXPECT_EQ(DecodeBase64Floats(jq["data"][0]["embedding"].get<std::string>()), (*want_q)[0]);
  const Response rt = s->Handle(Post("/embed"), R"({"inputs": "hello world", "prompt_name": "query",
                                                    "dimensions": 128})");
  ASSERT_EQ(rt.status, 200) << rt.body;
  EXPECT_EQ(json::parse(rt.body)[0].get<std::vector<float>>(), (*want_q)[0]);
  const std::vector<int32_t> ids = engine_->Tokenize("hello world", {}).value();
  const Response rids = s->Handle(Post("/v1/embeddings"), json{{"input", json::array({ids})}}.dump());
  ASSERT_EQ(rids.status, 200) << rids.body;
  EXPECT_EQ(Vectors(json::parse(rids.body))[0], (*want)[0]);
}

TEST_F(ServiceTest, DefaultTaskAppliesOnlyWhenNoneIsNamed) {
  ServiceOptions o;
  o.default_task = "query";
  auto s = Make(o);
  EmbedOptions q;
  q.task = "query";
  EmbedOptions d;
  d.task = "document";
  const auto vq = engine_->Embed({"x"}, q).value()[0];
  const auto vd = engine_->Embed({"x"}, d).value()[0];
  const auto vp = engine_->Embed({"x"}, EmbedOptions{.prompt = std::string("custom: ")}).value()[0];
  EXPECT_EQ(Vectors(json::parse(s->Handle(Post("/v1/embeddings"), R"({"input": "x"})").body))[0], vq);
  EXPECT_EQ(Vectors(json::parse(s->Handle(Post("/v1/embeddings"), R"({"input": "x", "task": "document"})").body))[0],
            vd);
  EXPECT_EQ(
      Vectors(json::parse(s->Handle(Post("/v1/embeddings"), R"({"input": "x", "prompt": "custom: "})").body))[0], vp);
  ServiceOptions bad;
  bad.default_task = "no-such-task";
  auto refused = Service::Create(*engine_, bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("unknown task 'no-such-task'"), std::string::npos);
}

TEST_F(ServiceTest, EngineRefusalsAre4xx) {
  auto s = Make();
  auto check = [&](std::string_view body, int status, std::string_view needle) {
    SCOPED_TRACE(body);
    const Response r = s->Handle(Post("/v1/embeddings"), body);
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_NE(json::parse(r.body)["error"]["message"].get<std::string>().find(needle), std::string::npos) << r.body;
  };
  check(R"({"input": "x", "task": "nope"})", 400, "unknown task 'nope'");
  check(R"({"input": "x", "task": "query", "prompt": "p"})", 400, "cannot be used together");
  check(R"({"input": "x", "title": "t"})", 400, "needs a task");
  check(R"({"input": "x", "dimensions": 512})", 400, "allowed: 256, 128");
  check(R"({"input": [[1, 300000]]})", 400, "outside the vocabulary");
  // truncate=false and a text over the context (2,048 tokens).
  std::string longer = R"({"input": ")";
  for (int i = 0; i < 2100; ++i) longer += "the ";
  longer += R"(", "truncate": false})";
  check(longer, 400, "truncation is off");
  std::string truncated = longer;
  truncated.replace(truncated.find("false"), 5, "true");
  const Response r = s->Handle(Post("/v1/embeddings"), truncated);
  ASSERT_EQ(r.status, 200);
  bool saw = false;
  for (const auto& [k, v] : r.headers) saw |= k == "X-Gembed-Truncated-Inputs" && v == "1";
  EXPECT_TRUE(saw);
  check(R"({"input": ["a","b","c","d","e","f","g","h","i"]})", 413, "at most 8");
}

TEST_F(ServiceTest, RoutingAuthContentTypeAndLimits) {
  ServiceOptions o;
  o.api_key = "k3y";
  o.max_body_bytes = 100;
  auto s = Make(o);
  RequestHead h = Post("/v1/embeddings");
  auto status = [&](const RequestHead& head, std::string_view body = R"({"input": "x"})") {
    return s->Handle(head, body).status;
  };
  EXPECT_EQ(status(h), 401);  // no key
  const Response missing = s->Handle(h, "{}");
  EXPECT_NE(missing.body.find("Authorization: Bearer"), std::string::npos);
  h.authorization = "Bearer wrong";
  EXPECT_EQ(status(h), 401);
  h.authorization = "Bearer k3y";
  EXPECT_EQ(status(h), 200);
  h.authorization = "bearer   k3y ";
  EXPECT_EQ(status(h), 200);
  EXPECT_EQ(status(Get("/health")), 200);  // open without a key
  EXPECT_EQ(status(Get("/metrics")), 401);

  RequestHead ct = h;
  ct.content_type = "";
  EXPECT_EQ(status(ct), 415);
  ct.content_type = "application/x-www-form-urlencoded";
  EXPECT_EQ(status(ct), 415);
  ct.content_type = "Application/JSON; charset=utf-8";
  EXPECT_EQ(status(ct), 200);

  RequestHead big = h;
  big.content_length = 101;
  const auto early = s->Admit(big);
  ASSERT_TRUE(early);
  EXPECT_EQ(early->status, 413);
  EXPECT_EQ(status(h, R"({"input": ")" + std::string(100, 'a') + "\"}"), 413);

  RequestHead nf = h;
  nf.path = "/v1/embed";
  EXPECT_EQ(status(nf), 404);
  RequestHead wrong = Get("/v1/embeddings");
  wrong.authorization = "Bearer k3y";
  const Response r405 = s->Handle(wrong, "");
  EXPECT_EQ(r405.status, 405);
  ASSERT_FALSE(r405.headers.empty());
  EXPECT_EQ(r405.headers[0].first, "Allow");
  RequestHead post_health = Post("/health");
  EXPECT_EQ(status(post_health), 405);
  EXPECT_FALSE(s->Admit(h).has_value());
  EXPECT_TRUE(Service::WantsBody(h));
  EXPECT_FALSE(Service::WantsBody(Get("/metrics")));
}

TEST_F(ServiceTest, InfoModelsTokenizeMetrics) {
  auto s = Make();
  const json info = json::parse(s->Handle(Get("/info"), "").body);
  EXPECT_EQ(info["dims"], 256);
  EXPECT_EQ(info["supported_dims"], json::array({256, 128}));
  EXPECT_EQ(info["model_dtype"], "Q8_0");
  EXPECT_EQ(info["max_input_length"], 2048);
  EXPECT_FALSE(info["isa"].get<std::string>().empty());
  const json models = json::parse(s->Handle(Get("/v1/models"), "").body);
  EXPECT_EQ(models["data"][0]["id"], "embeddinggemma-300m");

  const Response tok = s->Handle(Post("/tokenize"), R"({"inputs": ["Hello world", "x"], "prompt_name": "query"})");
  ASSERT_EQ(tok.status, 200) << tok.body;
  const json tj = json::parse(tok.body);
  EmbedOptions q;
  q.task = "query";
  const auto ids = engine_->Tokenize("Hello world", q).value();
  ASSERT_EQ(tj[0].size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(tj[0][i]["id"], ids[i]);
  EXPECT_EQ(tj[0][0]["text"], "<bos>");
  const json lj = json::parse(s->Handle(Post("/tokenize"), R"({"content": "Hello world"})").body);
  EXPECT_EQ(lj["tokens"].get<std::vector<int32_t>>(), engine_->TokenizeRaw("Hello world", false));

  s->RecordResponse("/v1/embeddings", 200, 0.01);
  const Response m = s->Handle(Get("/metrics"), "");
  EXPECT_EQ(m.content_type.rfind("text/plain; version=0.0.4", 0), 0u);
  EXPECT_NE(m.body.find("gembed_forward_passes_total "), std::string::npos);
  EXPECT_NE(m.body.find(R"(gembed_requests_total{endpoint="/v1/embeddings",status="200"} 1)"), std::string::npos);
}

TEST_F(ServiceTest, DrainingAnswers503ButMetricsStayReadable) {
  auto s = Make();
  s->BeginDrain();
  EXPECT_EQ(s->Handle(Post("/v1/embeddings"), R"({"input": "x"})").status, 503);
  EXPECT_EQ(s->Handle(Get("/health"), "").status, 503);
  EXPECT_EQ(s->Handle(Get("/metrics"), "").status, 200);
  EXPECT_NE(s->Handle(Get("/metrics"), "").body.find("gembed_draining 1"), std::string::npos);
}

// Holds the engine's leadership (inside a progress callback) so that other
// calls queue up behind it deterministically.
class Blocker {
 public:
  explicit Blocker(Engine& e) {
    thread_ = std::thread([this, &e] {
      EmbedOptions o;
      o.progress = [this](size_t, size_t) {
        entered_ = true;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!release_ && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      };
      (void)e.Embed({"blocking text"}, o);
    });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!entered_ && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ~Blocker() {
    release_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> entered_{false}, release_{false};
  std::thread thread_;
};

bool WaitFor(const std::function<bool()>& cond) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST_F(ServiceTest, FullQueueIs429WithRetryAfterAndCancelledWorkIsDropped) {
  auto s = Make();
  Blocker blocker(*engine_);
  // 40 queued tokens of the first request; the engine admits at most 64.
  std::string forty = R"({"input": ")";
  for (int i = 0; i < 38; ++i) forty += "the ";
  forty += "\"}";
  std::atomic<bool> cancel{false};
  Response first;
  std::thread t([&] { first = s->Handle(Post("/v1/embeddings"), forty, &cancel); });
  ASSERT_TRUE(WaitFor([&] { return engine_->stats().queued_tokens >= 40; }));
  const Response full = s->Handle(Post("/v1/embeddings"), forty);
  EXPECT_EQ(full.status, 429) << full.body;
  EXPECT_NE(full.body.find("queue is full"), std::string::npos);
  bool retry_after = false;
  for (const auto& [k, v] : full.headers) retry_after |= k == "Retry-After" && v == "1";
  EXPECT_TRUE(retry_after);
  // The client of the first request goes away: its queued text is dropped.
  cancel = true;
  t.join();
  EXPECT_EQ(first.status, kClientClosedRequest);
  EXPECT_EQ(engine_->stats().queued_tokens, 0u);
}

TEST_F(ServiceTest, ConcurrentRequestsShareForwardPassesAndTheConcurrencyLimitHolds) {
  ServiceOptions o;
  o.max_concurrent_requests = 6;
  auto s = Make(o);
  constexpr int kClients = 8;
  std::vector<Response> got(kClients);
  std::vector<std::thread> threads;
  uint64_t passes_before = 0;
  {
    Blocker blocker(*engine_);
    passes_before = engine_->stats().forward_passes;
    for (int i = 0; i < kClients; ++i) {
      threads.emplace_back([&, i] {
        got[i] = s->Handle(Post("/v1/embeddings"), json{{"input", "client " + std::to_string(i)}}.dump());
      });
    }
    // 6 requests get in and queue; the other 2 are over the limit.
    ASSERT_TRUE(WaitFor([&] { return engine_->stats().queued_sequences == 6; }));
    ASSERT_TRUE(WaitFor([&] { return s->requests_in_flight() == 6; }));
  }  // the blocker finishes; the 6 queued texts run in one pass
  for (auto& t : threads) t.join();
  // The blocker's pass (counted before) aside, the six shared one pass.
  EXPECT_EQ(engine_->stats().forward_passes - passes_before, 1u);
  int ok = 0, limited = 0;
  for (int i = 0; i < kClients; ++i) {
    if (got[i].status == 200) {
      ++ok;
      const auto want = engine_->Embed({"client " + std::to_string(i)}).value()[0];
      EXPECT_EQ(Vectors(json::parse(got[i].body))[0], want);
    } else {
      EXPECT_EQ(got[i].status, 429) << got[i].body;
      EXPECT_NE(got[i].body.find("--max-concurrent-requests"), std::string::npos);
      ++limited;
    }
  }
  EXPECT_EQ(ok, 6);
  EXPECT_EQ(limited, 2);
}

}  // namespace
}  // namespace gembed::server
