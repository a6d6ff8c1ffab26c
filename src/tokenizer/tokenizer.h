// Tokenizer: Gemma3's SentencePiece-BPE tokenizer, driven either by a GGUF
// vocabulary (llama.cpp semantics) or by a Hugging Face tokenizer.json (HF
// `tokenizers` semantics). See vocab.h for the two algorithms.
//
// Behaviour on any input (both algorithms):
//   * No normalisation beyond ' ' -> U+2581: no NFKC, no lower-casing, no
//     space prefix (Gemma3). NUL bytes, control characters, CR, tabs and
//     newlines are ordinary characters (tabs/newline runs are tokens).
//   * Special / added tokens are recognised anywhere in the text (llama.cpp
//     `parse_special = true`, as its embedding tool and server use; HF always),
//     so "<start_of_turn>" or "<bos>" inside an input becomes that one id.
//   * Invalid UTF-8: every byte that does not start a well-formed UTF-8
//     sequence (Unicode table 3-7: no overlongs, surrogates or > U+10FFFF) is
//     its own symbol that never merges and becomes its byte token <0xXX>, so
//     Decode() gives back the exact input bytes. (llama.cpp would instead glue
//     the following bytes to a broken lead byte; HF cannot take such input.)
//   * A byte with no <0xXX> token becomes unk_id (dropped if there is none).
//   * A fragment of more than 2^30 bytes between two special tokens is cut at
//     a character boundary every 2^30 bytes (merges never span the cut).
//
// GGUF loading follows llama.cpp's llama_vocab::load, except that it is
// stricter where llama.cpp warns and continues: duplicate pieces, a special id
// out of range, token_type values outside 0..6, and scores/token_type arrays
// whose length differs from tokens are errors. Missing optional keys take
// llama.cpp's SPM defaults (bos 1, eos 2, unk 0 when in range; add_bos true,
// add_eos false, add_space_prefix true; scores 0; types NORMAL). Among
// special tokens of equal length the partition tries lower ids first
// (llama.cpp's order there is unspecified; no two Gemma3 tokens can conflict).
//
// GGUF vs tokenizer.json on the same Gemma3 vocabulary: identical ids except
// for (1) text containing a literal U+2581 (HF matches its added tokens
// "▁▁".."▁"x31 on raw text; the GGUF stores them as ASCII spaces) and (2) the
// text "<image_soft_token>" (HF added token 262144, which the converter drops
// from GGUFs). tests/python/test_tokenizer_parity.py checks this on 6,000
// strings. Note the tokenizer.json side therefore has vocab_size() 262,145:
// callers feeding a 262,144-row embedding table must range-check ids.
//
// Speed: pieces are found through an open-addressing hash table (Bloom filter
// in front), merge candidates live in a binary heap over a linked list of
// symbols, texts are merged word by word (cut at U+2581 where no token spans
// it), special tokens are found with a byte trie behind a first-byte filter.
//
// Threading: a Tokenizer is immutable after construction; Encode / Decode are
// const and thread-safe (scratch buffers are thread_local and reused, so the
// hot loop does not allocate per token once they have grown; inputs over
// 1 MiB release them afterwards).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tokenizer/vocab.h"

namespace gembed {

class GgufFile;

namespace tokenizer_internal {
class PieceTable;
class SpecialMatcher;
class MergeTable;
}  // namespace tokenizer_internal

class Tokenizer {
 public:
  // tokenizer.json (+ tokenizer_config.json next to it, if present).
  static Result<std::unique_ptr<Tokenizer>> FromHfJson(const std::string& tokenizer_json_path);
  // The tokenizer.ggml.* keys of an opened GGUF (the GgufFile may be closed afterwards).
  static Result<std::unique_ptr<Tokenizer>> FromGguf(const GgufFile& gguf);
  // A GGUF file (by its "GGUF" magic) or else a tokenizer.json.
  static Result<std::unique_ptr<Tokenizer>> FromFile(const std::string& path);
  // Validates `vocab` and builds the lookup tables.
  static Result<std::unique_ptr<Tokenizer>> FromVocab(Vocab vocab);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of `text`. BOS is prepended when `add_bos` (and bos_id() >= 0),
  // EOS appended when `add_eos` (and eos_id() >= 0). Empty text gives [], [bos],
  // [bos, eos]. The embedding engine forces both for EmbeddingGemma.
  std::vector<int32_t> Encode(std::string_view text, bool add_bos, bool add_eos) const;
  // Same, appending to *out (lets batch callers reuse one vector).
  void EncodeAppend(std::string_view text, bool add_bos, bool add_eos, std::vector<int32_t>* out) const;
  // Encode with this vocabulary's own add_bos() / add_eos().
  std::vector<int32_t> EncodeWithSpecial(std::string_view text) const {
    return Encode(text, add_bos(), add_eos());
  }

  // Text of `ids`. Byte tokens give their raw byte (so the result may be
  // invalid UTF-8 if the ids are); U+2581 becomes ' ' (HF: in every token, as
  // its Replace decoder; SPM: in NORMAL tokens, as llama.cpp's token_to_piece).
  // Other tokens give their text; SPM UNUSED / UNDEFINED tokens give nothing.
  // `skip_special` drops CONTROL and UNKNOWN tokens. Ids out of range: kOutOfRange.
  Result<std::string> Decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // Text of one id as stored in the vocabulary ("" if out of range).
  std::string_view TokenText(int32_t id) const;
  // Id of a piece given in its stored form, or -1.
  int32_t PieceToId(std::string_view piece) const;

  int32_t vocab_size() const { return vocab_.size(); }
  int32_t bos_id() const { return vocab_.bos_id; }
  int32_t eos_id() const { return vocab_.eos_id; }
  int32_t unk_id() const { return vocab_.unk_id; }
  int32_t pad_id() const { return vocab_.pad_id; }
  bool add_bos() const { return vocab_.add_bos; }
  bool add_eos() const { return vocab_.add_eos; }
  TokenizerAlgorithm algorithm() const { return vocab_.algorithm; }
  const Vocab& vocab() const { return vocab_; }

 private:
  Tokenizer();
  Status Build();

  void EncodeSpmFragment(std::string_view fragment, bool space_prefix, std::vector<int32_t>* out) const;
  void EncodeBpeFragment(std::string_view fragment, std::vector<int32_t>* out) const;
  void EncodeBpeWord(std::string_view word, std::vector<int32_t>* out) const;
  void AppendByteFallback(const char* bytes, size_t n, std::vector<int32_t>* out) const;
  void WordStarts(std::string_view text, std::vector<uint32_t>* starts) const;

  Vocab vocab_;
  std::unique_ptr<tokenizer_internal::PieceTable> pieces_;
  std::unique_ptr<tokenizer_internal::SpecialMatcher> specials_;
  std::unique_ptr<tokenizer_internal::MergeTable> merges_;  // kHfBpe only: (left, right) -> rank
  std::vector<int32_t> merge_results_;                       // kHfBpe only: rank -> result id
  int32_t byte_ids_[256];
  // Dense code point -> id of single-character pieces (-1: not a piece), for
  // code points below kDenseChars; others go through the hash table.
  std::vector<int32_t> char_ids_;
  // Word cutting (see WordStarts in tokenizer.cc): tokens holding U+2581 at
  // byte offset `marker` > 0, indexed by the byte before that U+2581.
  struct CrossPiece {
    std::string text;
    uint32_t marker;
  };
  std::vector<CrossPiece> cross_pieces_;
  std::vector<uint32_t> cross_by_prev_byte_[256];
  bool split_words_ = false;
};

}  // namespace gembed
