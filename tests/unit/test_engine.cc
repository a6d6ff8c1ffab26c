// Engine::Embed on tiny synthetic models written to a temp dir: packed
// batches equal single texts for any order and mix of lengths (1..2,048, so
// the ±256 sliding window matters), determinism, prompts, truncation,
// Matryoshka dims, odd texts, the dtypes of one seed agreeing, thread safety
// and clean errors for bad files.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>

#include "engine/engine.h"
#include "model/synthetic.h"

namespace gembed {
namespace {

namespace fs = std::filesystem;
using Vecs = std::vector<std::vector<float>>;

std::string SharedDir() {
  const char* env = std::getenv("GEMBED_SHARED_DIR");
  return env && *env ? env : GEMBED_DEFAULT_SHARED_DIR;
}
std::string TokenizerJson() { return SharedDir() + "/gemma3-tokenizer/tokenizer.json"; }

double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}
double Norm(const std::vector<float>& a) {
  double s = 0;
  for (float x : a) s += double(x) * x;
  return std::sqrt(s);
}

// Synthetic models (seed 7) shared by the tests of this file, written on first use.
class Models {
 public:
  static Models& Get() {
    static Models m;
    return m;
  }
  std::string Path(const std::string& name) {
    auto it = paths_.find(name);
    if (it != paths_.end()) return it->second;
    SyntheticOptions o = SyntheticOptions::Tiny();
    o.seed = 7;
    if (name == "e256-q8_0") {  // wide enough for two Matryoshka dims
      o.n_embd = 256;
      o.n_ff = 512;
      o.head_dim = 128;
      o.dtype = DType::kQ8_0;
    } else {
      o.dtype = *DTypeFromName(name.substr(5));  // "tiny-<type>"
    }
    const std::string path = (dir_ / (name + ".gguf")).string();
    const Status st = WriteSyntheticModel(path, TokenizerJson(), o);
    EXPECT_TRUE(st.ok()) << st.ToString();
    paths_[name] = path;
    return path;
  }
  Engine& Open(const std::string& name) {
    auto it = engines_.find(name);
    if (it != engines_.end()) return *it->second;
    EngineOptions eo;
    eo.threads = 2;
    auto e = Engine::Open(Path(name), eo);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return *(engines_[name] = std::move(*e));
  }
  const fs::path& dir() const { return dir_; }
  ~Models() {
    engines_.clear();
    fs::remove_all(dir_);
  }

 private:
  Models() {
    dir_ = fs::temp_directory_path() / ("gembed_test_engine_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  fs::path dir_;
  std::map<std::string, std::string> paths_;
  std::map<std::string, std::unique_ptr<Engine>> engines_;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(TokenizerJson())) {
      GTEST_SKIP() << "Gemma3 tokenizer not found at " << TokenizerJson() << " (set GEMBED_SHARED_DIR)";
    }
  }
};

std::vector<std::vector<int32_t>> RandomSequences(const std::vector<int>& lengths, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(494, 262143);  // ordinary pieces
  std::vector<std::vector<int32_t>> seqs;
  for (int len : lengths) {
    std::vector<int32_t> s(len);
    for (int i = 0; i < len; ++i) s[i] = tok(rng);
    s[0] = 2;
    if (len > 1) s[len - 1] = 1;
    seqs.push_back(std::move(s));
  }
  return seqs;
}

// ---- batch == single -----------------------------------------------------------

TEST_F(EngineTest, PackedBatchesEqualSingleSequences) {
  // Lengths around the sliding window (±256: 257 is the first length where it
  // masks anything) and up to the full context.
  const std::vector<int> lengths = {1, 2, 3, 17, 256, 257, 258, 300, 513, 777, 1200, 2048, 5, 2047};
  const auto seqs = RandomSequences(lengths, 1);
  for (const std::string name : {"tiny-f32", "tiny-q8_0"}) {
    SCOPED_TRACE(name);
    Engine& e = Models::Get().Open(name);
    Vecs single;
    for (const auto& s : seqs) {
      auto v = e.EmbedTokens({s});
      ASSERT_TRUE(v.ok()) << v.status().ToString();
      single.push_back((*v)[0]);
    }
    // Random orders; the engine packs up to its token budget (4,096) per pass.
    std::mt19937 rng(2);
    double worst = 1.0;
    for (int trial = 0; trial < 3; ++trial) {
      std::vector<size_t> order(seqs.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::shuffle(order.begin(), order.end(), rng);
      std::vector<std::vector<int32_t>> shuffled;
      for (size_t i : order) shuffled.push_back(seqs[i]);
      auto batch = e.EmbedTokens(shuffled);
      ASSERT_TRUE(batch.ok()) << batch.status().ToString();
      ASSERT_EQ(batch->size(), seqs.size());
      for (size_t j = 0; j < order.size(); ++j) {
        const double cos = Cosine((*batch)[j], single[order[j]]);
        worst = std::min(worst, cos);
        EXPECT_GE(cos, 0.99999) << "length " << lengths[order[j]] << ", trial " << trial;
      }
    }
    std::printf("[ batch    ] %s: worst cosine batch vs single %.9f\n", name.c_str(), worst);
  }
}

TEST_F(EngineTest, ManyShortTextsInOnePassEqualSingles) {
  Engine& e = Models::Get().Open("tiny-q8_0");
  std::vector<std::string> texts;
  for (int i = 0; i < 60; ++i) texts.push_back("text number " + std::to_string(i * 7919) + (i % 3 ? " and more words" : ""));
  EmbedOptions opt;
  opt.prompt = "task: clustering | query: ";
  size_t calls = 0, last_done = 0;
  opt.progress = [&](size_t done, size_t total) {
    ++calls;
    EXPECT_GT(done, last_done);
    EXPECT_EQ(total, texts.size());
    last_done = done;
  };
  auto batch = e.Embed(texts, opt);
  ASSERT_TRUE(batch.ok());
  EXPECT_GE(calls, 1u);
  EXPECT_EQ(last_done, texts.size());
  opt.progress = nullptr;
  for (size_t i = 0; i < texts.size(); i += 7) {
    auto one = e.Embed({texts[i]}, opt);
    ASSERT_TRUE(one.ok());
    EXPECT_GE(Cosine((*one)[0], (*batch)[i]), 0.99999) << i;
  }
}

TEST_F(EngineTest, DeterministicAndDistinct) {
  Engine& e = Models::Get().Open("tiny-f32");
  const std::vector<std::string> texts = {"The quick brown fox", "jumps over the lazy dog", "Lorem ipsum dolor sit amet",
                                          "3.14159 is pi", "Ein ganz anderer Satz auf Deutsch."};
  auto a = e.Embed(texts), b = e.Embed(texts);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);  // bit-identical on repeat
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_NEAR(Norm((*a)[i]), 1.0, 1e-6);
    for (size_t j = i + 1; j < texts.size(); ++j) EXPECT_LT(Cosine((*a)[i], (*a)[j]), 0.99) << i << " " << j;
  }
}

TEST_F(EngineTest, ConcurrentCallersGetTheSameResults) {
  Engine& e = Models::Get().Open("tiny-q8_0");
  const std::vector<std::string> texts = {"alpha beta", "gamma delta epsilon", "zeta"};
  auto want = e.Embed(texts);
  ASSERT_TRUE(want.ok());
  std::vector<Vecs> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < 3; ++r) {
        auto v = e.Embed(texts);
        if (v.ok()) got[t] = *v;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(got[t], *want) << t;
}

// ---- prompts, tokens, truncation -----------------------------------------------

TEST_F(EngineTest, PromptIsPrependedText) {
  Engine& e = Models::Get().Open("tiny-f32");
  EmbedOptions opt;
  opt.prompt = "task: search result | query: ";
  auto with_prompt = e.Embed({"what is a cat"}, opt);
  auto concatenated = e.Embed({"task: search result | query: what is a cat"});
  auto plain = e.Embed({"what is a cat"});
  ASSERT_TRUE(with_prompt.ok() && concatenated.ok() && plain.ok());
  EXPECT_EQ(*with_prompt, *concatenated);
  EXPECT_LT(Cosine((*with_prompt)[0], (*plain)[0]), 0.999);  // the prompt takes part in pooling
}

TEST_F(EngineTest, TokensAreBosTextEos) {
  Engine& e = Models::Get().Open("tiny-f32");
  auto empty = e.Tokenize("", {});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, (std::vector<int32_t>{2, 1}));
  auto hello = e.Tokenize("Hello world", {});
  ASSERT_TRUE(hello.ok());
  ASSERT_GE(hello->size(), 3u);
  EXPECT_EQ(hello->front(), 2);
  EXPECT_EQ(hello->back(), 1);
  // The empty text is the mean of the BOS and EOS states: a defined vector.
  auto v_empty = e.Embed({""});
  auto v_ids = e.EmbedTokens({{2, 1}});
  ASSERT_TRUE(v_empty.ok() && v_ids.ok());
  EXPECT_EQ(*v_empty, *v_ids);
}

TEST_F(EngineTest, StripRemovesEdgeWhitespaceOfPromptPlusText) {
  Engine& e = Models::Get().Open("tiny-f32");
  EmbedOptions strip;  // the default
  ASSERT_TRUE(strip.strip);
  EmbedOptions raw;
  raw.strip = false;
  // Token ids, or {-1} on an error (which then fails every comparison).
  auto ids = [&e](const std::string& text, const EmbedOptions& o) {
    auto r = e.Tokenize(text, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<int32_t>{-1};
  };
  // Tokenize: "  hi\n" and "hi" are the same tokens by default, not with strip = false.
  EXPECT_EQ(ids("  hi\n", strip), ids("hi", strip));
  EXPECT_NE(ids("  hi\n", raw), ids("hi", raw));
  EXPECT_GT(ids("  hi\n", raw).size(), ids("hi", raw).size());
  EXPECT_EQ(ids("hi", strip), ids("hi", raw));  // nothing to strip: no change
  // Embed follows Tokenize: identical vectors with strip, different without.
  auto v = e.Embed({"  hi\n", "hi", "\xe3\x80\x80hi\xc2\xa0"}, strip);
  auto v_raw = e.Embed({"  hi\n", "hi"}, raw);
  ASSERT_TRUE(v.ok() && v_raw.ok());
  EXPECT_EQ((*v)[0], (*v)[1]);
  EXPECT_EQ((*v)[2], (*v)[1]);  // U+3000 and U+00A0 are whitespace too
  EXPECT_EQ((*v_raw)[1], (*v)[1]);
  EXPECT_LT(Cosine((*v_raw)[0], (*v_raw)[1]), 0.9999);
  // Prompt + text is stripped as one string (sentence-transformers'
  // (prompt + text).strip()): an empty or whitespace-only text loses the
  // prompt's trailing space; whitespace between prompt and text stays.
  const std::string prompt = "task: search result | query: ";
  EmbedOptions strip_p = strip, raw_p = raw;
  strip_p.prompt = raw_p.prompt = prompt;
  EXPECT_EQ(ids("", strip_p), ids("task: search result | query:", raw));
  EXPECT_EQ(ids(" \n\t ", strip_p), ids("", strip_p));
  EXPECT_NE(ids("", strip_p), ids("", raw_p));
  EXPECT_EQ(ids("cat \n", strip_p), ids("cat", raw_p));
  EXPECT_EQ(ids(" cat", strip_p), ids(" cat", raw_p));
  EXPECT_NE(ids(" cat", strip_p), ids("cat", raw_p));
  // A leading space of the prompt itself goes too.
  EmbedOptions spaced = strip;
  spaced.prompt = "  " + prompt;
  EXPECT_EQ(ids("cat", spaced), ids("cat", strip_p));
}

std::string LongText(size_t words) {
  std::string s;
  std::mt19937 rng(9);
  const char* vocab[] = {"apple", "river", "quantum", "blue", "seven", "galaxy", "paper", "walk"};
  for (size_t i = 0; i < words; ++i) s += std::string(vocab[rng() % 8]) + " ";
  return s;
}

TEST_F(EngineTest, TruncationKeepsBosAndEos) {
  Engine& e = Models::Get().Open("tiny-f32");
  const std::string text = LongText(3000);
  EmbedOptions opt;
  bool truncated = false;
  auto ids = e.Tokenize(text, opt, &truncated);
  ASSERT_TRUE(ids.ok());
  EXPECT_TRUE(truncated);
  ASSERT_EQ(ids->size(), 2048u);
  EXPECT_EQ(ids->front(), 2);
  EXPECT_EQ(ids->back(), 1);
  // The kept tokens are the start of the full tokenisation: LongText(1000)
  // is a prefix of the text, so its tokens (less its trailing "▁" and EOS)
  // must start the truncated ids.
  opt.truncate = false;
  EXPECT_EQ(e.Tokenize(text, opt).status().code(), StatusCode::kInvalidArgument);
  auto short_ids = e.Tokenize(LongText(1000), opt, &truncated);
  ASSERT_TRUE(short_ids.ok());
  EXPECT_FALSE(truncated);
  ASSERT_LT(short_ids->size(), 2048u);
  EXPECT_TRUE(std::equal(short_ids->begin(), short_ids->end() - 2, ids->begin()));
  // Embedding the long text = embedding its truncated ids.
  auto v = e.Embed({text});
  auto v_ids = e.EmbedTokens({*ids});
  ASSERT_TRUE(v.ok() && v_ids.ok());
  EXPECT_EQ(*v, *v_ids);
  // With truncation off the whole call fails and names the limit.
  EmbedOptions strict;
  strict.truncate = false;
  auto err = e.Embed({"short", text}, strict);
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(err.status().message().find("2048"), std::string::npos) << err.status().ToString();
  EXPECT_NE(err.status().message().find("text 2"), std::string::npos) << err.status().ToString();
}

TEST_F(EngineTest, OddTextsGiveUnitVectors) {
  Engine& e = Models::Get().Open("tiny-q8_0");
  std::string huge;
  std::mt19937 rng(4);
  for (int i = 0; i < 100000; ++i) huge += static_cast<char>(i % 9 == 0 ? ' ' : 'a' + rng() % 26);
  const std::vector<std::string> texts = {
      "",                                  // -> [BOS, EOS]
      " ",                                 // whitespace only (stripped: as "")
      "\t\t\n\r\n   ",                     // whitespace runs (stripped: as "")
      std::string("nul\0inside\0", 11),    // NUL bytes are ordinary characters
      "\xff\xfe\xc3 broken \xe2\x82 utf8 \xed\xa0\x80",  // invalid UTF-8 -> byte tokens
      "<bos><eos><start_of_turn>user",     // special tokens inside the text
      "\xf0\x9f\x98\x80 emoji \xe4\xb8\xad\xe6\x96\x87",  // emoji, CJK
      huge,                                // 100,000 characters -> truncated
  };
  auto v = e.Embed(texts);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_EQ(v->size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    ASSERT_EQ((*v)[i].size(), 128u);
    for (float x : (*v)[i]) ASSERT_TRUE(std::isfinite(x)) << i;
    EXPECT_NEAR(Norm((*v)[i]), 1.0, 1e-5) << i;
  }
  bool truncated = false;
  auto ids = e.Tokenize(huge, {}, &truncated);
  ASSERT_TRUE(ids.ok());
  EXPECT_TRUE(truncated);
  EXPECT_EQ(ids->size(), 2048u);
  // Every invalid byte became a token: nothing was silently dropped.
  auto bad = e.Tokenize("\xff\xfe", {});
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->size(), 4u);
}

// ---- Matryoshka ----------------------------------------------------------------

TEST_F(EngineTest, MatryoshkaPrefixIsRenormalised) {
  Engine& e = Models::Get().Open("e256-q8_0");
  EXPECT_EQ(e.SupportedDims(), (std::vector<int>{256, 128}));
  const std::vector<std::string> texts = {"first text", "a second, longer text with more tokens"};
  auto full = e.Embed(texts);
  ASSERT_TRUE(full.ok());
  EmbedOptions opt;
  opt.dim = 128;
  auto small = e.Embed(texts, opt);
  ASSERT_TRUE(small.ok());
  for (size_t i = 0; i < texts.size(); ++i) {
    ASSERT_EQ((*full)[i].size(), 256u);
    ASSERT_EQ((*small)[i].size(), 128u);
    EXPECT_NEAR(Norm((*small)[i]), 1.0, 1e-6);
    // Same direction as the first 128 components of the full vector.
    const double prefix_norm = Norm(std::vector<float>((*full)[i].begin(), (*full)[i].begin() + 128));
    ASSERT_GT(prefix_norm, 0.1);
    for (size_t j = 0; j < 128; ++j) EXPECT_NEAR((*small)[i][j], (*full)[i][j] / prefix_norm, 1e-6) << j;
  }
  opt.dim = 256;  // the full dim is allowed explicitly
  auto same = e.Embed(texts, opt);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, *full);
  for (int bad : {512, 768, 100, -1, 1}) {
    opt.dim = bad;
    auto r = e.Embed(texts, opt);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("256, 128"), std::string::npos) << r.status().ToString();
  }
  // A 128-wide model offers only its own dim.
  EXPECT_EQ(Models::Get().Open("tiny-f32").SupportedDims(), (std::vector<int>{128}));
}

TEST(TruncateAndNormalizeTest, Basics) {
  const std::vector<float> v = {3, 4, 12};
  const auto t = TruncateAndNormalize(v, 2);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_FLOAT_EQ(t[0], 0.6f);
  EXPECT_FLOAT_EQ(t[1], 0.8f);
  const auto z = TruncateAndNormalize({0, 0, 1}, 2);  // a zero prefix stays zero
  EXPECT_EQ(z, (std::vector<float>{0, 0}));
}

// ---- dtypes of one seed ---------------------------------------------------------

TEST_F(EngineTest, DtypesOfOneSeedAgree) {
  const std::vector<std::string> texts = {"hello world", "The weather is lovely today.", LongText(400),
                                          "task: code retrieval | query: int main() { return 0; }"};
  auto ref = Models::Get().Open("tiny-f32").Embed(texts);
  ASSERT_TRUE(ref.ok());
  // Bounds: F16 keeps 11 significant bits, BF16 8; Q8_0 also quantises the
  // activations (llama.cpp's precision; MODEL-SPEC §7.2 measured ~0.9994 on
  // the full model).
  for (const auto& [type, min_cos] :
       std::vector<std::pair<std::string, double>>{{"f16", 0.9999}, {"bf16", 0.999}, {"q8_0", 0.995}}) {
    auto got = Models::Get().Open("tiny-" + type).Embed(texts);
    ASSERT_TRUE(got.ok());
    double worst = 1.0;
    for (size_t i = 0; i < texts.size(); ++i) {
      const double cos = Cosine((*got)[i], (*ref)[i]);
      worst = std::min(worst, cos);
      EXPECT_GE(cos, min_cos) << type << " text " << i;
    }
    std::printf("[ dtype    ] %-5s vs f32: worst cosine %.6f\n", type.c_str(), worst);
  }
}

// ---- the shared queue: cross-caller batching, cancellation, admission ---------

// Holds the engine's leadership: a one-text call whose progress callback (run
// on the leading thread after its pass, with leadership still held) blocks
// until `release` is set, so other calls queue up behind it deterministically.
class LeaderBlocker {
 public:
  explicit LeaderBlocker(Engine& e) : e_(e) {
    thread_ = std::thread([this] {
      EmbedOptions o;
      o.progress = [this](size_t, size_t) {
        entered_ = true;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!release_ && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      };
      result_ok_ = e_.Embed({"the blocking text"}, o).ok();
    });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!entered_ && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  bool entered() const { return entered_; }
  // Waits (bounded) until `n` sequences of other calls are queued.
  bool WaitQueued(size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (e_.stats().queued_sequences < n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }
  bool Release() {
    release_ = true;
    if (thread_.joinable()) thread_.join();
    return result_ok_;
  }
  ~LeaderBlocker() { Release(); }

 private:
  Engine& e_;
  std::atomic<bool> entered_{false}, release_{false}, result_ok_{false};
  std::thread thread_;
};

TEST_F(EngineTest, ConcurrentCallsShareForwardPasses) {
  Engine& e = Models::Get().Open("tiny-q8_0");
  constexpr int kCallers = 16;
  std::vector<std::string> texts;
  for (int i = 0; i < kCallers; ++i) texts.push_back("caller " + std::to_string(i) + " says hello");
  Vecs want;
  for (const auto& t : texts) {
    auto v = e.Embed({t});
    ASSERT_TRUE(v.ok());
    want.push_back((*v)[0]);
  }
  const EngineStats before = e.stats();
  Vecs got(kCallers);
  std::vector<int> ok(kCallers, 0);
  {
    LeaderBlocker blocker(e);
    ASSERT_TRUE(blocker.entered());
    std::vector<std::thread> threads;
    for (int t = 0; t < kCallers; ++t) {
      threads.emplace_back([&, t] {
        auto v = e.Embed({texts[t]});
        ok[t] = v.ok();
        if (v.ok()) got[t] = (*v)[0];
      });
    }
    ASSERT_TRUE(blocker.WaitQueued(kCallers));
    EXPECT_EQ(e.stats().active_calls, static_cast<size_t>(kCallers + 1));
    EXPECT_TRUE(blocker.Release());
    for (auto& t : threads) t.join();
  }
  const EngineStats after = e.stats();
  for (int t = 0; t < kCallers; ++t) {
    ASSERT_TRUE(ok[t]) << t;
    EXPECT_GE(Cosine(got[t], want[t]), 0.99999) << t;
  }
  // The blocker's pass, then all 16 queued texts in one pass (4,096-token budget).
  EXPECT_EQ(after.forward_passes - before.forward_passes, 2u);
  EXPECT_EQ(after.sequences - before.sequences, static_cast<uint64_t>(kCallers + 1));
  EXPECT_EQ(after.queued_sequences, 0u);
  EXPECT_EQ(after.active_calls, 0u);
}

TEST_F(EngineTest, LargeCallDoesNotStarveSmallOnes) {
  // Round-robin packing: with a large call queued first, a small call queued
  // after it rides in the very next pass.
  EngineOptions eo;
  eo.threads = 2;
  eo.max_batch_tokens = 64;  // raised to the context (2,048): passes of <= 2,048 tokens
  auto opened = Engine::Open(Models::Get().Path("tiny-q8_0"), eo);
  ASSERT_TRUE(opened.ok());
  Engine& e = **opened;
  const auto big = RandomSequences(std::vector<int>(40, 200), 11);  // 8,000 tokens: 4+ passes
  const auto small = RandomSequences({10}, 12);
  std::atomic<int> big_done_at_small_finish{-1};
  std::atomic<size_t> big_done{0};
  {
    LeaderBlocker blocker(e);
    ASSERT_TRUE(blocker.entered());
    std::thread tb([&] {
      auto v = e.EmbedTokens(big, 0, [&](size_t done, size_t) { big_done = done; });
      EXPECT_TRUE(v.ok());
    });
    ASSERT_TRUE(blocker.WaitQueued(big.size()));
    std::thread ts([&] {
      auto v = e.EmbedTokens(small);
      EXPECT_TRUE(v.ok());
      big_done_at_small_finish = static_cast<int>(big_done.load());
    });
    ASSERT_TRUE(blocker.WaitQueued(big.size() + 1));
    EXPECT_TRUE(blocker.Release());
    ts.join();
    tb.join();
  }
  // The small call finished while most of the large one was still to run.
  EXPECT_LT(big_done_at_small_finish.load(), 20);
}

TEST_F(EngineTest, CancelledCallsAreDroppedFromTheQueue) {
  Engine& e = Models::Get().Open("tiny-q8_0");
  std::atomic<bool> cancel{true};
  EmbedOptions o;
  o.cancel = &cancel;
  auto pre = e.Embed({"never embedded"}, o);
  EXPECT_EQ(pre.status().code(), StatusCode::kCancelled);

  cancel = false;
  const EngineStats before = e.stats();
  Status queued_result;
  {
    LeaderBlocker blocker(e);
    ASSERT_TRUE(blocker.entered());
    std::thread t([&] { queued_result = e.Embed({"a", "b", "c"}, o).status(); });
    ASSERT_TRUE(blocker.WaitQueued(3));
    cancel = true;  // while its texts wait behind the leader
    t.join();       // returns without the leader's help
    EXPECT_EQ(queued_result.code(), StatusCode::kCancelled);
    EXPECT_EQ(e.stats().queued_sequences, 0u);
    EXPECT_TRUE(blocker.Release());
  }
  const EngineStats after = e.stats();
  EXPECT_EQ(after.sequences - before.sequences, 1u);  // only the blocker's text ran
  auto fine = e.Embed({"still works"});
  EXPECT_TRUE(fine.ok());
}

// WakeWaiters: a flag set from another thread is seen at once, not at the
// waiting call's own poll (kCancelPollMs), which alone could not return it
// sooner than that.
TEST_F(EngineTest, WakeWaitersReturnsACancelledCallAtOnce) {
  Engine& e = Models::Get().Open("tiny-q8_0");
  std::atomic<bool> cancel{false};
  EmbedOptions o;
  o.cancel = &cancel;
  LeaderBlocker blocker(e);
  ASSERT_TRUE(blocker.entered());
  std::atomic<bool> returned{false};
  Status result;
  std::thread t([&] {
    result = e.Embed({"x", "y"}, o).status();
    returned = true;
  });
  ASSERT_TRUE(blocker.WaitQueued(2));
  // Let the waiter start a fresh poll interval, then cancel and wake it.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto t0 = std::chrono::steady_clock::now();
  cancel = true;
  e.WakeWaiters();
  while (!returned && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  t.join();
  EXPECT_EQ(result.code(), StatusCode::kCancelled);
  EXPECT_LT(ms, Engine::kCancelPollMs * 0.8) << "the cancelled call waited for its own poll";
  EXPECT_EQ(e.stats().queued_sequences, 0u);
  EXPECT_TRUE(blocker.Release());
}

TEST_F(EngineTest, FullQueueRefusesAtOnce) {
  EngineOptions eo;
  eo.threads = 2;
  eo.max_queued_tokens = 40;
  auto opened = Engine::Open(Models::Get().Path("tiny-q8_0"), eo);
  ASSERT_TRUE(opened.ok());
  Engine& e = **opened;
  const auto thirty = RandomSequences({30}, 3);
  const auto twenty = RandomSequences({20}, 4);
  LeaderBlocker blocker(e);
  ASSERT_TRUE(blocker.entered());
  std::thread t([&] { EXPECT_TRUE(e.EmbedTokens(thirty).ok()); });
  ASSERT_TRUE(blocker.WaitQueued(1));
  // 30 queued + 20 > 40: refused without waiting.
  auto refused = e.EmbedTokens(twenty);
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("queue is full"), std::string::npos);
  EXPECT_TRUE(blocker.Release());
  t.join();
  // Once drained it is admitted again (an idle queue admits any one call).
  EXPECT_TRUE(e.EmbedTokens(twenty).ok());
  EXPECT_TRUE(e.EmbedTokens(RandomSequences({100}, 5)).ok());
}

TEST_F(EngineTest, PromptPolicyLivesInTheEngine) {
  Engine& e = Models::Get().Open("tiny-f32");
  EmbedOptions o;
  EXPECT_EQ(e.ResolvePrompt(o).value(), "");  // a synthetic GGUF has no prompt table
  o.task = "query";
  EXPECT_EQ(e.ResolvePrompt(o).value(), "task: search result | query: ");
  o.task = "document";
  o.title = "Paris";
  EXPECT_EQ(e.ResolvePrompt(o).value(), "title: Paris | text: ");
  o.prompt = "custom: ";
  EXPECT_EQ(e.ResolvePrompt(o).status().code(), StatusCode::kInvalidArgument);  // task and prompt
  o.task.clear();
  EXPECT_EQ(e.ResolvePrompt(o).status().code(), StatusCode::kInvalidArgument);  // title without a task
  o.title.clear();
  EXPECT_EQ(e.ResolvePrompt(o).value(), "custom: ");
  EmbedOptions unknown;
  unknown.task = "nope";
  auto r = e.ResolvePrompt(unknown);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown task 'nope'"), std::string::npos);
  EXPECT_NE(r.status().message().find("code-retrieval"), std::string::npos);
  EXPECT_EQ(e.Embed({"x"}, unknown).status().code(), StatusCode::kInvalidArgument);
  const auto names = e.TaskNames();
  EXPECT_NE(std::find(names.begin(), names.end(), "query"), names.end());
  // Task "query" embeds exactly as the literal prefix does.
  EmbedOptions task;
  task.task = "query";
  EmbedOptions custom;
  custom.prompt = "task: search result | query: ";
  EXPECT_EQ(e.Embed({"what is a cat"}, task).value(), e.Embed({"what is a cat"}, custom).value());
}

TEST_F(EngineTest, ReportAndBuffersAndBadIds) {
  Engine& e = Models::Get().Open("tiny-f32");
  const std::vector<std::string> texts = {"short", LongText(3000), ""};
  EmbedReport rep;
  std::vector<float> buf(texts.size() * e.output_dim());
  ASSERT_TRUE(e.EmbedInto(texts, {}, buf.data(), buf.size(), &rep).ok());
  ASSERT_EQ(rep.tokens.size(), 3u);
  EXPECT_EQ(rep.tokens[1], e.max_seq_length());
  EXPECT_EQ(rep.tokens[2], 2);  // BOS, EOS
  EXPECT_EQ(rep.truncated, (std::vector<uint8_t>{0, 1, 0}));
  EXPECT_EQ(rep.num_truncated, 1u);
  EXPECT_EQ(rep.total_tokens, static_cast<size_t>(rep.tokens[0] + rep.tokens[1] + rep.tokens[2]));
  // The buffer holds exactly what Embed returns.
  auto vecs = e.Embed(texts);
  ASSERT_TRUE(vecs.ok());
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_TRUE(std::equal((*vecs)[i].begin(), (*vecs)[i].end(), buf.begin() + i * e.output_dim()));
  }
  // A wrong buffer size or dim is an error, not an overrun.
  EXPECT_EQ(e.EmbedInto(texts, {}, buf.data(), buf.size() - 1).code(), StatusCode::kInvalidArgument);
  EmbedOptions bad_dim;
  bad_dim.dim = 3;
  EXPECT_EQ(e.EmbedInto(texts, bad_dim, buf.data(), buf.size()).code(), StatusCode::kInvalidArgument);
  // Token ids outside the vocabulary are refused before they reach a shared pass.
  auto bad = e.EmbedTokens({{2, 262144, 1}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("outside the vocabulary"), std::string::npos);
  EXPECT_FALSE(e.EmbedTokens({{2, -1, 1}}).ok());
  EXPECT_FALSE(e.EmbedTokens({{}}).ok());
  EXPECT_TRUE(e.EmbedTokens({{2, 1}}).ok());
  EXPECT_EQ(e.TokenText(-1).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(e.TokenText(2).value(), "<bos>");
}

// ---- bad files ------------------------------------------------------------------

TEST_F(EngineTest, BadFilesAreErrors) {
  const fs::path dir = Models::Get().dir();
  EXPECT_FALSE(Engine::Open((dir / "does-not-exist.gguf").string()).ok());
  const std::string text_file = (dir / "not-a-model.gguf").string();
  std::ofstream(text_file) << "this is not a GGUF file\n";
  EXPECT_FALSE(Engine::Open(text_file).ok());
  // A model file cut short.
  const std::string src = Models::Get().Path("tiny-q8_0");
  const std::string cut = (dir / "cut.gguf").string();
  {
    std::ifstream in(src, std::ios::binary);
    std::vector<char> head(fs::file_size(src) / 2);
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    std::ofstream(cut, std::ios::binary).write(head.data(), static_cast<std::streamsize>(head.size()));
  }
  auto e = Engine::Open(cut);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("cut.gguf"), std::string::npos) << e.status().ToString();
}

}  // namespace
}  // namespace gembed
