// Special-token partition vs straightforward reference implementations:
//   llama.cpp tokenizer_st_partition: for each token, longest first (ties:
//   lower id), cut every leftmost non-overlapping occurrence out of the raw
//   fragments that are left;
//   HF AddedVocabulary (leftmost-longest): at the first position where any
//   token starts, take the longest, continue after it.
// Both references are written here naively (O(tokens x text)) on purpose.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "tokenizer/special_matcher.h"

namespace gembed::tokenizer_internal {
namespace {

struct Piece {
  size_t begin, end;
  int32_t token;
  bool operator==(const Piece& o) const { return begin == o.begin && end == o.end && token == o.token; }
};

std::vector<Piece> FromSegments(const std::vector<Segment>& segs) {
  std::vector<Piece> out;
  for (const Segment& s : segs) out.push_back(Piece{s.begin, s.end, s.token < 0 ? -1 : s.token});
  return out;
}

std::vector<Piece> LlamaReference(const std::string& text, const std::vector<std::string>& tokens) {
  std::vector<int32_t> order(tokens.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return tokens[a].size() > tokens[b].size(); });
  std::vector<Piece> frags;
  if (!text.empty()) frags.push_back(Piece{0, text.size(), -1});
  for (const int32_t id : order) {
    const std::string& t = tokens[id];
    std::vector<Piece> next;
    for (const Piece& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t b = f.begin;
      while (true) {
        const size_t hit = std::string_view(text).substr(0, f.end).find(t, b);
        if (hit == std::string::npos) break;
        if (hit > b) next.push_back(Piece{b, hit, -1});
        next.push_back(Piece{hit, hit + t.size(), id});
        b = hit + t.size();
      }
      if (b < f.end) next.push_back(Piece{b, f.end, -1});
    }
    frags = std::move(next);
  }
  return frags;
}

std::vector<Piece> HfReference(const std::string& text, const std::vector<std::string>& tokens) {
  std::vector<Piece> out;
  size_t raw = 0, pos = 0;
  while (pos < text.size()) {
    int32_t best = -1;
    for (size_t id = 0; id < tokens.size(); ++id) {
      if (text.compare(pos, tokens[id].size(), tokens[id]) == 0 &&
          (best < 0 || tokens[id].size() > tokens[best].size())) {
        best = static_cast<int32_t>(id);
      }
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    if (pos > raw) out.push_back(Piece{raw, pos, -1});
    out.push_back(Piece{pos, pos + tokens[best].size(), best});
    pos += tokens[best].size();
    raw = pos;
  }
  if (raw < text.size()) out.push_back(Piece{raw, text.size(), -1});
  return out;
}

TEST(SpecialMatcher, MatchesReferencesOnRandomText) {
  // Nested runs, same-length tokens that overlap each other, tokens that
  // contain others: every kind of conflict the two orders resolve differently.
  const std::vector<std::string> tokens = {"\n", "\n\n", "\n\n\n", "aa", "ab", "ba", "aba", "bab",
                                           "<b>", "<b", "b>", "abab", "\n<b>\n", "a\n"};
  std::vector<std::pair<std::string_view, int32_t>> list;
  for (size_t i = 0; i < tokens.size(); ++i) list.emplace_back(tokens[i], static_cast<int32_t>(i));
  SpecialMatcher m;
  m.Build(list);
  SpecialMatcher passes;
  passes.Build(list);
  passes.set_max_matches(0);  // always the per-length passes

  std::mt19937 rng(12345);
  const char alphabet[] = {'a', 'b', '\n', '<', '>', 'x'};
  std::vector<Segment> segs;
  std::vector<SpecialMatcher::Match> s1, s2;
  std::vector<uint8_t> taken;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string text;
    const int len = static_cast<int>(rng() % 64);
    for (int i = 0; i < len; ++i) text.push_back(alphabet[rng() % sizeof(alphabet)]);

    const auto want_llama = LlamaReference(text, tokens);
    m.SplitLongestFirst(text, &segs, &s1, &s2, &taken);
    ASSERT_EQ(FromSegments(segs), want_llama) << "text: " << text;
    passes.SplitLongestFirst(text, &segs, &s1, &s2, &taken);
    ASSERT_EQ(FromSegments(segs), want_llama) << "passes, text: " << text;

    m.SplitLeftmostLongest(text, &segs);
    ASSERT_EQ(FromSegments(segs), HfReference(text, tokens)) << "text: " << text;
  }
}

TEST(SpecialMatcher, LongRunsUseBoundedWork) {
  // 200k newlines with tokens "\n" x 1..31: ~6M nested occurrences. Past
  // max_matches the per-length passes take over; the result is 31-runs and a
  // remainder, as llama.cpp's longest-first order gives.
  std::vector<std::string> tokens;
  for (int k = 1; k <= 31; ++k) tokens.push_back(std::string(static_cast<size_t>(k), '\n'));
  std::vector<std::pair<std::string_view, int32_t>> list;
  for (size_t i = 0; i < tokens.size(); ++i) list.emplace_back(tokens[i], static_cast<int32_t>(i));
  SpecialMatcher m;
  m.Build(list);
  const std::string text = "x" + std::string(200000, '\n') + "y";
  std::vector<Segment> segs;
  std::vector<SpecialMatcher::Match> s1, s2;
  std::vector<uint8_t> taken;
  m.SplitLongestFirst(text, &segs, &s1, &s2, &taken);
  ASSERT_EQ(segs.size(), 1 + 200000 / 31 + 1 + 1);  // "x", the 31-runs, the remainder, "y"
  EXPECT_EQ(segs.front().token, -1);
  EXPECT_EQ(segs.back().token, -1);
  for (size_t i = 1; i + 2 < segs.size(); ++i) EXPECT_EQ(segs[i].token, 30);  // 31 newlines
  EXPECT_EQ(segs[segs.size() - 2].token, static_cast<int32_t>(200000 % 31) - 1);
  EXPECT_LE(s1.capacity(), m.max_matches() * 2);  // the occurrence list stopped growing at the limit
}

}  // namespace
}  // namespace gembed::tokenizer_internal
