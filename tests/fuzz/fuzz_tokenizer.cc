// libFuzzer target for the tokenizer.
//
// Input: byte 0 picks the mode, the rest is the payload.
//   mode 0..2  encode the payload with a small in-memory vocabulary (SPM, HF
//              BPE, or SPM with a space prefix), with BOS/EOS per bits of byte 0,
//              then decode, and check:
//                * every id is inside the vocabulary;
//                * encoding is deterministic;
//                * Decode succeeds, and when the payload holds no control-token
//                  text and no U+2581 (which decodes to ' '), and no space
//                  prefix is added, Decode(Encode(x), skip_special) == x byte for byte.
//   mode 3     parse the payload as a tokenizer.json; if it loads, encode a
//              fixed text with it and check ids are in range.
// Any crash, sanitizer report or failed check (abort) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace {

using gembed::BpeMerge;
using gembed::Tokenizer;
using gembed::TokenizerAlgorithm;
using gembed::TokenType;
using gembed::Vocab;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_tokenizer: check failed: %s\n", what);
    std::abort();
  }
}

// CONTROL token texts: Decode(skip_special) drops them, so inputs holding one
// cannot round-trip. (User-defined tokens decode to their own text.)
const char* const kControlTexts[] = {"<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>"};

Vocab BuildVocab(TokenizerAlgorithm algo, bool space_prefix) {
  Vocab v;
  v.algorithm = algo;
  auto add = [&](std::string t, TokenType type) {
    v.tokens.push_back(std::move(t));
    v.types.push_back(type);
    const float score = type == TokenType::kNormal ? -static_cast<float>(v.tokens.size()) : (type == TokenType::kByte ? 0.0f : -1000.0f);
    v.scores.push_back(score);
    return static_cast<int32_t>(v.tokens.size() - 1);
  };
  for (const char* t : {"<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>"}) add(t, TokenType::kControl);
  for (const char* t : {"\n", "\n\n", "<b>", "[multimodal]"}) add(t, TokenType::kUserDefined);
  // Space runs: GGUF form (ASCII) for SPM, tokenizer.json form (U+2581) for HF.
  add(algo == TokenizerAlgorithm::kLlamaSpm ? "  " : "\xE2\x96\x81\xE2\x96\x81", TokenType::kUserDefined);
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    add(buf, TokenType::kByte);
  }
  const char* normal[] = {"\xE2\x96\x81", "a", "b", "c", "<", ">", "\xC3\xA9", "\xE6\x97\xA5"};
  for (const char* t : normal) add(t, TokenType::kNormal);
  // Merged pieces, each with its merge (HF) and a score (SPM).
  auto id_of = [&](std::string_view s) -> int32_t {
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      if (v.tokens[i] == s) return static_cast<int32_t>(i);
    }
    return -1;
  };
  const std::pair<const char*, const char*> merges[] = {
      {"a", "b"}, {"b", "a"}, {"ab", "a"}, {"\xE2\x96\x81", "a"}, {"\xE2\x96\x81" "a", "b"},
      {"<", "b"}, {"c", "c"}, {"cc", "cc"}, {"\xC3\xA9", "\xC3\xA9"}, {"\xE2\x96\x81", "\xE2\x96\x81"},
  };
  for (const auto& [l, r] : merges) {
    const std::string joined = std::string(l) + r;
    int32_t res = id_of(joined);
    if (res < 0) res = add(joined, TokenType::kNormal);
    v.merges.push_back(BpeMerge{id_of(l), id_of(r), res});
  }
  v.pad_id = 0;
  v.eos_id = 1;
  v.bos_id = 2;
  v.unk_id = 3;
  v.add_bos = true;
  v.add_eos = true;
  v.add_space_prefix = space_prefix;
  if (algo == TokenizerAlgorithm::kHfBpe) {
    v.normalizer.push_back({" ", "\xE2\x96\x81"});
    v.split_pattern = " ";
  }
  v.model_vocab_size = v.size();
  return v;
}

const Tokenizer& Get(int mode) {
  static std::unique_ptr<Tokenizer> tokenizers[3];
  if (!tokenizers[mode]) {
    const TokenizerAlgorithm algo = mode == 1 ? TokenizerAlgorithm::kHfBpe : TokenizerAlgorithm::kLlamaSpm;
    auto t = Tokenizer::FromVocab(BuildVocab(algo, mode == 2));
    Check(t.ok(), "building the fuzz vocabulary");
    tokenizers[mode] = std::move(t).value();
  }
  return *tokenizers[mode];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t control = data[0];
  const std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);
  const int mode = control & 3;

  if (mode == 3) {
    auto vocab = gembed::ParseHfTokenizerJson(payload);
    if (!vocab.ok()) return 0;
    auto t = Tokenizer::FromVocab(std::move(vocab).value());
    if (!t.ok()) return 0;
    for (int32_t id : (*t)->Encode("Hello  world <bos>\n\xC3\xA9\xFF", true, true)) {
      Check(id >= 0 && id < (*t)->vocab_size(), "id in range (parsed vocab)");
    }
    return 0;
  }

  const Tokenizer& tok = Get(mode);
  const bool add_bos = (control & 4) != 0;
  const bool add_eos = (control & 8) != 0;
  const std::vector<int32_t> ids = tok.Encode(payload, add_bos, add_eos);
  for (int32_t id : ids) Check(id >= 0 && id < tok.vocab_size(), "id in range");
  Check(tok.Encode(payload, add_bos, add_eos) == ids, "deterministic");
  if (add_bos) Check(!ids.empty() && ids.front() == tok.bos_id(), "BOS first");
  if (add_eos) Check(!ids.empty() && ids.back() == tok.eos_id(), "EOS last");

  auto decoded = tok.Decode(ids, /*skip_special=*/true);
  Check(decoded.ok(), "decode ok");
  bool plain = payload.find("\xE2\x96\x81") == std::string_view::npos;
  for (const char* s : kControlTexts) plain = plain && payload.find(s) == std::string_view::npos;
  // Mode 2 adds a space prefix, which Decode keeps.
  if (plain && mode != 2) Check(*decoded == payload, "decode(encode(x)) == x");
  return 0;
}
