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
// Threading contract: Embed* may be called from any number of threads at
// once, and their texts share forward passes (cross-caller batching: the
// server's requests and a Python program's threads are packed together).
// Tokenisation runs on the calling thread; the sequences then join one queue.
// One caller at a time leads: it packs queued sequences of all callers,
// round-robin across calls so a large call cannot starve small ones, under
// the token budget, runs the pass on the pool and hands each caller its rows;
// when its own call is done another waiting caller takes over. The vectors
// do not depend on what they were batched with (attention never crosses
// sequences; packed == single is bit-identical). Everything returned is
// owned by the caller.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/config.h"
#include "model/forward.h"
#include "model/hf_config.h"

namespace gembed {

struct EngineOptions {
  int threads = 0;  // compute threads; <= 0: hardware concurrency
  // Token budget of one forward pass: texts are packed until the next one
  // would exceed it. A single text may need the whole context, so a budget
  // below the model's context length is raised to it (with a warning).
  int max_batch_tokens = 4096;
  // Kernel level ("generic", "avx2", "avx512", ...); empty: the best the CPU
  // supports (or the GEMBED_ISA environment override).
  std::string isa;
  // Q8_0 arithmetic (see Precision in model/forward.h): kFast = int8
  // activations like llama.cpp (default), kHigh = fp32 activations against
  // the Q8_0 weights widened to fp32 at load (4x the weight memory, slower).
  Precision precision = Precision::kFast;
  // Admission limit of the shared queue (sequences waiting for a forward pass,
  // over all callers): a call that would take the queue past it fails at once
  // with kResourceExhausted and embeds nothing. 0 = no limit.
  size_t max_queued_tokens = 0;
};

// How texts become token sequences. The prompt is chosen here, by the engine,
// so every face (CLI, server, Python, C) resolves task names alike:
//   * `prompt` set      -> that prefix verbatim (a custom prompt);
//   * `task` non-empty  -> a name from the model's own prompt table (a Hugging
//                          Face folder's config_sentence_transformers.json, or
//                          the gembed.prompts.* keys `gembed convert` writes),
//                          then the built-in model-card names (tokenizer/prompts.h);
//                          `title` fills the document title;
//   * neither           -> the model's default prompt (default_prompt_name),
//                          else none (use_default_prompt = false: none).
// Setting both `task` and `prompt`, or `title` without `task`, is
// kInvalidArgument.
struct EmbedOptions {
  std::string task;
  std::string title;
  std::optional<std::string> prompt;
  bool use_default_prompt = true;
  int dim = 0;         // Matryoshka output dim; 0 = the model's full dim
  bool truncate = true;  // false: a text longer than the context is kInvalidArgument
  // Strip leading/trailing whitespace of prompt+text exactly like Python's
  // str.strip() (what sentence-transformers does; tokenizer/strip.h);
  // false = embed as given (llama.cpp's behaviour).
  bool strip = true;
  // Called on the caller's thread after forward passes that finished some of
  // its texts, with (texts done, texts total).
  std::function<void(size_t, size_t)> progress;
  // When it becomes true, the call stops as soon as possible: texts not yet
  // in a forward pass are dropped and the call returns kCancelled. A call
  // waiting behind other callers' passes sees the flag when it wakes: at the
  // end of a pass, at Engine::WakeWaiters(), or at the latest after
  // kCancelPollMs.
  const std::atomic<bool>* cancel = nullptr;
};

// What happened to each text of one call (same order as the input).
struct EmbedReport {
  std::vector<int32_t> tokens;    // tokens run per text (BOS, prompt and EOS included)
  std::vector<uint8_t> truncated;  // 1: the text was cut to the context length
  size_t total_tokens = 0;
  size_t num_truncated = 0;
  // When a text is refused (too long with truncate = false): its index, and
  // the reason without the "text N: " context the returned status carries.
  int64_t failed_text = -1;
  std::string failed_reason;
};

// Forward passes run by the engine since it was opened (all callers).
struct EngineStats {
  uint64_t forward_passes = 0;
  uint64_t sequences = 0;       // sequences run in those passes
  uint64_t tokens = 0;          // tokens run in those passes
  double forward_seconds = 0;   // wall time inside the passes
  size_t queued_sequences = 0;  // waiting now (not yet in a pass)
  size_t queued_tokens = 0;
  size_t active_calls = 0;      // Embed* calls in progress now
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Open(const std::string& gguf_path, const EngineOptions& options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // One unit-length vector of options.dim (or the full dim) per text, in input
  // order. Errors: kInvalidArgument for a bad dim, task or prompt choice or
  // (with truncate = false) a text longer than the context; kCancelled;
  // kResourceExhausted when the queue is full (max_queued_tokens). Nothing is
  // returned partially.
  Result<std::vector<std::vector<float>>> Embed(const std::vector<std::string>& texts,
                                                const EmbedOptions& options = {},
                                                EmbedReport* report = nullptr);

  // The same, written row-major into the caller's buffer of
  // texts.size() * OutputDim(options.dim) floats (out_floats must equal that).
  Status EmbedInto(std::span<const std::string> texts, const EmbedOptions& options, float* out,
                   size_t out_floats, EmbedReport* report = nullptr);

  // The prefix `options` selects (see EmbedOptions); "" for none.
  Result<std::string> ResolvePrompt(const EmbedOptions& options) const;

  // The tokens Embed runs for one text: [BOS] prompt+text [EOS] (stripped
  // unless options.strip is false), truncated to the context length keeping
  // BOS and EOS. `truncated` (optional) reports whether tokens were dropped.
  Result<std::vector<int32_t>> Tokenize(const std::string& text, const EmbedOptions& options,
                                        bool* truncated = nullptr) const;
  // Plain tokenisation of exactly `text` (no prompt, no strip, no truncation).
  std::vector<int32_t> TokenizeRaw(std::string_view text, bool add_special) const;
  // The text of one token id (kOutOfRange for an id outside the vocabulary).
  Result<std::string> TokenText(int32_t id) const;
  int vocab_size() const;

  // Embeds already-tokenised sequences (each 1..context_length ids in
  // [0, vocab)). Shares the queue and forward passes with Embed.
  Result<std::vector<std::vector<float>>> EmbedTokens(const std::vector<std::vector<int32_t>>& sequences,
                                                      int dim = 0,
                                                      const std::function<void(size_t, size_t)>& progress = {});
  Status EmbedTokensInto(const std::vector<std::vector<int32_t>>& sequences, int dim, float* out,
                         size_t out_floats, const std::function<void(size_t, size_t)>& progress = {},
                         const std::atomic<bool>* cancel = nullptr);

  // The output width for a requested Matryoshka dim (0 = full), or
  // kInvalidArgument naming the allowed dims.
  Result<int> OutputDim(int dim) const;

  // The model's prompt table (folder / GGUF), and every task name accepted
  // (table names first, then the built-ins not already listed).
  const HfPromptTable& prompt_table() const;
  std::vector<std::string> TaskNames() const;
  int max_seq_length() const;  // tokens per text, BOS and EOS included
  int max_batch_tokens() const;  // the token budget of one pass in effect (see EngineOptions)
  EngineStats stats() const;

  // Wakes every call waiting in the queue, so that one whose cancel flag was
  // just set returns now instead of at the next pass or poll. For whoever
  // sets flags from another thread (the server, when a client disconnects).
  void WakeWaiters();
  // How often a waiting call with a cancel flag looks at it on its own. Long
  // on purpose: hundreds of waiting calls polling every few milliseconds
  // cost the forward pass a tenth of its speed.
  static constexpr int kCancelPollMs = 500;

  const ModelConfig& config() const;
  int output_dim() const;
  // Matryoshka dims this model offers: {n_embd, 512, 256, 128} that are <= n_embd.
  std::vector<int> SupportedDims() const;
  std::string isa() const;  // the kernel level in use
  // The Q8 GEMM variants in use and how they were chosen (engine/tuning.h),
  // e.g. "gemm_q8 zmm12x1pf4 (<= 32 rows) / zmm6x2 (cache)".
  std::string kernels() const;
  Precision precision() const;
  int threads() const;          // compute threads of the pool
  std::string weight_type() const;  // dtype of the layer matrices, e.g. "Q8_0"
  size_t packed_bytes() const;      // memory of the repacked matrices
  int64_t layer_macs_per_token() const;  // multiply-adds of the layers' matrices per token

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
