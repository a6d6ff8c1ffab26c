// The measurement plumbing `gembed bench` relies on: ForwardProfile's
// accounting, the engine's per-op profile (names, call counts, nothing
// counted twice, on/off/reset), load-time breakdown, and the precision
// option's observable effects (packed memory, fp32 matmul names, vectors
// close to but not identical with the fast path).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <unistd.h>

#include "engine/engine.h"
#include "model/synthetic.h"

namespace gembed {
namespace {

namespace fs = std::filesystem;

TEST(ForwardProfile, AccumulatesByNameAndFormats) {
  ForwardProfile p;
  p.Add("matmul a", 0.002);
  p.Add("norm", 0.001);
  p.Add("matmul a", 0.003);
  p.AddPass(12, 1, 0.010);
  ASSERT_EQ(p.entries().size(), 2u);
  EXPECT_EQ(p.entries()[0].op, "matmul a");
  EXPECT_EQ(p.entries()[0].calls, 2);
  EXPECT_DOUBLE_EQ(p.entries()[0].seconds, 0.005);
  EXPECT_EQ(p.passes(), 1);
  EXPECT_EQ(p.tokens(), 12);
  const std::string s = p.Format();
  EXPECT_NE(s.find("matmul a"), std::string::npos);
  EXPECT_NE(s.find("(between ops)"), std::string::npos);
  EXPECT_NE(s.find("50.0%"), std::string::npos) << s;  // 5 ms of a 10 ms pass
  // One line per row: header, column titles, two ops, "(between ops)".
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 5) << s;
  EXPECT_EQ(s.find("\\n"), std::string::npos) << "literal backslash-n in the table: " << s;
  EXPECT_EQ(s.find("\nmatmul a "), s.find("matmul a") - 1) << s;
  p.Clear();
  EXPECT_TRUE(p.entries().empty());
  EXPECT_EQ(p.passes(), 0);
}

std::string TokenizerJson() {
  const char* env = std::getenv("GEMBED_SHARED_DIR");
  return std::string(env && *env ? env : GEMBED_DEFAULT_SHARED_DIR) + "/gemma3-tokenizer/tokenizer.json";
}

class EngineProfileTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(TokenizerJson())) return;
    dir_ = new fs::path(fs::temp_directory_path() / ("gembed_bench_profile_" + std::to_string(getpid())));
    fs::create_directories(*dir_);
    SyntheticOptions o = SyntheticOptions::Tiny();
    o.seed = 11;
    o.dtype = DType::kQ8_0;
    path_ = new std::string((*dir_ / "tiny-q8_0.gguf").string());
    const Status st = WriteSyntheticModel(*path_, TokenizerJson(), o);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  static void TearDownTestSuite() {
    if (dir_) fs::remove_all(*dir_);
    delete dir_;
    delete path_;
    dir_ = nullptr;
    path_ = nullptr;
  }
  void SetUp() override {
    if (path_ == nullptr) GTEST_SKIP() << "Gemma3 tokenizer not found at " << TokenizerJson() << " (set GEMBED_SHARED_DIR)";
  }
  static std::unique_ptr<Engine> Open(Precision p, int threads = 2) {
    EngineOptions o;
    o.threads = threads;
    o.precision = p;
    auto e = Engine::Open(*path_, o);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? std::move(*e) : nullptr;
  }
  static fs::path* dir_;
  static std::string* path_;
};
fs::path* EngineProfileTest::dir_ = nullptr;
std::string* EngineProfileTest::path_ = nullptr;

TEST_F(EngineProfileTest, ProfileCountsEveryOpOncePerLayer) {
  auto e = Open(Precision::kFast);
  ASSERT_NE(e, nullptr);
  const int layers = static_cast<int>(e->config().n_layer);
  const std::vector<std::vector<int32_t>> seqs = {{2, 100, 200, 1}, {2, 7, 1}, {2, 300, 301, 302, 303, 1}};
  ASSERT_TRUE(e->EmbedTokens(seqs).ok());
  EXPECT_EQ(e->profile().passes(), 0) << "profiling is off by default";

  e->EnableProfile(true);
  ASSERT_TRUE(e->EmbedTokens(seqs).ok());  // one packed pass (13 tokens)
  const ForwardProfile& p = e->profile();
  EXPECT_EQ(p.passes(), 1);
  EXPECT_EQ(p.tokens(), 13);
  std::map<std::string, int64_t> calls;
  double sum = 0;
  for (const auto& entry : p.entries()) {
    calls[entry.op] = entry.calls;
    sum += entry.seconds;
    EXPECT_GE(entry.seconds, 0.0) << entry.op;
  }
  // Ops are disjoint timed regions inside the pass. How much of the pass's
  // wall time they cover depends on the scheduler (a preemption between two
  // ops of this ~1 ms pass counts for the pass only), so it is recorded, not
  // asserted; the call counts below check that every op is timed.
  EXPECT_LE(sum, p.pass_seconds() * 1.0001 + 1e-6);
  EXPECT_GT(sum, 0.0);
  RecordProperty("ops_share_of_pass", std::to_string(p.pass_seconds() > 0 ? sum / p.pass_seconds() : 0.0));
  int64_t qkv = 0, attention = 0, add_norm = 0;
  for (const auto& [name, n] : calls) {
    if (name.rfind("matmul q8 q/k/v", 0) == 0) qkv += n;
    if (name.rfind("attention", 0) == 0) attention += n;
    if (name.rfind("residual norm+add", 0) == 0) add_norm += n;
  }
  EXPECT_EQ(qkv, layers);
  EXPECT_EQ(attention, layers);
  EXPECT_EQ(add_norm, 2 * layers);
  EXPECT_EQ(calls["embedding lookup"], 1);
  EXPECT_EQ(calls["mean pooling"], 1);

  e->EnableProfile(false);
  ASSERT_TRUE(e->EmbedTokens(seqs).ok());
  EXPECT_EQ(e->profile().passes(), 1) << "disabled profiling must not record";
  e->ResetProfile();
  EXPECT_EQ(e->profile().passes(), 0);
  EXPECT_TRUE(e->profile().entries().empty());
}

TEST_F(EngineProfileTest, LoadTimesAndIdentity) {
  auto e = Open(Precision::kFast, 1);
  ASSERT_NE(e, nullptr);
  const Engine::LoadTimes& t = e->load_times();
  EXPECT_GT(t.files_ms, 0.0);
  EXPECT_GT(t.pack_ms, 0.0);
  EXPECT_GE(t.total_ms, t.files_ms + t.pack_ms - 1e-6);
  EXPECT_EQ(e->weight_type(), "Q8_0");
  EXPECT_EQ(e->threads(), 1);
  EXPECT_EQ(e->precision(), Precision::kFast);
}

TEST_F(EngineProfileTest, HighPrecisionWidensWeightsAndChangesArithmetic) {
  auto fast = Open(Precision::kFast);
  auto high = Open(Precision::kHigh);
  ASSERT_TRUE(fast && high);
  EXPECT_EQ(high->precision(), Precision::kHigh);
  // 4 bytes per weight instead of 34/32.
  const double ratio = static_cast<double>(high->packed_bytes()) / static_cast<double>(fast->packed_bytes());
  EXPECT_NEAR(ratio, 4.0 * 32.0 / 34.0, 0.02);
  high->EnableProfile(true);
  const std::vector<std::vector<int32_t>> seqs = {{2, 651, 1200, 1999, 107, 1}};
  auto a = fast->EmbedTokens(seqs);
  auto b = high->EmbedTokens(seqs);
  ASSERT_TRUE(a.ok() && b.ok());
  bool f32_named = false;
  for (const auto& entry : high->profile().entries()) f32_named |= entry.op.rfind("matmul f32", 0) == 0;
  EXPECT_TRUE(f32_named);
  double dot = 0, diff = 0;
  for (size_t i = 0; i < (*a)[0].size(); ++i) {
    dot += static_cast<double>((*a)[0][i]) * (*b)[0][i];
    diff += std::fabs((*a)[0][i] - (*b)[0][i]);
  }
  EXPECT_GT(dot, 0.999);  // both unit vectors of the same model
  EXPECT_GT(diff, 0.0);   // but int8 vs fp32 activations differ
  EXPECT_EQ(PrecisionFromName("high"), Precision::kHigh);
  EXPECT_EQ(PrecisionFromName("fast"), Precision::kFast);
  EXPECT_FALSE(PrecisionFromName("medium").has_value());
  EXPECT_EQ(PrecisionName(Precision::kHigh), "high");
}

}  // namespace
}  // namespace gembed
