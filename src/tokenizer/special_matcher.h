// SpecialMatcher: finds special / added tokens in raw text (internal).
//
// A byte trie over the token texts (root: direct 256-entry table; other
// nodes: edges sorted by byte) plus a first-byte filter, so text with no
// candidate byte is skipped at memchr-like speed. Gemma3 has 6,414 such
// tokens; they start with '<', '[', '\n', '\t' or a space / U+2581.
//
// Two ways to split a text, one per algorithm:
//   SplitLeftmostLongest   HF `tokenizers` AddedVocabulary (aho-corasick with
//                          MatchKind::LeftmostLongest): scan left to right,
//                          at the first position where some token starts take
//                          the longest one, continue after it.
//   SplitLongestFirst      llama.cpp tokenizer_st_partition: for each token in
//                          order of decreasing length (ties: lower id first),
//                          cut every non-overlapping occurrence (leftmost first)
//                          out of the text that is still unclaimed.
// They differ only when occurrences of different tokens overlap.
//
// SplitLongestFirst first lists every occurrence of every token (usually a
// handful). Runs such as 100k newlines have ~31 nested occurrences per byte;
// past max_matches() it switches to one pass per token length over the
// unclaimed text, which needs O(text) memory and gives the same result.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gembed::tokenizer_internal {

// A piece of the input: a special token (token >= 0) or raw text (token < 0)
// covering text[begin, end).
struct Segment {
  size_t begin;
  size_t end;
  int32_t token;
};

class SpecialMatcher {
 public:
  // (text, id) of every special token; empty texts are ignored.
  void Build(const std::vector<std::pair<std::string_view, int32_t>>& tokens);

  bool empty() const { return n_tokens_ == 0; }

  // Both fill *out (cleared first) with the segments of `text` in order.
  // `scratch_*` are reusable buffers.
  void SplitLeftmostLongest(std::string_view text, std::vector<Segment>* out) const;
  struct Match {
    uint32_t len;
    int32_t token;
    size_t begin;
  };
  void SplitLongestFirst(std::string_view text, std::vector<Segment>* out, std::vector<Match>* scratch_matches,
                         std::vector<Match>* scratch_sorted, std::vector<uint8_t>* scratch_taken) const;

  size_t max_matches() const { return max_matches_; }
  void set_max_matches(size_t n) { max_matches_ = n; }  // tests force the per-length passes with 0

 private:
  struct Node {
    uint32_t first_edge = 0;  // into edge_bytes_ / edge_children_
    uint32_t n_edges = 0;
    int32_t token = -1;       // token ending here
  };
  // Child of `node` on byte `b`, or 0 (the root is never a child).
  uint32_t Child(uint32_t node, uint8_t b) const;
  // Next position >= pos whose byte can start a token, or text.size().
  size_t NextCandidate(std::string_view text, size_t pos) const;
  // SplitLongestFirst by one pass per token length (bounded memory).
  void SplitByLengthPasses(std::string_view text, std::vector<Match>* selected, std::vector<Match>* occurrences,
                           std::vector<uint8_t>* taken) const;

  std::vector<Node> nodes_;
  std::vector<uint8_t> edge_bytes_;
  std::vector<uint32_t> edge_children_;
  uint32_t root_children_[256] = {};
  bool first_byte_[256] = {};
  size_t n_tokens_ = 0;
  std::vector<uint32_t> lengths_desc_;  // distinct token lengths, longest first
  size_t max_matches_ = size_t{1} << 20;
};

}  // namespace gembed::tokenizer_internal
