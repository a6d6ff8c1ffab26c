// Engine: the one object the CLI, the C API and the server call to turn
// texts into embeddings. It owns the mapped GGUF file, the config, the weight
// views, the tokenizer, the thread pool / kernel table and the forward pass.
//
// Texts: the prompt is prepended, leading/trailing whitespace of prompt+text
// is stripped like sentence-transformers (EmbedOptions::strip), then the text
// is tokenised with BOS and EOS forced (EmbeddingGemma) and truncated to the
// context length (2,048) keeping BOS and EOS, with a warning; with
// truncate = false such a text is an error.
// Odd texts are defined, never a crash:
//   * ""                -> [BOS, prompt tokens..., EOS] (no prompt: [BOS, EOS],
//                          the mean of those two token states);
//   * whitespace only   -> as "" when stripping; with strip = false the
//                          space / tab / newline-run tokens;
//   * NUL bytes         -> ordinary characters (byte token <0x00>);
//   * invalid UTF-8     -> one byte token <0xXX> per offending byte (see tokenizer.h);
//   * "<bos>", "<eos>"... inside a text -> those special ids (llama.cpp parse_special);
//   * very long lines   -> tokenised in full, then truncated as above.
//
// Threading contract: Embed / EmbedTokens may be called from any number of
// threads; tokenisation runs on the calling thread and forward passes are
// serialised by an internal mutex (one compute thread drives the pool at a
// time). Everything returned is owned by the caller.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/config.h"
#include "model/forward.h"

namespace gembed {

struct EngineOptions {
  int threads = 0;  // compute threads; <= 0: hardware concurrency
  // Token budget of one forward pass: texts are packed until the next one
  // would exceed it (a single text may use up to the context length).
  int max_batch_tokens = 4096;
  // Kernel level ("generic", "avx2", "avx512", ...); empty: the best the CPU
  // supports (or the GEMBED_ISA environment override).
  std::string isa;
  // Q8_0 arithmetic (see Precision in model/forward.h): kFast = int8
  // activations like llama.cpp (default), kHigh = fp32 activations against
  // the Q8_0 weights widened to fp32 at load (4x the weight memory, slower).
  Precision precision = Precision::kFast;
};

struct EmbedOptions {
  std::string prompt;  // prepended to every text before tokenisation ("" = none)
  int dim = 0;         // Matryoshka output dim; 0 = the model's full dim
  bool truncate = true;  // false: a text longer than the context is kInvalidArgument
  // Strip leading/trailing whitespace of prompt+text exactly like Python's
  // str.strip() (what sentence-transformers does; tokenizer/strip.h);
  // false = embed as given (llama.cpp's behaviour).
  bool strip = true;
  // Called after each forward pass with (texts done, texts total).
  std::function<void(size_t, size_t)> progress;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Open(const std::string& gguf_path, const EngineOptions& options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // One unit-length vector of options.dim (or the full dim) per text, in input
  // order. Errors: kInvalidArgument for a bad dim or (with truncate = false) a
  // text longer than the context; nothing is returned partially.
  Result<std::vector<std::vector<float>>> Embed(const std::vector<std::string>& texts,
                                                const EmbedOptions& options = {});

  // The tokens Embed runs for one text: [BOS] prompt+text [EOS] (stripped
  // unless options.strip is false), truncated to the context length keeping
  // BOS and EOS. `truncated` (optional) reports whether tokens were dropped.
  Result<std::vector<int32_t>> Tokenize(const std::string& text, const EmbedOptions& options,
                                        bool* truncated = nullptr) const;

  // Embeds already-tokenised sequences (each 1..context_length ids < n_vocab).
  Result<std::vector<std::vector<float>>> EmbedTokens(const std::vector<std::vector<int32_t>>& sequences,
                                                      int dim = 0,
                                                      const std::function<void(size_t, size_t)>& progress = {});

  const ModelConfig& config() const;
  int output_dim() const;
  // Matryoshka dims this model offers: {n_embd, 512, 256, 128} that are <= n_embd.
  std::vector<int> SupportedDims() const;
  std::string isa() const;  // the kernel level in use
  Precision precision() const;
  int threads() const;          // compute threads of the pool
  std::string weight_type() const;  // dtype of the layer matrices, e.g. "Q8_0"
  size_t packed_bytes() const;      // memory of the repacked matrices

  // Where Open spent its time (ms): mapping the file, reading the config and
  // building the tokenizer ("files"), then repacking the matrices ("pack").
  struct LoadTimes {
    double files_ms = 0, pack_ms = 0, total_ms = 0;
  };
  const LoadTimes& load_times() const;

  // Per-op wall time of forward passes (model/forward.h ForwardProfile).
  // GEMBED_PROFILE=1 in the environment turns it on at Open and prints the
  // table to stderr when the engine is destroyed. Not thread-safe with
  // concurrent Embed calls: enable, embed, read, from one thread.
  void EnableProfile(bool on);
  const ForwardProfile& profile() const;
  void ResetProfile();

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Truncates a unit vector to its first `dim` components and re-normalises
// (double-precision sum; a zero prefix stays zero).
std::vector<float> TruncateAndNormalize(const std::vector<float>& v, int dim);

}  // namespace gembed
