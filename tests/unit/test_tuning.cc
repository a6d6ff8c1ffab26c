// Kernel tuning (engine/tuning.h, kernels/tune.h): the choice is measured once
// per CPU model and cached, can be overridden, survives a bad cache, and never
// changes a vector.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/tuning.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/tune.h"
#include "model/synthetic.h"

namespace gembed {
namespace {

namespace fs = std::filesystem;

std::string SharedDir() {
  const char* env = std::getenv("GEMBED_SHARED_DIR");
  return env && *env ? env : GEMBED_DEFAULT_SHARED_DIR;
}

// Sets (or unsets, value == nullptr) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_.c_str(), old_.c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_, old_;
  bool had_ = false;
};

class TuningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gembed_test_tuning_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(TuningTest, MeasuresOnceThenReadsTheCache) {
  const Isa isa = BestIsa();
  if (GemmQ8VariantsFor(isa).size() < 2) GTEST_SKIP() << "one variant at " << IsaName(isa) << ": nothing to tune";
  ScopedEnv cache("GEMBED_CACHE_DIR", dir_.c_str());
  ScopedEnv tune("GEMBED_TUNE", nullptr);
  ScopedEnv gemm("GEMBED_GEMM_Q8", nullptr);
  const std::string path = TuneCachePath(isa);
  ASSERT_EQ(path.rfind(dir_.string() + "/tune/", 0), 0u) << path;
  EXPECT_NE(path.find(std::string(IsaName(isa))), std::string::npos) << path;

  const KernelResolution first = ResolveKernelChoice(isa);
  EXPECT_EQ(first.source, "measured");
  ASSERT_EQ(first.report.rows.size(), TuneCandidates(isa).size());
  for (const TuneReport::Row& r : first.report.rows) {
    EXPECT_GT(r.small_ms, 0.0) << r.variant;
    EXPECT_GT(r.large_ms, 0.0) << r.variant;
  }
  EXPECT_NE(FindGemmQ8Variant(isa, first.choice.gemm_q8_small), nullptr);
  EXPECT_NE(FindGemmQ8Variant(isa, first.choice.gemm_q8_large), nullptr);
  // The budget is ~0.3 s; a loaded machine may stretch it, never by 10x.
  EXPECT_LT(first.report.elapsed_ms, 3000.0);
  ASSERT_TRUE(fs::exists(path));
  EXPECT_NE(ReadAll(path).find(first.choice.gemm_q8_small), std::string::npos);

  const KernelResolution second = ResolveKernelChoice(isa);
  EXPECT_EQ(second.source, "cache");
  EXPECT_EQ(second.choice.gemm_q8_small, first.choice.gemm_q8_small);
  EXPECT_EQ(second.choice.gemm_q8_large, first.choice.gemm_q8_large);

  {
    ScopedEnv force("GEMBED_TUNE", "force");
    EXPECT_EQ(ResolveKernelChoice(isa).source, "measured");
  }
}

TEST_F(TuningTest, ABadCacheIsMeasuredAgainAndRewritten) {
  const Isa isa = BestIsa();
  if (GemmQ8VariantsFor(isa).size() < 2) GTEST_SKIP() << "one variant at " << IsaName(isa) << ": nothing to tune";
  ScopedEnv cache("GEMBED_CACHE_DIR", dir_.c_str());
  ScopedEnv tune("GEMBED_TUNE", nullptr);
  ScopedEnv gemm("GEMBED_GEMM_Q8", nullptr);
  const std::string path = TuneCachePath(isa);
  fs::create_directories(fs::path(path).parent_path());
  const std::vector<std::string> bad = {
      "not json",
      "{\"version\": 1, \"gemm_q8_small\": \"no-such-kernel\", \"gemm_q8_large\": \"no-such-kernel\", "
      "\"small_m_max\": 32}",
      "{\"version\": 999, \"gemm_q8_small\": 1}",
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["};
  for (const std::string& content : bad) {
    std::ofstream(path) << content;
    const KernelResolution r = ResolveKernelChoice(isa);
    EXPECT_EQ(r.source, "measured") << content;
    EXPECT_NE(FindGemmQ8Variant(isa, r.choice.gemm_q8_small), nullptr) << content;
    EXPECT_EQ(ResolveKernelChoice(isa).source, "cache") << "rewritten after: " << content;
  }
}

TEST_F(TuningTest, OverridesAndOff) {
  const Isa isa = BestIsa();
  const std::span<const GemmQ8Variant> variants = GemmQ8VariantsFor(isa);
  ScopedEnv cache("GEMBED_CACHE_DIR", dir_.c_str());
  {
    ScopedEnv tune("GEMBED_TUNE", "off");
    ScopedEnv gemm("GEMBED_GEMM_Q8", nullptr);
    const KernelResolution r = ResolveKernelChoice(isa);
    EXPECT_TRUE(r.source == "off" || r.source == "default") << r.source;
    EXPECT_EQ(r.choice.gemm_q8_small, variants.front().name);
    EXPECT_EQ(r.choice.gemm_q8_large, variants.front().name);
    EXPECT_FALSE(fs::exists(TuneCachePath(isa))) << "off measures nothing and writes nothing";
  }
  if (variants.size() < 2) GTEST_SKIP() << "one variant at " << IsaName(isa);
  {
    const std::string pick = std::string(variants.back().name) + "," + variants[1].name;
    ScopedEnv gemm("GEMBED_GEMM_Q8", pick.c_str());
    const KernelResolution r = ResolveKernelChoice(isa);
    EXPECT_EQ(r.source, "env");
    EXPECT_EQ(r.choice.gemm_q8_small, variants.back().name);
    EXPECT_EQ(r.choice.gemm_q8_large, variants[1].name);
  }
  {
    // An unknown name is not obeyed (a warning), and tuning goes on as usual.
    ScopedEnv tune("GEMBED_TUNE", "off");
    ScopedEnv gemm("GEMBED_GEMM_Q8", "no-such-kernel");
    const KernelResolution r = ResolveKernelChoice(isa);
    EXPECT_EQ(r.source, "off");
    EXPECT_EQ(r.choice.gemm_q8_small, variants.front().name);
  }
}

// The AMX variants are measured only when GEMBED_AMX=1 asks for them and the
// process can run AMX, and their choice is cached in a file of its own.
TEST_F(TuningTest, AmxIsACandidateOnlyWhenAskedForAndRunnable) {
  const Isa isa = Isa::kAvx512Vnni;
  ScopedEnv cache("GEMBED_CACHE_DIR", dir_.c_str());
  const std::span<const GemmQ8Variant> level = GemmQ8VariantsFor(isa);
  auto amx_count = [](const std::vector<GemmQ8Variant>& c) {
    size_t n = 0;
    for (const GemmQ8Variant& v : c) n += std::string(v.name).rfind("amx", 0) == 0 ? 1 : 0;
    return n;
  };
  for (const char* value : {static_cast<const char*>(nullptr), "0", "yes"}) {
    ScopedEnv amx("GEMBED_AMX", value);
    const std::vector<GemmQ8Variant> c = TuneCandidates(isa);
    EXPECT_EQ(c.size(), level.size()) << (value ? value : "unset");
    EXPECT_EQ(amx_count(c), 0u) << (value ? value : "unset");
    EXPECT_EQ(TuneCachePath(isa).find("-amx"), std::string::npos) << (value ? value : "unset");
  }
  ScopedEnv amx("GEMBED_AMX", "1");
  const std::vector<GemmQ8Variant> c = TuneCandidates(isa);
  ASSERT_FALSE(c.empty());
  EXPECT_STREQ(c.front().name, level.front().name) << "the default stays first";
  EXPECT_EQ(amx_count(c), AmxGemmQ8Variants().size());
  EXPECT_EQ(amx_count(c) > 0, AmxInt8Usable());
  EXPECT_EQ(TuneCachePath(isa).find("-amx") != std::string::npos, AmxInt8Usable()) << TuneCachePath(isa);
  EXPECT_EQ(amx_count(TuneCandidates(Isa::kAvx2)), 0u) << "AMX belongs to the avx512vnni level only";
}

// The vectors are the same bits whichever variants run the short and the
// long calls: one text (a few rows, the short path) and a batch of texts
// packed into one pass of more rows than the short path takes.
TEST_F(TuningTest, EveryVariantGivesTheSameVectors) {
  const std::string tok = SharedDir() + "/gemma3-tokenizer/tokenizer.json";
  if (!fs::exists(tok)) GTEST_SKIP() << "Gemma3 tokenizer not found at " << tok << " (set GEMBED_SHARED_DIR)";
  SyntheticOptions o = SyntheticOptions::Tiny();
  o.seed = 11;
  o.n_embd = 256;
  o.n_ff = 512;
  o.head_dim = 128;
  o.dtype = DType::kQ8_0;
  const std::string model = (dir_ / "tiny-q8_0.gguf").string();
  ASSERT_TRUE(WriteSyntheticModel(model, tok, o).ok());
  const std::vector<std::string> one = {"a short query"};
  std::vector<std::string> many;
  for (int i = 0; i < 12; ++i) many.push_back("document number " + std::to_string(i) + " about kernels and caches");

  auto embed = [&](const char* gemm) {
    ScopedEnv tune("GEMBED_TUNE", "off");
    ScopedEnv g("GEMBED_GEMM_Q8", gemm);
    EngineOptions eo;
    eo.threads = 2;
    auto e = Engine::Open(model, eo);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    std::vector<std::vector<float>> out;
    for (const std::vector<std::string>* texts : {&one, static_cast<const std::vector<std::string>*>(&many)}) {
      auto v = (*e)->Embed(*texts);
      EXPECT_TRUE(v.ok()) << v.status().ToString();
      for (auto& row : *v) out.push_back(std::move(row));
    }
    return out;
  };
  const auto base = embed(nullptr);
  ASSERT_EQ(base.size(), 13u);
  ScopedEnv amx("GEMBED_AMX", "1");  // the AMX variants too, where they can run
  for (const GemmQ8Variant& v : TuneCandidates(BestIsa())) {
    const auto got = embed(v.name);
    ASSERT_EQ(got.size(), base.size()) << v.name;
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(0, std::memcmp(got[i].data(), base[i].data(), base[i].size() * sizeof(float)))
          << v.name << " text " << i;
  }
}

}  // namespace
}  // namespace gembed
