#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cstring>

#include "io/file.h"
#include "io/gguf.h"
#include "tokenizer/piece_table.h"
#include "tokenizer/special_matcher.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab_internal.h"

namespace gembed {

using tokenizer_internal::kSpaceMarker;
using tokenizer_internal::MergeTable;
using tokenizer_internal::PieceTable;
using tokenizer_internal::Segment;
using tokenizer_internal::SpecialMatcher;
using tokenizer_internal::Utf8Decode;
using tokenizer_internal::Utf8SequenceLength;

namespace {

// Code points below this have a dense char -> id table (covers the BMP and
// the CJK extension planes); 768 KiB.
constexpr uint32_t kDenseChars = 0x30000;
// Longest run of raw text handed to one merge loop (see tokenizer.h).
constexpr size_t kMaxFragmentBytes = size_t{1} << 30;
// Inputs larger than this release the thread's scratch buffers afterwards.
constexpr size_t kMaxRetainedScratchBytes = size_t{1} << 20;

// --- SPM (llama.cpp llm_tokenizer_spm_session) ---

// One symbol of the fragment: text[start, start + len). A doubly linked list
// over the symbol array; merged-away symbols have len 0.
struct SpmSymbol {
  int32_t prev;
  int32_t next;
  uint32_t start;
  uint32_t len;
  int32_t id;      // token id of the symbol's text, -2 = not looked up yet, -1 = none
  bool frozen;     // a byte of invalid UTF-8: never merges
};

// Maps a float to an unsigned key with the same order (-0 == +0); NaNs get
// some fixed place, so a NaN score cannot break the heap.
inline uint32_t OrderedFloatBits(float f) {
  f += 0.0f;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// A candidate merge of symbol `left` with its right neighbour into token `id`.
// The heap is a max-heap on `key`, which packs llama.cpp's
// llm_bigram_spm::comparator: highest score first, ties: leftmost first.
struct SpmBigram {
  uint64_t key;   // OrderedFloatBits(score) << 32 | (0xFFFFFFFF - left)
  uint32_t size;  // bytes of left + right when queued (stale check)
  int32_t id;
  int32_t left() const { return static_cast<int32_t>(0xFFFFFFFFu - static_cast<uint32_t>(key)); }
};
struct SpmBigramLess {
  bool operator()(const SpmBigram& a, const SpmBigram& b) const { return a.key < b.key; }
};

// --- HF BPE (tokenizers/src/models/bpe/word.rs) ---

struct BpeSymbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  uint32_t len;  // bytes; 0 = merged away
  bool frozen;   // a byte of invalid UTF-8: never merges
};

// Max-heap on `key`, which packs HF's Merge::cmp: lowest rank first, ties:
// lowest position.
struct BpeCandidate {
  uint64_t key;   // (0xFFFFFFFF - rank) << 32 | (0xFFFFFFFF - pos)
  uint32_t size;  // bytes of the pair when queued (stale check, see EncodeBpeWord)
  int32_t rank() const { return static_cast<int32_t>(0xFFFFFFFFu - static_cast<uint32_t>(key >> 32)); }
  int32_t pos() const { return static_cast<int32_t>(0xFFFFFFFFu - static_cast<uint32_t>(key)); }
};
struct BpeCandidateLess {
  bool operator()(const BpeCandidate& a, const BpeCandidate& b) const { return a.key < b.key; }
};

// Per-thread scratch buffers, reused across calls (they only grow).
struct EncodeScratch {
  std::vector<Segment> segments;
  std::vector<SpecialMatcher::Match> matches;
  std::vector<SpecialMatcher::Match> sorted_matches;
  std::vector<uint8_t> taken;
  std::string text;
  std::string word;
  std::vector<SpmSymbol> spm_symbols;
  std::vector<SpmBigram> spm_heap;
  std::vector<SpmBigram> spm_initial;
  std::vector<uint32_t> word_starts;
  std::vector<int32_t> unit_first;
  std::vector<uint64_t> hashes;
  std::vector<BpeSymbol> bpe_symbols;
  std::vector<BpeCandidate> bpe_heap;
  std::vector<BpeCandidate> bpe_initial;
};

EncodeScratch& Scratch() {
  thread_local EncodeScratch scratch;
  return scratch;
}

// Largest prefix length <= limit of `s` that does not split a UTF-8 sequence.
size_t CutAtCharBoundary(std::string_view s, size_t limit) {
  size_t cut = std::min(limit, s.size());
  // Step back over continuation bytes (at most 3) so the cut starts a new character.
  for (int k = 0; k < 3 && cut > 0 && cut < s.size() && (static_cast<uint8_t>(s[cut]) & 0xC0) == 0x80; ++k) --cut;
  return cut == 0 ? std::min(limit, s.size()) : cut;
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromVocab(Vocab vocab) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->vocab_ = std::move(vocab);
  GEMBED_RETURN_IF_ERROR(t->Build());
  return t;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromHfJson(const std::string& tokenizer_json_path) {
  std::unique_ptr<PieceTable> table;
  GEMBED_ASSIGN_OR_RETURN(Vocab v, tokenizer_internal::ReadVocabFromHfJson(tokenizer_json_path, &table));
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->vocab_ = std::move(v);
  t->pieces_ = std::move(table);  // already built over vocab_.tokens
  GEMBED_RETURN_IF_ERROR(t->Build());
  return t;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufFile& gguf) {
  GEMBED_ASSIGN_OR_RETURN(Vocab v, ReadVocabFromGguf(gguf));
  return FromVocab(std::move(v));
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  char magic[4] = {};
  {
    // io/file.h: only a regular file; a FIFO is refused instead of blocking.
    GEMBED_ASSIGN_OR_RETURN(RegularFile in, RegularFile::Open(path));
    GEMBED_RETURN_IF_ERROR(in.Read(magic, 4, path).status());
  }
  if (std::memcmp(magic, "GGUF", 4) == 0) {
    GEMBED_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> gguf, GgufFile::Open(path));
    Result<std::unique_ptr<Tokenizer>> t = FromGguf(*gguf);
    if (!t.ok()) return t.status().WithContext(path);
    return t;
  }
  return FromHfJson(path);
}

Status Tokenizer::Build() {
  Vocab& v = vocab_;
  const size_t n = v.tokens.size();
  if (n == 0) return InvalidArgument("vocabulary is empty");
  if (n > (size_t{1} << 26)) return OutOfRange("vocabulary of {} tokens is too large", n);
  if (v.scores.size() != n || v.types.size() != n) {
    return InvalidArgument("vocabulary: tokens ({}), scores ({}) and types ({}) differ in length", n,
                           v.scores.size(), v.types.size());
  }
  size_t total_bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    if (v.tokens[i].empty()) return InvalidArgument("vocabulary: token {} is empty", i);
    total_bytes += v.tokens[i].size();
    const int32_t t = static_cast<int32_t>(v.types[i]);
    if (t < 0 || t > 6) return InvalidArgument("vocabulary: token {} has type {} (not 0..6)", i, t);
  }
  if (total_bytes >= UINT32_MAX) return OutOfRange("vocabulary pieces are too large ({} bytes)", total_bytes);
  const int32_t n32 = static_cast<int32_t>(n);
  for (const auto& [name, id] : {std::pair<const char*, int32_t>{"bos", v.bos_id}, {"eos", v.eos_id},
                                 {"unk", v.unk_id}, {"pad", v.pad_id}}) {
    if (id < -1 || id >= n32) return OutOfRange("vocabulary: {} id {} is outside 0..{}", name, id, n32 - 1);
  }
  if (v.add_bos && v.bos_id < 0) return InvalidArgument("vocabulary adds BOS but has no BOS id");
  if (v.add_eos && v.eos_id < 0) return InvalidArgument("vocabulary adds EOS but has no EOS id");
  if (v.model_vocab_size < 0 || v.model_vocab_size > n32) {
    return InvalidArgument("vocabulary: model_vocab_size {} is outside 0..{}", v.model_vocab_size, n32);
  }

  if (!pieces_ || pieces_->size() != n32) {
    pieces_ = std::make_unique<PieceTable>();
    if (const int32_t dup = pieces_->Build(v.tokens); dup >= 0) {
      return CorruptFile("vocabulary: piece '{}' appears twice (ids {} and {})", v.tokens[dup],
                         pieces_->Find(v.tokens[dup]), dup);
    }
  }

  // Special tokens: what both algorithms cut out before merging.
  std::vector<std::pair<std::string_view, int32_t>> specials;
  for (int32_t id = 0; id < n32; ++id) {
    const TokenType t = v.types[id];
    if (t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown) {
      specials.emplace_back(v.tokens[id], id);
    }
  }
  specials_ = std::make_unique<SpecialMatcher>();
  specials_->Build(specials);

  // Byte fallback ids: "<0xAB>" pieces (llama.cpp byte_to_token; HF byte_fallback).
  for (int b = 0; b < 256; ++b) {
    byte_ids_[b] = pieces_->Find(tokenizer_internal::ByteTokenText(static_cast<uint8_t>(b)));
    if (byte_ids_[b] < 0 && v.algorithm == TokenizerAlgorithm::kLlamaSpm) {
      // llama.cpp falls back to the single-byte piece itself.
      const char c = static_cast<char>(b);
      byte_ids_[b] = pieces_->Find(std::string_view(&c, 1));
    }
  }

  // Dense single-character table.
  char_ids_.assign(kDenseChars, -1);
  for (int32_t id = 0; id < n32; ++id) {
    const std::string& p = v.tokens[id];
    if (p.size() > 4) continue;
    const auto* s = reinterpret_cast<const unsigned char*>(p.data());
    const int len = Utf8SequenceLength(s, p.size());
    if (len == 0 || static_cast<size_t>(len) != p.size()) continue;
    const uint32_t cp = Utf8Decode(s, len);
    if (cp < kDenseChars && char_ids_[cp] < 0) char_ids_[cp] = id;
  }

  // Tokens with U+2581 past their first byte: the only ones a merge can form
  // across a U+2581 that starts a word (see WordStarts).
  cross_pieces_.clear();
  for (auto& list : cross_by_prev_byte_) list.clear();
  for (int32_t id = 0; id < n32; ++id) {
    const std::string& p = v.tokens[id];
    for (size_t k = p.find(kSpaceMarker, 1); k != std::string::npos; k = p.find(kSpaceMarker, k + 1)) {
      cross_by_prev_byte_[static_cast<uint8_t>(p[k - 1])].push_back(static_cast<uint32_t>(cross_pieces_.size()));
      cross_pieces_.push_back(CrossPiece{p, static_cast<uint32_t>(k)});
    }
  }
  // Many such tokens would make the check slow: merge whole fragments then.
  // HF: a U+2581 that is not a vocab character could join a fused <unk> run
  // across the cut, so only cut when it is one.
  split_words_ = cross_pieces_.size() <= 256 &&
                 (v.algorithm == TokenizerAlgorithm::kLlamaSpm || pieces_->Find(kSpaceMarker) >= 0);

  if (v.algorithm == TokenizerAlgorithm::kHfBpe) {
    if (n32 >= MergeTable::kMaxIds || static_cast<int64_t>(v.merges.size()) >= MergeTable::kMaxRanks) {
      return Unsupported("BPE vocabulary too large ({} tokens, {} merges; at most {} and {})", n32, v.merges.size(),
                         MergeTable::kMaxIds - 1, MergeTable::kMaxRanks - 1);
    }
    merges_ = std::make_unique<MergeTable>();
    merges_->Reserve(v.merges.size());
    merge_results_.resize(v.merges.size());
    constexpr size_t kAhead = 16;  // slot loads in flight (random stores into MiBs)
    for (size_t r = 0; r < v.merges.size(); ++r) {
      if (r + kAhead < v.merges.size()) merges_->Prefetch(v.merges[r + kAhead].left, v.merges[r + kAhead].right);
      const BpeMerge& m = v.merges[r];
      if (m.left < 0 || m.left >= n32 || m.right < 0 || m.right >= n32 || m.result < 0 || m.result >= n32) {
        return OutOfRange("vocabulary: merge {} has an id outside the vocabulary", r);
      }
      merges_->Insert(m.left, m.right, static_cast<int32_t>(r));
      merge_results_[r] = m.result;
    }
    for (const TextReplacement& rep : v.normalizer) {
      if (rep.pattern.empty()) return InvalidArgument("vocabulary: normalizer replacement with an empty pattern");
    }
  } else if (v.algorithm != TokenizerAlgorithm::kLlamaSpm) {
    return InvalidArgument("vocabulary: unknown algorithm {}", static_cast<int>(v.algorithm));
  }
  return Status::Ok();
}

std::string_view Tokenizer::TokenText(int32_t id) const {
  if (id < 0 || id >= vocab_.size()) return {};
  return vocab_.tokens[id];
}

int32_t Tokenizer::PieceToId(std::string_view piece) const { return pieces_->Find(piece); }

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_bos, bool add_eos) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  EncodeAppend(text, add_bos, add_eos, &out);
  return out;
}

void Tokenizer::EncodeAppend(std::string_view text, bool add_bos, bool add_eos, std::vector<int32_t>* out) const {
  EncodeScratch& s = Scratch();
  if (add_bos && vocab_.bos_id >= 0) out->push_back(vocab_.bos_id);

  // 1. Special / added tokens are cut out of the raw text first.
  std::vector<Segment>& segments = s.segments;
  if (vocab_.algorithm == TokenizerAlgorithm::kLlamaSpm) {
    specials_->SplitLongestFirst(text, &segments, &s.matches, &s.sorted_matches, &s.taken);
  } else {
    specials_->SplitLeftmostLongest(text, &segments);
  }

  // 2. Each raw fragment goes through the merge loop. `segments` is not
  // touched below (the fragment encoders use other scratch buffers).
  bool prev_special = true;  // llama.cpp: a space prefix goes at the start and after specials
  for (const Segment& seg : segments) {
    if (seg.token >= 0) {
      out->push_back(seg.token);
      prev_special = true;
      continue;
    }
    std::string_view fragment = text.substr(seg.begin, seg.end - seg.begin);
    bool first_piece = true;
    while (!fragment.empty()) {
      const size_t cut = fragment.size() > kMaxFragmentBytes ? CutAtCharBoundary(fragment, kMaxFragmentBytes)
                                                             : fragment.size();
      const std::string_view piece = fragment.substr(0, cut);
      if (vocab_.algorithm == TokenizerAlgorithm::kLlamaSpm) {
        EncodeSpmFragment(piece, first_piece && prev_special && vocab_.add_space_prefix, out);
      } else {
        EncodeBpeFragment(piece, out);
      }
      fragment.remove_prefix(cut);
      first_piece = false;
    }
    prev_special = false;
  }

  if (add_eos && vocab_.eos_id >= 0) out->push_back(vocab_.eos_id);
  // Do not keep a huge input's buffers alive in this thread.
  if (text.size() > kMaxRetainedScratchBytes) s = EncodeScratch();
}

void Tokenizer::AppendByteFallback(const char* bytes, size_t n, std::vector<int32_t>* out) const {
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(bytes[i])];
    if (id >= 0) {
      out->push_back(id);
    } else if (vocab_.unk_id >= 0) {
      out->push_back(vocab_.unk_id);
    }
  }
}

// Byte offsets in `text` where an independent merge unit starts (always 0).
// Every merge creates a token, and a token can only span a position p where
// U+2581 starts if some token has U+2581 at an offset k > 0 and matches the
// text at p - k. Cutting the text at all other such positions gives the same
// tokens as merging it whole (merges in different units never interact, and
// within a unit the heap order is unchanged), with much smaller heaps.
void Tokenizer::WordStarts(std::string_view text, std::vector<uint32_t>* starts) const {
  starts->assign(1, 0);
  if (!split_words_) return;
  size_t p = text.find(kSpaceMarker, 1);
  while (p != std::string_view::npos) {
    bool crosses = false;
    for (const uint32_t idx : cross_by_prev_byte_[static_cast<uint8_t>(text[p - 1])]) {
      const CrossPiece& c = cross_pieces_[idx];
      if (p >= c.marker && p - c.marker + c.text.size() <= text.size() &&
          std::memcmp(text.data() + p - c.marker, c.text.data(), c.text.size()) == 0) {
        crosses = true;
        break;
      }
    }
    if (!crosses) starts->push_back(static_cast<uint32_t>(p));
    p = text.find(kSpaceMarker, p + 1);
  }
}

// llama.cpp SPM on one raw fragment: escape spaces, split into characters,
// merge the best-scoring adjacent pair that forms a token until none does,
// then emit each symbol (or its bytes).
void Tokenizer::EncodeSpmFragment(std::string_view fragment, bool space_prefix, std::vector<int32_t>* out) const {
  EncodeScratch& s = Scratch();
  std::string& text = s.text;
  text.clear();
  if (space_prefix) text.append(kSpaceMarker);
  tokenizer_internal::AppendReplaced(fragment, " ", kSpaceMarker, &text);
  if (text.empty()) return;
  WordStarts(text, &s.word_starts);

  // Characters. Each unit is its own linked list (prev/next -1 at its ends);
  // unit_first[k] is the first symbol of unit k (plus an end sentinel).
  std::vector<SpmSymbol>& sym = s.spm_symbols;
  std::vector<int32_t>& unit_first = s.unit_first;
  sym.clear();
  unit_first.clear();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t next_start = 0;  // index into word_starts
  for (size_t pos = 0; pos < n;) {
    const int len = Utf8SequenceLength(p + pos, n - pos);
    const int32_t index = static_cast<int32_t>(sym.size());
    bool new_unit = false;
    while (next_start < s.word_starts.size() && s.word_starts[next_start] <= pos) {
      new_unit = true;
      ++next_start;
    }
    if (new_unit) {
      unit_first.push_back(index);
      if (index > 0) sym.back().next = -1;
    }
    SpmSymbol x;
    x.prev = new_unit ? -1 : index - 1;
    x.next = index + 1;
    x.start = static_cast<uint32_t>(pos);
    x.len = len == 0 ? 1u : static_cast<uint32_t>(len);
    x.id = -2;
    x.frozen = len == 0;
    pos += x.len;
    sym.push_back(x);
  }
  sym.back().next = -1;
  unit_first.push_back(static_cast<int32_t>(sym.size()));

  const PieceTable& pieces = *pieces_;
  const std::vector<float>& scores = vocab_.scores;
  std::vector<SpmBigram>& heap = s.spm_heap;
  auto pair_view = [&](int32_t left, int32_t right) {
    return std::string_view(text.data() + sym[left].start, sym[left].len + sym[right].len);
  };
  auto hash_pair = [&](int32_t left, int32_t right) {
    const std::string_view v = pair_view(left, right);
    return tokenizer_internal::HashBytes(v.data(), v.size());
  };
  auto mergeable = [&](int32_t left, int32_t right) {
    return left >= 0 && right >= 0 && !sym[left].frozen && !sym[right].frozen;
  };
  // Appends (left, right) to *v if their concatenation (hash h) is a token.
  auto candidate = [&](int32_t left, int32_t right, uint64_t h, std::vector<SpmBigram>* v) -> bool {
    const int32_t id = pieces.FindHashed(pair_view(left, right), h);
    if (id < 0) return false;
    const uint64_t key = (static_cast<uint64_t>(OrderedFloatBits(scores[id])) << 32) |
                         (0xFFFFFFFFu - static_cast<uint32_t>(left));
    v->push_back(SpmBigram{key, sym[left].len + sym[right].len, id});
    return true;
  };

  // Initial pairs of the whole fragment, in order of their left symbol: hash
  // them all, then look them up with the loads of the next kAhead in flight.
  constexpr size_t kAhead = 8;
  std::vector<uint64_t>& hashes = s.hashes;
  std::vector<SpmBigram>& initial = s.spm_initial;
  initial.clear();
  const size_t n_sym = sym.size();
  hashes.resize(n_sym);
  for (size_t i = 0; i + 1 < n_sym; ++i) {
    const int32_t l = static_cast<int32_t>(i);
    hashes[i] = mergeable(l, sym[i].next) ? hash_pair(l, l + 1) : 0;
    if (i < kAhead && hashes[i] != 0) pieces.Prefetch(hashes[i]);
  }
  for (size_t i = 0; i + 1 < n_sym; ++i) {
    if (i + kAhead + 1 < n_sym && hashes[i + kAhead] != 0) pieces.Prefetch(hashes[i + kAhead]);
    const int32_t l = static_cast<int32_t>(i);
    if (mergeable(l, sym[i].next)) candidate(l, l + 1, hashes[i], &initial);
  }

  // Merge each unit, then emit its symbols.
  size_t next_initial = 0;
  for (size_t k = 0; k + 1 < unit_first.size(); ++k) {
    const int32_t first = unit_first[k], end = unit_first[k + 1];
    heap.clear();
    while (next_initial < initial.size() && initial[next_initial].left() < end) {
      heap.push_back(initial[next_initial++]);
    }
    std::make_heap(heap.begin(), heap.end(), SpmBigramLess());
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), SpmBigramLess());
      const SpmBigram b = heap.back();
      heap.pop_back();
      const int32_t left = b.left();
      SpmSymbol& l = sym[left];
      // Skip if either side was merged since this pair was queued: a symbol
      // only changes by absorbing its right neighbour, so the pair is intact
      // exactly when its byte size is unchanged (llama.cpp checks the same).
      if (l.len == 0 || l.next < 0) continue;
      SpmSymbol& r = sym[l.next];
      if (r.len == 0 || l.len + r.len != b.size) continue;
      l.len += r.len;
      l.id = b.id;
      r.len = 0;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = left;
      // The two new pairs: both lookups in flight before either is resolved.
      const bool use_prev = mergeable(l.prev, left);
      const bool use_next = mergeable(left, l.next);
      const uint64_t h_prev = use_prev ? hash_pair(l.prev, left) : 0;
      const uint64_t h_next = use_next ? hash_pair(left, l.next) : 0;
      if (use_prev) pieces.Prefetch(h_prev);
      if (use_next) pieces.Prefetch(h_next);
      if (use_prev && candidate(l.prev, left, h_prev, &heap)) {
        std::push_heap(heap.begin(), heap.end(), SpmBigramLess());
      }
      if (use_next && candidate(left, l.next, h_next, &heap)) {
        std::push_heap(heap.begin(), heap.end(), SpmBigramLess());
      }
    }
    for (int32_t i = first; i != -1; i = sym[i].next) {
      SpmSymbol& x = sym[i];
      if (x.id == -2) {
        x.id = x.frozen ? -1 : pieces.Find(std::string_view(text.data() + x.start, x.len));
      }
      if (x.id >= 0) {
        out->push_back(x.id);
      } else {
        AppendByteFallback(text.data() + x.start, x.len, out);
      }
    }
  }
}

// HF: normalizer, then the Split pre-tokenizer, then BPE on each word.
void Tokenizer::EncodeBpeFragment(std::string_view fragment, std::vector<int32_t>* out) const {
  EncodeScratch& s = Scratch();
  std::string& text = s.text;
  text.assign(fragment);
  for (const TextReplacement& rep : vocab_.normalizer) {
    if (text.find(rep.pattern) == std::string::npos) continue;
    std::string& tmp = s.word;
    tmp.clear();
    tokenizer_internal::AppendReplaced(text, rep.pattern, rep.content, &tmp);
    text.swap(tmp);
  }
  const std::string& pat = vocab_.split_pattern;
  if (pat.empty()) {
    EncodeBpeWord(text, out);
    return;
  }
  // Split(pattern, MergedWithPrevious): each word ends with one occurrence.
  // (EncodeBpeWord does not touch s.text.)
  size_t begin = 0;
  while (begin < text.size()) {
    const size_t hit = text.find(pat, begin);
    const size_t end = hit == std::string::npos ? text.size() : hit + pat.size();
    EncodeBpeWord(std::string_view(text).substr(begin, end - begin), out);
    begin = end;
  }
}

void Tokenizer::EncodeBpeWord(std::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (vocab_.ignore_merges) {
    const int32_t id = pieces_->Find(word);
    if (id >= 0 && id < (vocab_.model_vocab_size > 0 ? vocab_.model_vocab_size : vocab_.size())) {
      out->push_back(id);
      return;
    }
  }
  EncodeScratch& s = Scratch();
  WordStarts(word, &s.word_starts);

  // Characters -> initial symbols (tokenizers' BPE::merge_word). As in
  // EncodeSpmFragment, each merge unit is its own linked list.
  std::vector<BpeSymbol>& sym = s.bpe_symbols;
  std::vector<int32_t>& unit_first = s.unit_first;
  sym.clear();
  unit_first.clear();
  size_t next_start = 0;
  auto add = [&](int32_t id, uint32_t len, bool frozen, size_t byte_pos) {
    const int32_t index = static_cast<int32_t>(sym.size());
    bool new_unit = false;
    while (next_start < s.word_starts.size() && s.word_starts[next_start] <= byte_pos) {
      new_unit = true;
      ++next_start;
    }
    if (new_unit) unit_first.push_back(index);
    if (index > 0 && !new_unit) sym.back().next = index;
    sym.push_back(BpeSymbol{id, new_unit ? -1 : index - 1, -1, len, frozen});
  };
  const auto* p = reinterpret_cast<const unsigned char*>(word.data());
  const size_t n = word.size();
  int32_t pending_unk_len = 0;  // fused unk run waiting to be added
  size_t pending_unk_pos = 0;
  const int32_t unk = vocab_.unk_id;
  auto flush_unk = [&] {
    if (pending_unk_len > 0) {
      add(unk, static_cast<uint32_t>(pending_unk_len), false, pending_unk_pos);
      pending_unk_len = 0;
    }
  };
  for (size_t pos = 0; pos < n;) {
    const int len = Utf8SequenceLength(p + pos, n - pos);
    if (len == 0) {
      // Invalid UTF-8 byte: its byte token, frozen (see tokenizer.h).
      flush_unk();
      const int32_t id = byte_ids_[p[pos]];
      if (id >= 0) {
        add(id, 1, true, pos);
      } else if (unk >= 0) {
        add(unk, 1, true, pos);
      }
      ++pos;
      continue;
    }
    const uint32_t cp = Utf8Decode(p + pos, len);
    int32_t id = cp < kDenseChars ? char_ids_[cp]
                                  : pieces_->Find(std::string_view(word.data() + pos, static_cast<size_t>(len)));
    if (id >= 0) {
      flush_unk();
      add(id, static_cast<uint32_t>(len), false, pos);
    } else {
      bool done = false;
      if (vocab_.byte_fallback) {
        bool all = true;
        for (int k = 0; k < len; ++k) all = all && byte_ids_[p[pos + k]] >= 0;
        if (all) {
          flush_unk();
          for (int k = 0; k < len; ++k) add(byte_ids_[p[pos + k]], 1, false, pos + static_cast<size_t>(k));
          done = true;
        }
      }
      if (!done && unk >= 0) {
        if (vocab_.fuse_unk) {
          if (pending_unk_len == 0) pending_unk_pos = pos;
          pending_unk_len += len;
        } else {
          flush_unk();
          add(unk, static_cast<uint32_t>(len), false, pos);
        }
      }
    }
    pos += static_cast<size_t>(len);
  }
  flush_unk();
  if (sym.empty()) return;
  unit_first.push_back(static_cast<int32_t>(sym.size()));

  // Word::merge_all per unit: repeatedly merge the pair of lowest rank (ties: leftmost).
  const MergeTable& merges = *merges_;
  std::vector<BpeCandidate>& heap = s.bpe_heap;
  auto candidate = [&](int32_t pos, int32_t next) -> bool {
    const BpeSymbol& l = sym[pos];
    const BpeSymbol& r = sym[next];
    if (l.frozen || r.frozen) return false;
    const int32_t rank = merges.Find(l.id, r.id);
    if (rank < 0) return false;
    const uint64_t key = (static_cast<uint64_t>(0xFFFFFFFFu - static_cast<uint32_t>(rank)) << 32) |
                         (0xFFFFFFFFu - static_cast<uint32_t>(pos));
    heap.push_back(BpeCandidate{key, l.len + r.len});
    return true;
  };
  // Initial pairs of the whole word, with the table loads of the next
  // kAhead pairs in flight; they are in position order, so each unit's
  // candidates are a contiguous run.
  constexpr int32_t kAhead = 8;
  const int32_t n_sym = static_cast<int32_t>(sym.size());
  for (int32_t i = 0; i + 1 < n_sym && i < kAhead; ++i) merges.Prefetch(sym[i].id, sym[i + 1].id);
  std::vector<BpeCandidate>& initial = s.bpe_initial;
  initial.clear();
  for (int32_t i = 0; i + 1 < n_sym; ++i) {
    if (i + kAhead + 1 < n_sym) merges.Prefetch(sym[i + kAhead].id, sym[i + kAhead + 1].id);
    if (sym[i].next == i + 1 && candidate(i, i + 1)) {
      initial.push_back(heap.back());
      heap.pop_back();
    }
  }
  size_t next_initial = 0;
  for (size_t k = 0; k + 1 < unit_first.size(); ++k) {
    const int32_t first = unit_first[k], end = unit_first[k + 1];
    heap.clear();
    while (next_initial < initial.size() && initial[next_initial].pos() < end) heap.push_back(initial[next_initial++]);
    std::make_heap(heap.begin(), heap.end(), BpeCandidateLess());
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), BpeCandidateLess());
      const BpeCandidate top = heap.back();
      heap.pop_back();
      const int32_t top_pos = top.pos();
      BpeSymbol& cur = sym[top_pos];
      if (cur.len == 0 || cur.next == -1) continue;
      const int32_t next_pos = cur.next;
      const BpeSymbol right = sym[next_pos];
      // Expired entry. HF re-looks the pair up and skips if it no longer makes
      // the queued result; a symbol only changes by absorbing its right
      // neighbour, so that happens exactly when the pair's byte span grew (ids
      // name distinct strings), which the size comparison detects without a lookup.
      if (cur.len + right.len != top.size) continue;
      cur.id = merge_results_[top.rank()];
      cur.len += right.len;
      cur.next = right.next;
      sym[next_pos].len = 0;
      if (right.next >= 0) sym[right.next].prev = top_pos;
      if (cur.prev >= 0 && candidate(cur.prev, top_pos)) {
        std::push_heap(heap.begin(), heap.end(), BpeCandidateLess());
      }
      if (cur.next >= 0 && candidate(top_pos, cur.next)) {
        std::push_heap(heap.begin(), heap.end(), BpeCandidateLess());
      }
    }
    for (int32_t i = first; i != -1; i = sym[i].next) out->push_back(sym[i].id);
  }
}

Result<std::string> Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  const bool hf = vocab_.algorithm == TokenizerAlgorithm::kHfBpe;
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_.size()) {
      return OutOfRange("token id {} is outside the vocabulary (0..{})", id, vocab_.size() - 1);
    }
    const TokenType type = vocab_.types[id];
    if (skip_special && (type == TokenType::kControl || type == TokenType::kUnknown)) continue;
    const std::string& piece = vocab_.tokens[id];
    if (type == TokenType::kByte) {
      const int b = tokenizer_internal::ParseByteTokenText(piece);
      if (b >= 0) {
        out.push_back(static_cast<char>(b));
        continue;
      }
    }
    if (hf) {
      // HF decoder chain: Replace(U+2581 -> ' ') on every token.
      tokenizer_internal::AppendReplaced(piece, kSpaceMarker, " ", &out);
      continue;
    }
    switch (type) {
      case TokenType::kNormal:
        tokenizer_internal::AppendReplaced(piece, kSpaceMarker, " ", &out);
        break;
      case TokenType::kControl:
      case TokenType::kUnknown:
      case TokenType::kUserDefined:
      case TokenType::kByte:  // malformed byte piece: its text
        out.append(piece);
        break;
      default:  // UNUSED, UNDEFINED: llama.cpp renders nothing
        break;
    }
  }
  return out;
}

}  // namespace gembed
