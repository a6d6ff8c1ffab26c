// Batch: a flat batch of token sequences, packed back to back (TEI-style).
// The forward pass takes exactly this: no padding, sequences are separated
// by cu_seqlens and attention never crosses a boundary.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace gembed {

struct Batch {
  std::vector<int32_t> token_ids;     // [n_tokens], all sequences back to back
  std::vector<int32_t> cu_seqlens{0};  // [n_seq + 1]; sequence s is token_ids[cu[s], cu[s+1])

  int num_sequences() const { return static_cast<int>(cu_seqlens.size()) - 1; }
  int num_tokens() const { return static_cast<int>(token_ids.size()); }
  int length(int s) const { return cu_seqlens[s + 1] - cu_seqlens[s]; }

  void Add(std::span<const int32_t> ids) {
    token_ids.insert(token_ids.end(), ids.begin(), ids.end());
    cu_seqlens.push_back(static_cast<int32_t>(token_ids.size()));
  }
  void Clear() {
    token_ids.clear();
    cu_seqlens.assign(1, 0);
  }
};

}  // namespace gembed
