#include "tokenizer/special_matcher.h"

#include <algorithm>
#include <cstddef>

namespace gembed::tokenizer_internal {

void SpecialMatcher::Build(const std::vector<std::pair<std::string_view, int32_t>>& tokens) {
  // Build a pointer-free trie with per-node child lists first, then flatten
  // the lists into sorted edge arrays.
  std::vector<std::vector<std::pair<uint8_t, uint32_t>>> children(1);
  std::vector<int32_t> terminal(1, -1);
  n_tokens_ = 0;
  lengths_desc_.clear();
  for (const auto& [text, id] : tokens) {
    if (text.empty()) continue;
    uint32_t node = 0;
    for (const char ch : text) {
      const uint8_t b = static_cast<uint8_t>(ch);
      uint32_t next = 0;
      for (const auto& [eb, child] : children[node]) {
        if (eb == b) {
          next = child;
          break;
        }
      }
      if (next == 0) {
        next = static_cast<uint32_t>(children.size());
        children[node].emplace_back(b, next);
        children.emplace_back();
        terminal.push_back(-1);
      }
      node = next;
    }
    // Keep the lowest id if two tokens share a text (Vocab validation rejects that anyway).
    if (terminal[node] < 0 || id < terminal[node]) terminal[node] = id;
    ++n_tokens_;
    lengths_desc_.push_back(static_cast<uint32_t>(text.size()));
  }

  std::sort(lengths_desc_.begin(), lengths_desc_.end(), std::greater<>());
  lengths_desc_.erase(std::unique(lengths_desc_.begin(), lengths_desc_.end()), lengths_desc_.end());
  nodes_.assign(children.size(), Node{});
  edge_bytes_.clear();
  edge_children_.clear();
  std::fill(std::begin(root_children_), std::end(root_children_), 0u);
  std::fill(std::begin(first_byte_), std::end(first_byte_), false);
  for (size_t n = 0; n < children.size(); ++n) {
    auto& list = children[n];
    std::sort(list.begin(), list.end());
    nodes_[n].first_edge = static_cast<uint32_t>(edge_bytes_.size());
    nodes_[n].n_edges = static_cast<uint32_t>(list.size());
    nodes_[n].token = terminal[n];
    for (const auto& [b, child] : list) {
      edge_bytes_.push_back(b);
      edge_children_.push_back(child);
      if (n == 0) {
        root_children_[b] = child;
        first_byte_[b] = true;
      }
    }
  }
}

uint32_t SpecialMatcher::Child(uint32_t node, uint8_t b) const {
  const Node& nd = nodes_[node];
  const uint8_t* first = edge_bytes_.data() + nd.first_edge;
  const uint8_t* last = first + nd.n_edges;
  if (nd.n_edges <= 8) {
    for (const uint8_t* p = first; p != last; ++p) {
      if (*p == b) return edge_children_[p - edge_bytes_.data()];
    }
    return 0;
  }
  const uint8_t* p = std::lower_bound(first, last, b);
  if (p == last || *p != b) return 0;
  return edge_children_[p - edge_bytes_.data()];
}

size_t SpecialMatcher::NextCandidate(std::string_view text, size_t pos) const {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  while (pos < n && !first_byte_[p[pos]]) ++pos;
  return pos;
}

void SpecialMatcher::SplitLeftmostLongest(std::string_view text, std::vector<Segment>* out) const {
  out->clear();
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t raw_begin = 0;
  size_t pos = 0;
  if (n_tokens_ > 0) {
    while ((pos = NextCandidate(text, pos)) < n) {
      // Walk the trie from pos; remember the longest token passed.
      uint32_t node = root_children_[p[pos]];
      size_t i = pos + 1;
      size_t best_len = 0;
      int32_t best_token = -1;
      while (node != 0) {
        if (nodes_[node].token >= 0) {
          best_len = i - pos;
          best_token = nodes_[node].token;
        }
        if (i == n) break;
        node = Child(node, p[i]);
        ++i;
      }
      if (best_token < 0) {
        ++pos;
        continue;
      }
      if (pos > raw_begin) out->push_back(Segment{raw_begin, pos, -1});
      out->push_back(Segment{pos, pos + best_len, best_token});
      pos += best_len;
      raw_begin = pos;
    }
  }
  if (raw_begin < n) out->push_back(Segment{raw_begin, n, -1});
}

void SpecialMatcher::SplitLongestFirst(std::string_view text, std::vector<Segment>* out,
                                       std::vector<Match>* matches, std::vector<Match>* sorted,
                                       std::vector<uint8_t>* taken) const {
  out->clear();
  matches->clear();
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  bool too_many = false;
  if (n_tokens_ > 0) {
    // Every occurrence of every token, ordered by start, then by length.
    size_t pos = 0;
    while (!too_many && (pos = NextCandidate(text, pos)) < n) {
      uint32_t node = root_children_[p[pos]];
      size_t i = pos + 1;
      while (node != 0) {
        if (nodes_[node].token >= 0) {
          matches->push_back(Match{static_cast<uint32_t>(i - pos), nodes_[node].token, pos});
        }
        if (i == n) break;
        node = Child(node, p[i]);
        ++i;
      }
      too_many = matches->size() > max_matches_;
      ++pos;
    }
  }

  if (too_many) {
    SplitByLengthPasses(text, matches, sorted, taken);
  } else {
    // If no two occurrences overlap, every one of them is cut out whatever
    // the order; otherwise replay llama.cpp's order: longest token first
    // (ties: lower id), leftmost occurrence first, skipping claimed text.
    bool overlap = false;
    size_t max_end = 0;
    for (const Match& m : *matches) {
      if (m.begin < max_end) {
        overlap = true;
        break;
      }
      max_end = std::max(max_end, m.begin + m.len);
    }
    if (overlap) {
      // Order: length descending (counting sort, stable so start order is
      // kept), then token id within a length.
      uint32_t max_len = 0;
      for (const Match& m : *matches) max_len = std::max(max_len, m.len);
      std::vector<size_t> start(static_cast<size_t>(max_len) + 2, 0);
      for (const Match& m : *matches) ++start[max_len - m.len + 1];
      for (size_t k = 1; k < start.size(); ++k) start[k] += start[k - 1];
      sorted->resize(matches->size());
      {
        std::vector<size_t> fill(start.begin(), start.end() - 1);
        for (const Match& m : *matches) (*sorted)[fill[max_len - m.len]++] = m;
      }
      for (size_t k = 0; k + 1 < start.size(); ++k) {
        auto first = sorted->begin() + static_cast<std::ptrdiff_t>(start[k]);
        auto last = sorted->begin() + static_cast<std::ptrdiff_t>(start[k + 1]);
        // Token order only matters where two different tokens of this length
        // overlap; the bucket is in start order, so checking neighbours suffices.
        bool conflict = false;
        for (auto it = first; it + 1 < last && !conflict; ++it) {
          conflict = it[1].token != it[0].token && it[1].begin < it[0].begin + it[0].len;
        }
        if (conflict) {
          std::stable_sort(first, last, [](const Match& a, const Match& b) { return a.token < b.token; });
        }
      }
      // Greedy: keep a match if none of its text is claimed. Every kept match
      // is at least as long as the current one, so an overlap always covers
      // one of the current match's two ends.
      taken->assign(n, 0);
      matches->clear();
      for (const Match& m : *sorted) {
        if ((*taken)[m.begin] || (*taken)[m.begin + m.len - 1]) continue;
        std::fill(taken->begin() + static_cast<std::ptrdiff_t>(m.begin),
                  taken->begin() + static_cast<std::ptrdiff_t>(m.begin + m.len), uint8_t{1});
        matches->push_back(m);
      }
      std::sort(matches->begin(), matches->end(), [](const Match& a, const Match& b) { return a.begin < b.begin; });
    }
  }

  size_t raw_begin = 0;
  for (const Match& m : *matches) {
    if (m.begin > raw_begin) out->push_back(Segment{raw_begin, m.begin, -1});
    out->push_back(Segment{m.begin, m.begin + m.len, m.token});
    raw_begin = m.begin + m.len;
  }
  if (raw_begin < n) out->push_back(Segment{raw_begin, n, -1});
}

void SpecialMatcher::SplitByLengthPasses(std::string_view text, std::vector<Match>* selected,
                                         std::vector<Match>* occurrences, std::vector<uint8_t>* taken) const {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  selected->clear();
  taken->assign(n, 0);
  // Calls fn(token, start) for each occurrence of a length-`len` token in text
  // not claimed by an earlier (longer) pass, in start order; at most one per
  // start (one trie path per prefix). fn returns false to stop.
  auto scan = [&](uint32_t len, auto&& fn) {
    for (size_t pos = 0; pos + len <= n; ++pos) {
      if ((*taken)[pos] || !first_byte_[p[pos]]) continue;
      uint32_t node = root_children_[p[pos]];
      for (uint32_t depth = 1; node != 0 && depth < len; ++depth) {
        node = (*taken)[pos + depth] ? 0 : Child(node, p[pos + depth]);
      }
      if (node != 0 && nodes_[node].token >= 0 && !fn(nodes_[node].token, pos)) return;
    }
  };
  for (const uint32_t len : lengths_desc_) {
    if (len > n) continue;
    // Leftmost-first, non-overlapping. If a different token overlaps one
    // already kept, llama.cpp's per-token order matters: redo this length by
    // collecting its occurrences and ordering them by token id.
    const size_t mark = selected->size();
    bool conflict = false;
    size_t last_end = 0;
    int32_t last_token = -1;
    scan(len, [&](int32_t token, size_t pos) {
      if (last_token >= 0 && pos < last_end) {
        if (token != last_token) {
          conflict = true;
          return false;
        }
        return true;
      }
      selected->push_back(Match{len, token, pos});
      last_end = pos + len;
      last_token = token;
      return true;
    });
    if (conflict) {
      selected->resize(mark);
      occurrences->clear();
      scan(len, [&](int32_t token, size_t pos) {
        occurrences->push_back(Match{len, token, pos});
        return true;
      });
      std::stable_sort(occurrences->begin(), occurrences->end(),
                       [](const Match& a, const Match& b) { return a.token < b.token; });
      // Claimed text is from longer or equal-length tokens, so an overlap
      // always covers one of this occurrence's ends.
      for (const Match& m : *occurrences) {
        if ((*taken)[m.begin] || (*taken)[m.begin + m.len - 1]) continue;
        std::fill(taken->begin() + static_cast<std::ptrdiff_t>(m.begin),
                  taken->begin() + static_cast<std::ptrdiff_t>(m.begin + m.len), uint8_t{1});
        selected->push_back(m);
      }
    }
    for (size_t k = mark; k < selected->size(); ++k) {
      const Match& m = (*selected)[k];
      std::fill(taken->begin() + static_cast<std::ptrdiff_t>(m.begin),
                taken->begin() + static_cast<std::ptrdiff_t>(m.begin + m.len), uint8_t{1});
    }
  }
  std::sort(selected->begin(), selected->end(), [](const Match& a, const Match& b) { return a.begin < b.begin; });
}

}  // namespace gembed::tokenizer_internal
