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
#include <span>
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

class Model {
 public:
  // Packs the matrices of `weights` (views must stay valid for the Model's
  // lifetime: the token table and the norm gains are read from them).
  static Result<std::unique_ptr<Model>> Create(const ModelConfig& config, const ModelWeights& weights);

  const ModelConfig& config() const { return config_; }
  int output_dim() const { return static_cast<int>(config_.output_dim()); }
  size_t packed_bytes() const;  // memory of the repacked matrices

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

 private:
  struct PackedLayer {
    PackedMatrix attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down;
  };
  Model(const ModelConfig& config, const ModelWeights& weights) : config_(config), weights_(weights) {}

  ModelConfig config_;
  ModelWeights weights_;  // views: token_embd and norm gains are used from here
  std::vector<PackedLayer> layers_;
  PackedMatrix dense_2_, dense_3_;  // empty (n == 0) without a Dense head

  AlignedBuffer arena_;
  int64_t arena_tokens_ = 0, arena_sequences_ = 0;
  std::vector<int32_t> positions_;
};

}  // namespace gembed
