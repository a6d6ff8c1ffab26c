// Vocab: the data of a Gemma3-style SentencePiece-BPE vocabulary, as loaded
// from a GGUF file (`tokenizer.ggml.*` keys, llama.cpp's layout) or from a
// Hugging Face tokenizer.json, plus the GGUF writer for those keys.
//
// A Vocab is plain data; Tokenizer::FromVocab validates it and builds the
// lookup structures. Which encoding algorithm runs is part of the data
// (`algorithm`), because the two sources define different algorithms:
//
//   kLlamaSpm  (GGUF)            llama.cpp's SPM tokenizer: CONTROL / USER_DEFINED /
//                                UNKNOWN tokens are cut out of the raw text first
//                                (longest token text first), ' ' -> U+2581, then the
//                                adjacent pair whose concatenation is a token with the
//                                highest *score* is merged until none is left, then
//                                byte fallback.
//   kHfBpe     (tokenizer.json)  Hugging Face `tokenizers` BPE: added tokens are cut out
//                                of the raw text (leftmost-longest), the normalizer
//                                replaces ' ' -> U+2581, then the adjacent pair with the
//                                lowest merge *rank* is merged (only pairs listed in
//                                `merges`), byte fallback per character not in the vocab.
//
// Token types are llama.cpp's / gguf-py's `TokenType` values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace gembed {

class GgufFile;
class GgufWriter;

enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

enum class TokenizerAlgorithm : int32_t {
  kLlamaSpm = 0,  // GGUF vocabularies (tokenizer.ggml.model = "llama")
  kHfBpe = 1,     // Hugging Face tokenizer.json with a BPE model
};

// One entry of a BPE merge list: tokens[left] + tokens[right] == tokens[result].
struct BpeMerge {
  int32_t left = 0;
  int32_t right = 0;
  int32_t result = 0;
};

// A text replacement of the HF normalizer (pattern -> content), applied in order.
struct TextReplacement {
  std::string pattern;
  std::string content;
};

struct Vocab {
  TokenizerAlgorithm algorithm = TokenizerAlgorithm::kLlamaSpm;

  // Indexed by token id; all three have the same length.
  //   tokens: the piece text as the source stores it. GGUF: USER_DEFINED pieces
  //           hold ASCII spaces (the converter pre-normalises U+2581 -> ' ');
  //           tokenizer.json: they hold U+2581 ("▁▁" for two spaces).
  //   scores: SPM merge priority (higher merges first). GGUF: as stored;
  //           tokenizer.json: derived like the synthetic model does (see
  //           ReadVocabFromHfJson).
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<TokenType> types;

  // Special ids; -1 = not set.
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  int32_t pad_id = -1;

  // What "add special tokens" means for this vocabulary.
  bool add_bos = false;
  bool add_eos = false;
  // SPM only: prepend ' ' to each text fragment that follows a special token
  // or starts the text (llama.cpp's add_space_prefix; false for Gemma3).
  bool add_space_prefix = false;

  // --- kHfBpe only ---
  // Merge list in rank order (rank = index). If a pair is listed twice the
  // later rank wins, as in HF (HashMap insert).
  std::vector<BpeMerge> merges;
  // Normalizer: replacements applied to each text fragment between added tokens.
  std::vector<TextReplacement> normalizer;
  // Pre-tokenizer Split(pattern, MergedWithPrevious): the normalised fragment
  // is cut after every occurrence of the pattern; empty = no pre-tokenizer.
  std::string split_pattern;
  bool byte_fallback = true;
  bool fuse_unk = true;
  bool ignore_merges = false;
  // Ids below this are the BPE model's own vocabulary; added tokens may lie
  // beyond it (Gemma3: <image_soft_token> = 262144). 0 = all of `tokens`.
  int32_t model_vocab_size = 0;

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
};

// The llama.cpp converter's rule (convert_hf_to_gguf.py
// `does_token_look_special`): added tokens that should be CONTROL even when
// tokenizer_config marks them as not special: <pad>, <mask>, <2mass>,
// [@BOS@], <|...|>, <｜...｜> and <unused...>.
bool TokenLooksSpecial(std::string_view text);

// Reads a Hugging Face tokenizer.json (and `tokenizer_config.json` in the same
// folder, if present). Supported: model BPE (no dropout, no subword prefix /
// suffix), normalizer null | Replace(String) | Sequence of those,
// pre_tokenizer null | Split(String, MergedWithPrevious, invert=false) |
// Sequence of those, post_processor null | TemplateProcessing; added tokens
// with lstrip/rstrip/single_word/normalized all false. Anything else is
// kUnsupported; malformed JSON is kCorruptFile with the byte offset.
//
// Derived fields (what llama.cpp's converter would produce from the same files):
//   types:  added tokens: CONTROL if `special` or TokenLooksSpecial(content),
//           else USER_DEFINED; model pieces "<0xXX>": BYTE; others NORMAL.
//   scores: CONTROL / USER_DEFINED -1000, BYTE 0, NORMAL -(id - first NORMAL id)
//           (i.e. -(id - 494) for Gemma3: descending with id, which agrees with
//           the merge ranks; the real SentencePiece scores are not in tokenizer.json).
//   bos_id: the special token before $A in the post-processor template, else "<bos>";
//   eos_id: the special token after $A in the template, else "<eos>" (not
//           tokenizer_config's eos_token: Gemma3's chat config says
//           <end_of_turn>, which is not what an embedding model appends);
//   unk_id: model.unk_token; pad_id: "<pad>".
//   add_bos / add_eos: from the template (special token before / after $A);
//           tokenizer_config.json's add_bos_token / add_eos_token override them
//           when present (as transformers does).
Result<Vocab> ReadVocabFromHfJson(const std::string& tokenizer_json_path);
// Same, from bytes in memory (no tokenizer_config.json).
Result<Vocab> ParseHfTokenizerJson(std::string_view json);

// Reads the tokenizer.ggml.* keys (llama.cpp semantics, see tokenizer.h for
// what is stricter). Only tokenizer.ggml.model == "llama" is supported.
Result<Vocab> ReadVocabFromGguf(const GgufFile& gguf);

struct GgufVocabOptions {
  // EmbeddingGemma's GGUFs append both (MODEL-SPEC §2).
  bool add_bos = true;
  bool add_eos = true;
};

// Writes the vocabulary keys exactly as llama.cpp's converter does for
// EmbeddingGemma (MODEL-SPEC §2, §6.2):
//   tokenizer.ggml.model = "llama", tokenizer.ggml.pre = "default",
//   tokenizer.ggml.tokens (string[]; USER_DEFINED pieces with every U+2581
//   replaced by ' ', as the converter's "pre-normalize user-defined spaces"),
//   tokenizer.ggml.scores (f32[]), tokenizer.ggml.token_type (i32[]),
//   tokenizer.ggml.{bos,eos,unknown,padding}_token_id (u32, when set),
//   tokenizer.ggml.add_bos_token / add_eos_token (bool, from `options`),
//   tokenizer.ggml.add_sep_token = false, tokenizer.ggml.add_space_prefix = false.
// Only ids < model_vocab_size are written (the converter drops added tokens
// beyond the model's vocab_size, e.g. Gemma3's <image_soft_token> = 262144).
// For Gemma3 this gives 262,144 tokens: 6251 CONTROL, 163 USER_DEFINED, 256 BYTE.
Status WriteGgufVocab(const Vocab& vocab, GgufWriter* writer, const GgufVocabOptions& options = {});

}  // namespace gembed
