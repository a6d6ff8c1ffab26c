// Tokenizer benchmarks: vocabulary load time (GGUF and tokenizer.json) and
// single-threaded encode throughput on a corpus.
//
// Inputs (environment):
//   GEMBED_SHARED_DIR        folder with gemma3-tokenizer/tokenizer.json (default: the
//                            build's GEMBED_DEFAULT_SHARED_DIR); benchmarks are skipped
//                            without it.
//   GEMBED_TOKENIZER_CORPUS  JSONL file, one JSON string per line (scripts/bench_tokenizer.py
//                            writes one from scripts/gen_tokenizer_corpus.py); default: a
//                            small built-in mixed corpus.
// The GGUF vocabulary is written once to a temporary file from tokenizer.json
// (WriteGgufVocab), as `gembed tokenize --write-gguf-vocab` does.
//
// Counters: tokens/s (items_per_second) and bytes/s of input text.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "tokenizer/json_reader.h"
#include "tokenizer/tokenizer.h"

namespace gembed {
namespace {

std::string TokenizerJsonPath() {
  const char* env = std::getenv("GEMBED_SHARED_DIR");
  return std::string(env != nullptr ? env : GEMBED_DEFAULT_SHARED_DIR) + "/gemma3-tokenizer/tokenizer.json";
}

std::vector<std::string> BuiltinCorpus() {
  const char* samples[] = {
      "EmbeddingGemma is a 308M parameter multilingual text embedding model based on Gemma 3.",
      "task: search result | query: how do I bake sourdough bread at home without a dutch oven?",
      "title: none | text: The mitochondrion is the powerhouse of the cell, producing ATP through respiration.",
      "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n",
      "机器学习是人工智能的一个分支，它使计算机能够从数据中学习。",
      "Съешь же ещё этих мягких французских булок, да выпей чаю.",
      "<table><tr><td>1</td><td>2</td></tr></table>",
      "Emoji test 🚀🔥👍🏽 and flags 🇺🇸🇯🇵 with ZWJ 👨‍👩‍👧‍👦.",
  };
  std::vector<std::string> out;
  for (int rep = 0; rep < 64; ++rep) {
    for (const char* s : samples) out.emplace_back(s);
  }
  return out;
}

const std::vector<std::string>& Corpus() {
  static const std::vector<std::string> corpus = [] {
    const char* path = std::getenv("GEMBED_TOKENIZER_CORPUS");
    if (path == nullptr) return BuiltinCorpus();
    std::ifstream in(path, std::ios::binary);
    std::vector<std::string> texts;
    std::string line, text;
    while (std::getline(in, line)) {
      tokenizer_internal::JsonReader r(line);
      if (r.ReadString(&text) && r.ExpectEnd()) texts.push_back(text);
    }
    if (texts.empty()) {
      std::fprintf(stderr, "bench_tokenizer: no texts in %s; using the built-in corpus\n", path);
      return BuiltinCorpus();
    }
    return texts;
  }();
  return corpus;
}

const std::string& GgufVocabPath() {
  static const std::string path = [] {
    auto t = Tokenizer::FromHfJson(TokenizerJsonPath());
    if (!t.ok()) return std::string();
    GgufWriter w;
    w.SetString("general.architecture", "gemma-embedding");
    if (!WriteGgufVocab((*t)->vocab(), &w).ok()) return std::string();
    const std::string p =
        (std::filesystem::temp_directory_path() / ("gembed_bench_vocab_" + std::to_string(::getpid()) + ".gguf")).string();
    if (!w.WriteFile(p).ok()) return std::string();
    std::atexit([] { std::remove(GgufVocabPath().c_str()); });
    return p;
  }();
  return path;
}

const Tokenizer* LoadedTokenizer(bool gguf) {
  static std::unique_ptr<Tokenizer> cache[2];
  std::unique_ptr<Tokenizer>& slot = cache[gguf ? 1 : 0];
  if (!slot) {
    Result<std::unique_ptr<Tokenizer>> t =
        gguf ? (GgufVocabPath().empty() ? Result<std::unique_ptr<Tokenizer>>(NotFound("no vocab"))
                                        : Tokenizer::FromFile(GgufVocabPath()))
             : Tokenizer::FromHfJson(TokenizerJsonPath());
    if (!t.ok()) return nullptr;
    slot = std::move(t).value();
  }
  return slot.get();
}

void BM_LoadTokenizerJson(benchmark::State& state) {
  if (!std::filesystem::exists(TokenizerJsonPath())) {
    state.SkipWithError("tokenizer.json not found (set GEMBED_SHARED_DIR)");
    return;
  }
  for (auto _ : state) {
    auto t = Tokenizer::FromHfJson(TokenizerJsonPath());
    if (!t.ok()) {
      state.SkipWithError(t.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_LoadTokenizerJson)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_LoadGguf(benchmark::State& state) {
  if (GgufVocabPath().empty()) {
    state.SkipWithError("tokenizer.json not found (set GEMBED_SHARED_DIR)");
    return;
  }
  for (auto _ : state) {
    auto f = GgufFile::Open(GgufVocabPath());
    if (!f.ok()) {
      state.SkipWithError(f.status().ToString().c_str());
      return;
    }
    auto t = Tokenizer::FromGguf(**f);
    if (!t.ok()) {
      state.SkipWithError(t.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_LoadGguf)->Unit(benchmark::kMillisecond)->MinTime(2.0);

// Encodes the whole corpus once per iteration, single-threaded, without BOS/EOS.
void EncodeCorpus(benchmark::State& state, bool gguf) {
  const Tokenizer* t = LoadedTokenizer(gguf);
  if (t == nullptr) {
    state.SkipWithError("tokenizer not available (set GEMBED_SHARED_DIR)");
    return;
  }
  const auto& corpus = Corpus();
  size_t bytes = 0;
  for (const auto& s : corpus) bytes += s.size();
  std::vector<int32_t> ids;
  int64_t tokens = 0;
  for (auto _ : state) {
    for (const auto& s : corpus) {
      ids.clear();
      t->EncodeAppend(s, false, false, &ids);
      tokens += static_cast<int64_t>(ids.size());
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(tokens);
  state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
  state.counters["texts"] = static_cast<double>(corpus.size());
}

void BM_EncodeGgufSpm(benchmark::State& state) { EncodeCorpus(state, true); }
void BM_EncodeTokenizerJsonBpe(benchmark::State& state) { EncodeCorpus(state, false); }
BENCHMARK(BM_EncodeGgufSpm)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK(BM_EncodeTokenizerJsonBpe)->Unit(benchmark::kMillisecond)->MinTime(3.0);

}  // namespace
}  // namespace gembed

BENCHMARK_MAIN();
