// The compute seam below the engine: "forward a flat batch". The engine
// (tokenising, the shared queue, packing texts under the token budget,
// Matryoshka truncation) is backend-neutral; a backend only turns a packed
// batch of token sequences into unit-length embeddings. The CPU backend
// (cpu_backend.h) is the one there is; a CUDA backend would be a second
// implementation of this interface, chosen in Engine::Open.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/status.h"

namespace gembed {

class ForwardBackend {
 public:
  virtual ~ForwardBackend() = default;

  // token_ids [T]: sequences back to back; cu_seqlens [S + 1]: sequence s is
  // token_ids[cu[s], cu[s+1]) (1..context_length tokens, ids < n_vocab).
  // out [S x output_dim] receives L2-normalised embeddings (mean pooling and
  // the Dense head applied). Called by one thread at a time.
  virtual Status Forward(std::span<const int32_t> token_ids, std::span<const int32_t> cu_seqlens,
                         float* out) = 0;

  // Sizes scratch memory for passes of up to `max_tokens` tokens in up to
  // `max_sequences` sequences, so later passes do not allocate.
  virtual Status Reserve(int64_t max_tokens, int64_t max_sequences) = 0;

  // A short description for logs and /info, e.g. "cpu avx512vnni x2".
  virtual std::string Describe() const = 0;
};

}  // namespace gembed
