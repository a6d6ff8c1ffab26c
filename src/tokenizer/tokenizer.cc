#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "io/gguf.h"
#include "tokenizer/piece_table.h"
#include "tokenizer/special_matcher.h"
#include "tokenizer/utf8.h"

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

// A candidate merge of symbols (left, right) into token `id`.
struct SpmBigram {
  float score;
  int32_t left;
  int32_t right;
  uint32_t size;  // bytes of left + right when it was queued (stale check)
  int32_t id;
};

// Max-heap order of llama.cpp's llm_bigram_spm::comparator: highest score
// first, ties: leftmost first.
struct SpmBigramLess {
  bool operator()(const SpmBigram& l, const SpmBigram& r) const {
    return l.score < r.score || (l.score == r.score && l.left > r.left);
  }
};

// --- HF BPE (tokenizers/src/models/bpe/word.rs) ---

struct BpeSymbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  uint32_t len;  // bytes; 0 = merged away
  bool frozen;   // a byte of invalid UTF-8: never merges
};

struct BpeCandidate {
  int32_t rank;
  int32_t pos;
  int32_t result;
};

// Max-heap order giving HF's Merge::cmp: lowest rank first, ties: lowest position.
struct BpeCandidateLess {
  bool operator()(const BpeCandidate& a, const BpeCandidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.pos > b.pos);
  }
};

// Per-thread scratch buffers, reused across calls (they only grow).
struct EncodeScratch {
  std::vector<Segment> segments;
  std::vector<SpecialMatcher::Match> matches;
  std::vector<uint8_t> taken;
  std::string text;
  std::string word;
  std::vector<SpmSymbol> spm_symbols;
  std::vector<SpmBigram> spm_heap;
  std::vector<BpeSymbol> bpe_symbols;
  std::vector<BpeCandidate> bpe_heap;
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
  GEMBED_ASSIGN_OR_RETURN(Vocab v, ReadVocabFromHfJson(tokenizer_json_path));
  return FromVocab(std::move(v));
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufFile& gguf) {
  GEMBED_ASSIGN_OR_RETURN(Vocab v, ReadVocabFromGguf(gguf));
  return FromVocab(std::move(v));
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  char magic[4] = {};
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) return IoError("cannot open '{}'", path);
    in.read(magic, 4);
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

  pieces_ = std::make_unique<PieceTable>();
  if (const int32_t dup = pieces_->Build(v.tokens); dup >= 0) {
    return CorruptFile("vocabulary: piece '{}' appears twice (ids {} and {})", v.tokens[dup],
                       pieces_->Find(v.tokens[dup]), dup);
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

  if (v.algorithm == TokenizerAlgorithm::kHfBpe) {
    merges_ = std::make_unique<MergeTable>();
    merges_->Reserve(v.merges.size());
    for (size_t r = 0; r < v.merges.size(); ++r) {
      const BpeMerge& m = v.merges[r];
      if (m.left < 0 || m.left >= n32 || m.right < 0 || m.right >= n32 || m.result < 0 || m.result >= n32) {
        return OutOfRange("vocabulary: merge {} has an id outside the vocabulary", r);
      }
      merges_->Insert(m.left, m.right, MergeTable::Entry{static_cast<int32_t>(r), m.result});
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
    specials_->SplitLongestFirst(text, &segments, &s.matches, &s.taken);
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

// llama.cpp SPM on one raw fragment: escape spaces, split into characters,
// merge the best-scoring adjacent pair that forms a token until none does,
// then emit each symbol (or its bytes).
void Tokenizer::EncodeSpmFragment(std::string_view fragment, bool space_prefix, std::vector<int32_t>* out) const {
  EncodeScratch& s = Scratch();
  std::string& text = s.text;
  text.clear();
  if (space_prefix) text.append(kSpaceMarker);
  tokenizer_internal::AppendReplaced(fragment, " ", kSpaceMarker, &text);

  // Characters.
  std::vector<SpmSymbol>& sym = s.spm_symbols;
  sym.clear();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t pos = 0; pos < n;) {
    const int len = Utf8SequenceLength(p + pos, n - pos);
    const int32_t index = static_cast<int32_t>(sym.size());
    SpmSymbol x;
    x.prev = index - 1;
    x.start = static_cast<uint32_t>(pos);
    x.len = len == 0 ? 1u : static_cast<uint32_t>(len);
    x.id = -2;
    x.frozen = len == 0;
    pos += x.len;
    x.next = pos == n ? -1 : index + 1;
    sym.push_back(x);
  }
  if (sym.empty()) return;

  std::vector<SpmBigram>& heap = s.spm_heap;
  heap.clear();
  const PieceTable& pieces = *pieces_;
  const std::vector<float>& scores = vocab_.scores;
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const SpmSymbol& l = sym[left];
    const SpmSymbol& r = sym[right];
    if (l.frozen || r.frozen) return;
    const std::string_view joined(text.data() + l.start, l.len + r.len);
    const int32_t id = pieces.Find(joined);
    if (id < 0) return;
    heap.push_back(SpmBigram{scores[id], left, right, l.len + r.len, id});
    std::push_heap(heap.begin(), heap.end(), SpmBigramLess());
  };
  for (int32_t i = 1; i < static_cast<int32_t>(sym.size()); ++i) try_add(i - 1, i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), SpmBigramLess());
    const SpmBigram b = heap.back();
    heap.pop_back();
    SpmSymbol& l = sym[b.left];
    SpmSymbol& r = sym[b.right];
    // Skip if either side was merged since this pair was queued.
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.size) continue;
    l.len += r.len;
    l.id = b.id;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  for (int32_t i = 0; i != -1; i = sym[i].next) {
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
  std::vector<BpeSymbol>& sym = s.bpe_symbols;
  sym.clear();
  auto add = [&](int32_t id, uint32_t len, bool frozen) {
    const int32_t index = static_cast<int32_t>(sym.size());
    if (index > 0) sym.back().next = index;
    sym.push_back(BpeSymbol{id, index - 1, -1, len, frozen});
  };

  // Characters -> initial symbols (tokenizers' BPE::merge_word).
  const auto* p = reinterpret_cast<const unsigned char*>(word.data());
  const size_t n = word.size();
  int32_t pending_unk_len = 0;  // fused unk run waiting to be added
  const int32_t unk = vocab_.unk_id;
  auto flush_unk = [&] {
    if (pending_unk_len > 0) {
      add(unk, static_cast<uint32_t>(pending_unk_len), false);
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
        add(id, 1, true);
      } else if (unk >= 0) {
        add(unk, 1, true);
      }
      ++pos;
      continue;
    }
    const uint32_t cp = Utf8Decode(p + pos, len);
    int32_t id = cp < kDenseChars ? char_ids_[cp]
                                  : pieces_->Find(std::string_view(word.data() + pos, static_cast<size_t>(len)));
    if (id >= 0) {
      flush_unk();
      add(id, static_cast<uint32_t>(len), false);
    } else {
      bool done = false;
      if (vocab_.byte_fallback) {
        bool all = true;
        for (int k = 0; k < len; ++k) all = all && byte_ids_[p[pos + k]] >= 0;
        if (all) {
          flush_unk();
          for (int k = 0; k < len; ++k) add(byte_ids_[p[pos + k]], 1, false);
          done = true;
        }
      }
      if (!done && unk >= 0) {
        if (vocab_.fuse_unk) {
          pending_unk_len += len;
        } else {
          flush_unk();
          add(unk, static_cast<uint32_t>(len), false);
        }
      }
    }
    pos += static_cast<size_t>(len);
  }
  flush_unk();
  if (sym.empty()) return;

  // Word::merge_all.
  const MergeTable& merges = *merges_;
  std::vector<BpeCandidate>& heap = s.bpe_heap;
  heap.clear();
  auto push = [&](int32_t pos, int32_t next) {
    if (sym[pos].frozen || sym[next].frozen) return;
    const MergeTable::Entry* e = merges.Find(sym[pos].id, sym[next].id);
    if (e == nullptr) return;
    heap.push_back(BpeCandidate{e->rank, pos, e->result});
    std::push_heap(heap.begin(), heap.end(), BpeCandidateLess());
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(sym.size()); ++i) push(i, i + 1);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), BpeCandidateLess());
    const BpeCandidate top = heap.back();
    heap.pop_back();
    BpeSymbol& cur = sym[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    const int32_t next_pos = cur.next;
    const BpeSymbol right = sym[next_pos];
    if (cur.frozen || right.frozen) continue;
    // Expired entry: the pair at this position no longer makes `result`.
    const MergeTable::Entry* e = merges.Find(cur.id, right.id);
    if (e == nullptr || e->result != top.result) continue;
    cur.id = top.result;
    cur.len += right.len;
    cur.next = right.next;
    sym[next_pos].len = 0;
    if (right.next >= 0) sym[right.next].prev = top.pos;
    if (cur.prev >= 0) push(cur.prev, top.pos);
    if (cur.next >= 0) push(top.pos, cur.next);
  }

  for (int32_t i = 0; i != -1; i = sym[i].next) out->push_back(sym[i].id);
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
