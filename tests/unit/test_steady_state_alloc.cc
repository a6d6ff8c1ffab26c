// "No allocation in the steady state": once a Model has run a batch, later
// forward passes of no more tokens/sequences allocate nothing, on any thread.
//
// This executable interposes the C allocation functions (everything else,
// operator new included, goes through them with glibc/libstdc++) and counts
// calls while a flag is set. A positive control checks that the counting
// really sees allocations, so the zero it asserts is meaningful.
#include <gtest/gtest.h>

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "io/gguf.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/ops.h"
#include "model/config.h"
#include "model/forward.h"
#include "model/synthetic.h"
#include "model/weights.h"

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
inline void Count() {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" {
void* malloc(size_t n) {
  Count();
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t m) {
  Count();
  return __libc_calloc(n, m);
}
void* realloc(void* p, size_t n) {
  Count();
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
void* memalign(size_t a, size_t n) {
  Count();
  return __libc_memalign(a, n);
}
void* aligned_alloc(size_t a, size_t n) {
  Count();
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, size_t a, size_t n) {
  Count();
  void* p = __libc_memalign(a, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}

namespace gembed {
namespace {

namespace fs = std::filesystem;

std::string TokenizerJson() {
  const char* env = std::getenv("GEMBED_SHARED_DIR");
  return std::string(env && *env ? env : GEMBED_DEFAULT_SHARED_DIR) + "/gemma3-tokenizer/tokenizer.json";
}

struct Batch {
  std::vector<int32_t> ids;
  std::vector<int32_t> cu{0};
};

Batch MakeBatch(const std::vector<int>& lengths, uint32_t seed, int32_t vocab) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(3, vocab - 1);
  Batch b;
  for (int len : lengths) {
    for (int i = 0; i < len; ++i) b.ids.push_back(tok(rng));
    b.cu.push_back(static_cast<int32_t>(b.ids.size()));
  }
  return b;
}

class SteadyStateAllocTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!fs::exists(TokenizerJson())) {
      GTEST_SKIP() << "Gemma3 tokenizer not found at " << TokenizerJson() << " (set GEMBED_SHARED_DIR)";
    }
    dir_ = fs::temp_directory_path() / ("gembed_test_alloc_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(AllocationCounter, SeesAllocations) {
  // Positive control: the interposed functions are the ones in use.
  g_allocations = 0;
  g_counting = true;
  auto v = std::make_unique<std::vector<int>>(1000, 1);
  void* p = std::aligned_alloc(64, 4096);
  g_counting = false;
  std::free(p);
  EXPECT_GE(g_allocations.load(), 3) << "operator new (twice) and aligned_alloc must be counted";
  EXPECT_EQ((*v)[999], 1);
}

TEST_P(SteadyStateAllocTest, ForwardAllocatesNothingAfterTheFirstBatch) {
  SyntheticOptions o = SyntheticOptions::Tiny();
  o.dtype = *DTypeFromName(GetParam());
  o.seed = 11;
  const std::string path = (dir_ / (GetParam() + ".gguf")).string();
  ASSERT_TRUE(WriteSyntheticModel(path, TokenizerJson(), o).ok());
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto config = ConfigFromGguf(**file);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  auto weights = BindWeights(*config, **file);
  ASSERT_TRUE(weights.ok()) << weights.status().ToString();
  auto model = Model::Create(*config, *weights);
  ASSERT_TRUE(model.ok()) << model.status().ToString();

  ThreadPool pool(2);
  Ops ops(GetKernelTable(BestIsa()), pool);
  const auto vocab = static_cast<int32_t>(config->n_vocab);
  const int d = (*model)->output_dim();
  // First batch: sliding and global layers, several sequences, > 1 query block.
  const Batch first = MakeBatch({5, 77, 300, 1}, 1, vocab);
  std::vector<float> out(4 * static_cast<size_t>(d));
  ASSERT_TRUE((*model)->Forward(ops, first.ids, first.cu, out.data()).ok());

  // Later batches of no more tokens and sequences: different lengths and order.
  const Batch second = MakeBatch({300, 77, 5, 1}, 2, vocab);
  const Batch third = MakeBatch({2, 250}, 3, vocab);
  std::vector<float> out2(4 * static_cast<size_t>(d));
  g_allocations = 0;
  g_counting = true;
  const Status s2 = (*model)->Forward(ops, second.ids, second.cu, out2.data());
  const Status s3 = (*model)->Forward(ops, third.ids, third.cu, out2.data());
  const Status s1 = (*model)->Forward(ops, first.ids, first.cu, out2.data());
  g_counting = false;
  ASSERT_TRUE(s2.ok()) << s2.ToString();
  ASSERT_TRUE(s3.ok()) << s3.ToString();
  ASSERT_TRUE(s1.ok()) << s1.ToString();
  EXPECT_EQ(g_allocations.load(), 0) << "forward passes after the first allocated";
  // And the passes did real work: the repeated first batch gives the same vectors.
  EXPECT_EQ(out, out2);

  // Control inside the model: a longer batch than any before must grow the
  // scratch arena, and that growth is seen.
  const Batch longer = MakeBatch({700}, 4, vocab);
  g_allocations = 0;
  g_counting = true;
  const Status s4 = (*model)->Forward(ops, longer.ids, longer.cu, out2.data());
  g_counting = false;
  ASSERT_TRUE(s4.ok()) << s4.ToString();
  EXPECT_GT(g_allocations.load(), 0) << "growing the arena was not counted: the counter is blind";
}

INSTANTIATE_TEST_SUITE_P(Types, SteadyStateAllocTest, ::testing::Values("q8_0", "f32", "bf16"));

}  // namespace
}  // namespace gembed
