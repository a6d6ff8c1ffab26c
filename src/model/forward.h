// The EmbeddingGemma forward pass (MODEL-SPEC §4), written once against the
// Ops API: token ids of several sequences packed back to back -> one unit
// vector per sequence.
//
// A Model holds the matrices repacked for the kernels (PackMatrix, done once
// at load) and a scratch arena sized for the largest batch seen, so a steady
// stream of batches does not allocate. The token embedding table and the norm
// gains are used in place from the weight views (the mapped file).
//
// Threading contract: a Model is driven by one thread at a time (the Ops it
// is given brings the worker threads); the engine serialises callers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "kernels/aligned_buffer.h"
#include "kernels/ops.h"
#include "model/config.h"
#include "model/weights.h"

namespace gembed {

// Optional observer of named intermediates (llama.cpp's cb(...)): called with
// the tensor name, the layer (-1 outside blocks) and a [rows x cols] fp32
// matrix that is valid only during the call. For debugging and oracle dumps;
// it slows the pass down, so leave it empty in production.
using ForwardObserver =
    std::function<void(const char* name, int layer, const float* data, int64_t rows, int64_t cols)>;

// Arithmetic of the matrix products against Q8_0 weights.
//   kFast: activations are rounded to Q8_0 blocks and multiplied in int8
//          (llama.cpp's precision; ~1-5e-4 of cosine vs an exact float64 pass).
//   kHigh: Q8_0 weights are widened to fp32 at load (exactly d * q) and the
//          activations stay fp32 (fp32 GEMM): ~1e-6 vs the float64 pass, at
//          4 bytes per weight (~430 MB instead of ~115 MB for the 300M model)
//          and the fp32 GEMM's speed. F32/F16/BF16 weights run in fp32 either way.
enum class Precision : int { kFast = 0, kHigh = 1 };
std::string_view PrecisionName(Precision p);  // "fast", "high"
std::optional<Precision> PrecisionFromName(std::string_view name);

// Wall time per operation of forward passes, for `gembed bench --profile`
// and GEMBED_PROFILE=1. Matrix products are named with their shapes.
// Not thread-safe: owned and filled by the thread that drives the Model.
class ForwardProfile {
 public:
  struct Entry {
    std::string op;
    int64_t calls = 0;
    double seconds = 0;
  };
  void Add(const std::string& op, double seconds);
  void AddPass(int64_t tokens, int64_t sequences, double seconds);
  void Clear();
  const std::vector<Entry>& entries() const { return entries_; }
  int64_t passes() const { return passes_; }
  int64_t tokens() const { return tokens_; }
  double pass_seconds() const { return pass_seconds_; }
  // A table: op, calls, total ms, ms per pass, % of the forward time.
  std::string Format() const;

 private:
  std::vector<Entry> entries_;
  int64_t passes_ = 0, tokens_ = 0, sequences_ = 0;
  double pass_seconds_ = 0;
};

struct ModelOptions {
  Precision precision = Precision::kFast;
  // Packs the matrices with this pool (faster start-up); null: the calling thread.
  ThreadPool* pool = nullptr;
  // After a matrix is packed, madvise(MADV_DONTNEED) the whole pages of its
  // source bytes so they leave the resident set. ONLY for views into a
  // read-only file mapping (the pages are re-read from the file if touched
  // again); on heap memory this would zero the data.
  bool release_packed_sources = false;
};

class Model {
 public:
  // Packs the matrices of `weights` (views must stay valid for the Model's
  // lifetime: the token table and the norm gains are read from them).
  static Result<std::unique_ptr<Model>> Create(const ModelConfig& config, const ModelWeights& weights,
                                               const ModelOptions& options = {});

  const ModelConfig& config() const { return config_; }
  Precision precision() const { return precision_; }
  int output_dim() const { return static_cast<int>(config_.output_dim()); }
  size_t packed_bytes() const;  // memory of the repacked matrices
  // Multiply-adds of the transformer layers' matrix products per token (the
  // weights every token meets; the Dense head and attention not included).
  int64_t layer_macs_per_token() const;

  // Grows the scratch arena for batches of up to `max_tokens` tokens in up to
  // `max_sequences` sequences. Forward calls it too; calling it up front
  // makes the first Forward allocation-free. kResourceExhausted if memory runs out.
  Status Reserve(int64_t max_tokens, int64_t max_sequences);

  // token_ids [T] of sequences s = 0..S-1 at [cu_seqlens[s], cu_seqlens[s+1]);
  // each sequence is 1..context_length tokens, positions restart at 0.
  // out [S x output_dim] receives L2-normalised embeddings.
  // Errors (kInvalidArgument / kOutOfRange): malformed cu_seqlens, an empty or
  // too long sequence, a token id outside the vocabulary.
  Status Forward(Ops& ops, std::span<const int32_t> token_ids, std::span<const int32_t> cu_seqlens,
                 float* out, const ForwardObserver& observer = {});

  // Per-op timing of later Forward calls into `profile` (nullptr: off; must
  // outlive the Model or be reset). Costs two clock reads per op when on.
  void set_profile(ForwardProfile* profile) { profile_ = profile; }

 private:
  struct PackedLayer {
    PackedMatrix attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down;
  };
  // The matrix-product groups of a layer: what input forms they read.
  enum Group { kQkv = 0, kAttnOut = 1, kGateUp = 2, kDown = 3, kGroups = 4 };
  struct GroupNeeds {
    bool f32 = false, q8 = false;
  };
  Model(const ModelConfig& config, const ModelWeights& weights) : config_(config), weights_(weights) {}

  ModelConfig config_;
  Precision precision_ = Precision::kFast;
  ModelWeights weights_;  // views: token_embd and norm gains are used from here
  AlignedBuffer weight_arena_;  // storage of every packed matrix
  std::vector<PackedLayer> layers_;
  PackedMatrix dense_2_, dense_3_;  // empty (n == 0) without a Dense head

  GroupNeeds needs_[kGroups];
  std::string op_names_[16];  // profile labels, built once with the shapes

  AlignedBuffer arena_;
  int64_t arena_tokens_ = 0, arena_sequences_ = 0;
  std::vector<int32_t> positions_;
  ForwardProfile* profile_ = nullptr;
};

}  // namespace gembed
