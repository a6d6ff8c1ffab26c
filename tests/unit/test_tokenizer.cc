// Tokenizer unit tests on small hand-built vocabularies. Every expected id
// list below was derived by hand from the algorithm's definition (llama.cpp
// SPM or HF BPE), not produced by running this code.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "io/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace gembed {
namespace {

using Ids = std::vector<int32_t>;

std::string HexByte(int b) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
  return buf;
}

// ---------------------------------------------------------------------------
// A small SPM (GGUF-style) vocabulary.
//   0..4   CONTROL       <pad> <eos> <bos> <unk> <start_of_turn>
//   5..8   USER_DEFINED  "\n"  "\n\n"  "  " (two ASCII spaces, GGUF form)  "<b>"
//   9..264 BYTE          <0x00>..<0xFF>   (id = 9 + byte)
//   265..  NORMAL        score = -(id - 265)
// ---------------------------------------------------------------------------
constexpr int kByte0 = 9;
enum : int32_t {
  kSp = 265, kA, kB, kH, kE, kL, kO, kLL, kHE, kHELL, kHELLO, kSpHELLO, kAA, kLt, kS, kGt, kSpB,
};

Vocab SmallSpmVocab() {
  Vocab v;
  v.algorithm = TokenizerAlgorithm::kLlamaSpm;
  auto add = [&](std::string t, TokenType type, float score) {
    v.tokens.push_back(std::move(t));
    v.types.push_back(type);
    v.scores.push_back(score);
  };
  for (const char* t : {"<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>"}) add(t, TokenType::kControl, -1000);
  for (const char* t : {"\n", "\n\n", "  ", "<b>"}) add(t, TokenType::kUserDefined, -1000);
  for (int b = 0; b < 256; ++b) add(HexByte(b), TokenType::kByte, 0);
  const char* normal[] = {"\xE2\x96\x81", "a", "b", "h", "e", "l", "o", "ll", "he", "hell", "hello",
                          "\xE2\x96\x81hello", "aa", "<", "s", ">", "\xE2\x96\x81" "b"};
  for (const char* t : normal) add(t, TokenType::kNormal, -static_cast<float>(v.tokens.size() - 265));
  v.pad_id = 0;
  v.eos_id = 1;
  v.bos_id = 2;
  v.unk_id = 3;
  v.add_bos = true;
  v.add_eos = true;
  v.model_vocab_size = v.size();
  return v;
}

std::unique_ptr<Tokenizer> MakeTokenizer(Vocab v) {
  auto t = Tokenizer::FromVocab(std::move(v));
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(t).value() : nullptr;
}

TEST(TokenizerSpm, MergesByScore) {
  auto t = MakeTokenizer(SmallSpmVocab());
  ASSERT_TRUE(t);
  // h e l l o: "ll" (score -7) before "he" (-8), then "hell" (-9), "hello" (-10).
  EXPECT_EQ(t->Encode("hello", false, false), (Ids{kHELLO}));
  // ' ' -> U+2581, then "▁" + "hello" -> "▁hello".
  EXPECT_EQ(t->Encode(" hello", false, false), (Ids{kSpHELLO}));
  EXPECT_EQ(t->Encode("hello hello", false, false), (Ids{kHELLO, kSpHELLO}));
  // Ties go to the leftmost pair.
  EXPECT_EQ(t->Encode("aaa", false, false), (Ids{kAA, kA}));
  EXPECT_EQ(t->Encode("aaaa", false, false), (Ids{kAA, kAA}));
  // "he" + "l" is not a token: stays apart when "ll" is not available.
  EXPECT_EQ(t->Encode("hel", false, false), (Ids{kHE, kL}));
}

TEST(TokenizerSpm, EmptyAndSpecialFlags) {
  auto t = MakeTokenizer(SmallSpmVocab());
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Encode("", false, false), Ids{});
  EXPECT_EQ(t->Encode("", true, false), Ids{2});
  EXPECT_EQ(t->Encode("", true, true), (Ids{2, 1}));
  EXPECT_EQ(t->EncodeWithSpecial(""), (Ids{2, 1}));
  EXPECT_EQ(t->Encode("a", true, true), (Ids{2, kA, 1}));
  std::vector<int32_t> out = {7};
  t->EncodeAppend("a", false, true, &out);
  EXPECT_EQ(out, (Ids{7, kA, 1}));
}

TEST(TokenizerSpm, SpecialTokenPartition) {
  auto t = MakeTokenizer(SmallSpmVocab());
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Encode("<start_of_turn>hello<eos>", false, false), (Ids{4, kHELLO, 1}));
  EXPECT_EQ(t->Encode("<b><b>", false, false), (Ids{8, 8}));
  // Partial spellings are ordinary text.
  EXPECT_EQ(t->Encode("<b", false, false), (Ids{kLt, kB}));
  EXPECT_EQ(t->Encode("<s>", false, false), (Ids{kLt, kS, kGt}));
  // BOS text inside the input is the BOS token (parse_special), even with add_bos.
  EXPECT_EQ(t->Encode("<bos>", true, false), (Ids{2, 2}));
  // Longest token first: "\n\n" then "\n".
  EXPECT_EQ(t->Encode("\n\n\n", false, false), (Ids{6, 5}));
  EXPECT_EQ(t->Encode("\n\n\n\n", false, false), (Ids{6, 6}));
}

TEST(TokenizerSpm, WhitespaceRuns) {
  auto t = MakeTokenizer(SmallSpmVocab());
  ASSERT_TRUE(t);
  // Two spaces are a user-defined token, cut out before ' ' -> U+2581.
  EXPECT_EQ(t->Encode("a  b", false, false), (Ids{kA, 7, kB}));
  // Three: "  " first, the third space is escaped with the following b.
  EXPECT_EQ(t->Encode("a   b", false, false), (Ids{kA, 7, kSpB}));
  EXPECT_EQ(t->Encode("    ", false, false), (Ids{7, 7}));
  EXPECT_EQ(t->Encode(" ", false, false), (Ids{kSp}));
  EXPECT_EQ(t->Encode("a\n\nb", false, false), (Ids{kA, 6, kB}));
}

TEST(TokenizerSpm, ByteFallback) {
  auto t = MakeTokenizer(SmallSpmVocab());
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Encode("x", false, false), (Ids{kByte0 + 'x'}));
  EXPECT_EQ(t->Encode("\xC3\xA9", false, false), (Ids{kByte0 + 0xC3, kByte0 + 0xA9}));  // é
  EXPECT_EQ(t->Encode(std::string_view("\0", 1), false, false), (Ids{kByte0}));
  EXPECT_EQ(t->Encode(std::string_view("a\0a", 3), false, false), (Ids{kA, kByte0, kA}));
  // 4-byte character (U+1F600).
  EXPECT_EQ(t->Encode("\xF0\x9F\x98\x80", false, false),
            (Ids{kByte0 + 0xF0, kByte0 + 0x9F, kByte0 + 0x98, kByte0 + 0x80}));
}

TEST(TokenizerSpm, InvalidUtf8IsBytes) {
  auto t = MakeTokenizer(SmallSpmVocab());
  ASSERT_TRUE(t);
  // Every byte of an ill-formed sequence is its own byte token; neighbours merge normally.
  EXPECT_EQ(t->Encode("\xFF", false, false), (Ids{kByte0 + 0xFF}));
  EXPECT_EQ(t->Encode("a\xE6\x97" "aa", false, false), (Ids{kA, kByte0 + 0xE6, kByte0 + 0x97, kAA}));
  EXPECT_EQ(t->Encode("\xC0\xAF", false, false), (Ids{kByte0 + 0xC0, kByte0 + 0xAF}));          // overlong
  EXPECT_EQ(t->Encode("\xED\xA0\x80", false, false), (Ids{kByte0 + 0xED, kByte0 + 0xA0, kByte0 + 0x80}));  // surrogate
  EXPECT_EQ(t->Encode("\xF4\x90\x80\x80", false, false),
            (Ids{kByte0 + 0xF4, kByte0 + 0x90, kByte0 + 0x80, kByte0 + 0x80}));  // > U+10FFFF
  EXPECT_EQ(t->Encode("hello\xE2\x96", false, false), (Ids{kHELLO, kByte0 + 0xE2, kByte0 + 0x96}));  // truncated
  // Decode gives the exact bytes back.
  for (std::string_view s : {"a\xE6\x97" "aa", "\xC0\xAF", "\xFF\xFE", "x\xED\xA0\x80y"}) {
    auto d = t->Decode(t->Encode(s, true, true), /*skip_special=*/true);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, s);
  }
}

TEST(TokenizerSpm, Decode) {
  auto t = MakeTokenizer(SmallSpmVocab());
  ASSERT_TRUE(t);
  auto d = t->Decode(Ids{2, kSpHELLO, 7, kByte0 + 0xC3, kByte0 + 0xA9, 5, 4, 1});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, "<bos> hello  \xC3\xA9\n<start_of_turn><eos>");
  d = t->Decode(Ids{2, kSpHELLO, 4, 1}, /*skip_special=*/true);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, " hello");
  auto bad = t->Decode(Ids{kA, 100000});
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kOutOfRange);
  EXPECT_FALSE(t->Decode(Ids{-1}).ok());
  EXPECT_EQ(t->TokenText(kHELLO), "hello");
  EXPECT_EQ(t->TokenText(-5), "");
  EXPECT_EQ(t->PieceToId("hello"), kHELLO);
  EXPECT_EQ(t->PieceToId("nope"), -1);
}

TEST(TokenizerSpm, SpacePrefix) {
  Vocab v = SmallSpmVocab();
  v.add_space_prefix = true;
  auto t = MakeTokenizer(std::move(v));
  ASSERT_TRUE(t);
  // llama.cpp: ' ' before the first fragment and after each special token.
  EXPECT_EQ(t->Encode("hello", false, false), (Ids{kSpHELLO}));
  EXPECT_EQ(t->Encode("<eos>hello", false, false), (Ids{1, kSpHELLO}));
  EXPECT_EQ(t->Encode("", false, false), Ids{});
}

TEST(TokenizerSpm, ThreadSafeEncode) {
  auto t = MakeTokenizer(SmallSpmVocab());
  ASSERT_TRUE(t);
  const std::vector<std::string> texts = {"hello hello", "aaa<b>aa", "a   b\n\n\n", "\xC3\xA9x", "<start_of_turn>"};
  std::vector<Ids> expected;
  for (const auto& s : texts) expected.push_back(t->Encode(s, true, true));
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int it = 0; it < 2000; ++it) {
        const size_t i = static_cast<size_t>(it + k) % texts.size();
        if (t->Encode(texts[i], true, true) != expected[i]) ++failures[k];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

// Overlapping special tokens of different lengths: llama.cpp takes the longest
// token first wherever it is; HF takes the leftmost match.
Vocab OverlapVocab(TokenizerAlgorithm algo) {
  Vocab v;
  v.algorithm = algo;
  auto add = [&](std::string t, TokenType type) {
    v.tokens.push_back(std::move(t));
    v.types.push_back(type);
    v.scores.push_back(type == TokenType::kNormal ? -static_cast<float>(v.tokens.size()) : -1000.0f);
  };
  add("ab", TokenType::kUserDefined);   // 0
  add("bcd", TokenType::kUserDefined);  // 1
  add("a", TokenType::kNormal);         // 2
  add("b", TokenType::kNormal);         // 3
  add("c", TokenType::kNormal);         // 4
  add("d", TokenType::kNormal);         // 5
  return v;
}

TEST(TokenizerPartition, LongestFirstVersusLeftmostLongest) {
  auto spm = MakeTokenizer(OverlapVocab(TokenizerAlgorithm::kLlamaSpm));
  auto hf = MakeTokenizer(OverlapVocab(TokenizerAlgorithm::kHfBpe));
  ASSERT_TRUE(spm && hf);
  EXPECT_EQ(spm->Encode("abcd", false, false), (Ids{2, 1}));
  EXPECT_EQ(hf->Encode("abcd", false, false), (Ids{0, 4, 5}));
  EXPECT_EQ(spm->Encode("ab bcd", false, false).front(), 0);
}

// Tokens that hold U+2581 after their first character (Gemma3 has '>▁</')
// can be formed across a space: merging must not treat spaces as hard word
// boundaries.
Vocab CrossSpaceVocab(TokenizerAlgorithm algo) {
  Vocab v;
  v.algorithm = algo;
  auto add = [&](std::string t) {
    v.tokens.push_back(std::move(t));
    v.types.push_back(TokenType::kNormal);
    v.scores.push_back(-static_cast<float>(v.tokens.size()));
  };
  add("x");                                // 0
  add("y");                                // 1
  add("\xE2\x96\x81");                    // 2  ▁
  add("x\xE2\x96\x81");                   // 3  x▁
  add("x\xE2\x96\x81y");                  // 4  x▁y
  add("\xE2\x96\x81y");                   // 5  ▁y
  add("\xE2\x96\x81\xE2\x96\x81");       // 6  ▁▁
  v.merges = {BpeMerge{0, 2, 3}, BpeMerge{3, 1, 4}, BpeMerge{2, 1, 5}, BpeMerge{2, 2, 6}};
  if (algo == TokenizerAlgorithm::kHfBpe) v.normalizer.push_back({" ", "\xE2\x96\x81"});
  return v;
}

TEST(TokenizerWords, MergesAcrossSpacesWhenATokenSpansThem) {
  for (auto algo : {TokenizerAlgorithm::kLlamaSpm, TokenizerAlgorithm::kHfBpe}) {
    auto t = MakeTokenizer(CrossSpaceVocab(algo));
    ASSERT_TRUE(t);
    // SPM: "x▁" (score -4) beats "▁y" (-6), then "x▁y". HF: (x,▁) rank 0, then (x▁,y) rank 1.
    EXPECT_EQ(t->Encode("x y", false, false), (Ids{4})) << static_cast<int>(algo);
    EXPECT_EQ(t->Encode("y x y x", false, false), (Ids{1, 2, 4, 2, 0})) << static_cast<int>(algo);
    // No x before the space: ordinary word start.
    EXPECT_EQ(t->Encode("y y", false, false), (Ids{1, 5})) << static_cast<int>(algo);
  }
  // "▁▁" holds U+2581 at offset 3: runs of spaces stay together.
  auto spm = MakeTokenizer(CrossSpaceVocab(TokenizerAlgorithm::kLlamaSpm));
  auto hf = MakeTokenizer(CrossSpaceVocab(TokenizerAlgorithm::kHfBpe));
  ASSERT_TRUE(spm && hf);
  // SPM: "▁▁" (-7) loses to "▁y" (-6): ▁ + ▁y. HF: (▁,y) rank 2 beats (▁,▁) rank 3.
  EXPECT_EQ(spm->Encode("  y", false, false), (Ids{2, 5}));
  EXPECT_EQ(hf->Encode("  y", false, false), (Ids{2, 5}));
  EXPECT_EQ(spm->Encode("   ", false, false), (Ids{6, 2}));
  EXPECT_EQ(hf->Encode("   ", false, false), (Ids{6, 2}));
}

// ---------------------------------------------------------------------------
// A small HF tokenizer.json.
// ---------------------------------------------------------------------------
std::string SmallTokenizerJson(bool byte_fallback = true, bool fuse_unk = true) {
  std::string vocab = R"("<pad>":0,"<eos>":1,"<bos>":2,"<unk>":3,"\u2581\u2581":4,"<mask>":5)";
  for (int b = 0; b < 256; ++b) vocab += ",\"" + HexByte(b) + "\":" + std::to_string(6 + b);
  // 262.. NORMAL
  vocab += R"(,"▁":262,"a":263,"b":264,"c":265,"ab":266,"bc":267,"abc":268,"▁a":269,"ca":270)";
  std::string j = R"({
  "version": "1.0",
  "truncation": null,
  "padding": null,
  "added_tokens": [
    {"id": 0, "content": "<pad>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 1, "content": "<eos>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 2, "content": "<bos>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 3, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 4, "content": "▁▁", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false},
    {"id": 5, "content": "<mask>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false},
    {"id": 271, "content": "<extra>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false}
  ],
  "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
  "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false},
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
             {"SpecialToken": {"id": "<bos>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
    "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]}}},
  "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
              {"type": "ByteFallback"}, {"type": "Fuse"}]},
  "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null,
    "end_of_word_suffix": null, "fuse_unk": FUSE, "byte_fallback": FALLBACK, "ignore_merges": false,
    "vocab": {VOCAB},
    "merges": [["a", "b"], ["b", "c"], ["ab", "c"], ["▁", "a"], "▁ ▁"]}
})";
  auto replace = [&](const std::string& what, const std::string& with) { j.replace(j.find(what), what.size(), with); };
  replace("VOCAB", vocab);
  replace("FUSE", fuse_unk ? "true" : "false");
  replace("FALLBACK", byte_fallback ? "true" : "false");
  return j;
}

TEST(TokenizerHf, ParsesTokenizerJson) {
  auto v = ParseHfTokenizerJson(SmallTokenizerJson());
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->algorithm, TokenizerAlgorithm::kHfBpe);
  EXPECT_EQ(v->size(), 272);
  EXPECT_EQ(v->model_vocab_size, 271);
  EXPECT_EQ(v->types[0], TokenType::kControl);
  EXPECT_EQ(v->types[4], TokenType::kUserDefined);  // "▁▁", not special
  EXPECT_EQ(v->types[5], TokenType::kControl);      // <mask>: looks special
  EXPECT_EQ(v->types[6], TokenType::kByte);
  EXPECT_EQ(v->types[262], TokenType::kNormal);
  EXPECT_EQ(v->types[271], TokenType::kUserDefined);
  EXPECT_EQ(v->scores[262], 0.0f);
  EXPECT_EQ(v->scores[270], -8.0f);
  EXPECT_EQ(v->scores[4], -1000.0f);
  EXPECT_EQ(v->scores[6], 0.0f);
  EXPECT_EQ(v->bos_id, 2);
  EXPECT_EQ(v->eos_id, 1);
  EXPECT_EQ(v->unk_id, 3);
  EXPECT_EQ(v->pad_id, 0);
  EXPECT_TRUE(v->add_bos);
  EXPECT_FALSE(v->add_eos);
  ASSERT_EQ(v->merges.size(), 5u);
  EXPECT_EQ(v->merges[2].left, 266);
  EXPECT_EQ(v->merges[2].right, 265);
  EXPECT_EQ(v->merges[2].result, 268);
  EXPECT_EQ(v->merges[4].result, 4);  // legacy "▁ ▁" string form
  ASSERT_EQ(v->normalizer.size(), 1u);
  EXPECT_EQ(v->split_pattern, " ");
}

TEST(TokenizerHf, MergesByRank) {
  auto v = ParseHfTokenizerJson(SmallTokenizerJson());
  ASSERT_TRUE(v.ok());
  auto t = MakeTokenizer(std::move(v).value());
  ASSERT_TRUE(t);
  // a b c: (a,b) rank 0 first, then (ab,c) rank 2.
  EXPECT_EQ(t->Encode("abc", false, false), (Ids{268}));
  // "bc a" -> "bc▁a": (b,c) rank 1, (▁,a) rank 3.
  EXPECT_EQ(t->Encode("bc a", false, false), (Ids{267, 269}));
  // "ca" is a vocab piece but no merge makes it: HF keeps c, a (SPM would merge).
  EXPECT_EQ(t->Encode("ca", false, false), (Ids{265, 263}));
  // Raw spaces are not the added token "▁▁"; after normalisation (▁,a) rank 3
  // beats (▁,▁) rank 4.
  EXPECT_EQ(t->Encode("  a", false, false), (Ids{262, 269}));
  // A literal "▁▁" in the raw text is the added token.
  EXPECT_EQ(t->Encode("\xE2\x96\x81\xE2\x96\x81" "a", false, false), (Ids{4, 263}));
  EXPECT_EQ(t->Encode("<mask>ab<extra>", false, false), (Ids{5, 266, 271}));
  // Byte fallback per character.
  EXPECT_EQ(t->Encode("\xC3\xA9", false, false), (Ids{6 + 0xC3, 6 + 0xA9}));
  EXPECT_EQ(t->Encode("", true, false), (Ids{2}));
  EXPECT_EQ(t->EncodeWithSpecial("a"), (Ids{2, 263}));
  auto d = t->Decode(Ids{2, 269, 4, 6 + 0xC3, 6 + 0xA9});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, "<bos> a  \xC3\xA9");
}

TEST(TokenizerHf, UnknownWithoutByteFallback) {
  auto fused = ParseHfTokenizerJson(SmallTokenizerJson(/*byte_fallback=*/false, /*fuse_unk=*/true));
  auto unfused = ParseHfTokenizerJson(SmallTokenizerJson(/*byte_fallback=*/false, /*fuse_unk=*/false));
  ASSERT_TRUE(fused.ok() && unfused.ok());
  auto tf = MakeTokenizer(std::move(fused).value());
  auto tu = MakeTokenizer(std::move(unfused).value());
  ASSERT_TRUE(tf && tu);
  EXPECT_EQ(tf->Encode("\xC3\xA9\xC3\xA9" "a\xC3\xA9", false, false), (Ids{3, 263, 3}));
  EXPECT_EQ(tu->Encode("\xC3\xA9\xC3\xA9" "a\xC3\xA9", false, false), (Ids{3, 3, 263, 3}));
}

TEST(TokenizerHf, TokenizerConfigOverridesAddSpecial) {
  const auto dir = std::filesystem::temp_directory_path() / ("gembed_tok_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "tokenizer.json") << SmallTokenizerJson();
    std::ofstream(dir / "tokenizer_config.json")
        << R"({"add_bos_token": true, "add_eos_token": true, "eos_token": "<end_of_turn>", "x": [1, {"y": null}]})";
  }
  auto t = Tokenizer::FromHfJson((dir / "tokenizer.json").string());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE((*t)->add_bos());
  EXPECT_TRUE((*t)->add_eos());
  EXPECT_EQ((*t)->EncodeWithSpecial("a"), (Ids{2, 263, 1}));
  // FromFile picks the JSON path by content.
  auto f = Tokenizer::FromFile((dir / "tokenizer.json").string());
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->algorithm(), TokenizerAlgorithm::kHfBpe);
  std::ofstream(dir / "tokenizer_config.json") << "{broken";
  EXPECT_FALSE(Tokenizer::FromHfJson((dir / "tokenizer.json").string()).ok());
  std::filesystem::remove_all(dir);
}

TEST(TokenizerHf, BrokenTokenizerJson) {
  const std::string good = SmallTokenizerJson();
  ASSERT_TRUE(ParseHfTokenizerJson(good).ok());
  struct Case {
    std::string json;
    StatusCode code;
  };
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const size_t pos = s.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    if (pos != std::string::npos) s.replace(pos, from.size(), to);
    return s;
  };
  std::vector<Case> cases = {
      {"", StatusCode::kCorruptFile},
      {"[]", StatusCode::kCorruptFile},
      {"{", StatusCode::kCorruptFile},
      {good.substr(0, good.size() / 2), StatusCode::kCorruptFile},
      {good + "x", StatusCode::kCorruptFile},
      {"{}", StatusCode::kCorruptFile},  // no model
      {with("\"type\": \"BPE\"", "\"type\": \"WordPiece\""), StatusCode::kUnsupported},
      {with("\"dropout\": null", "\"dropout\": 0.1"), StatusCode::kUnsupported},
      {with("[\"ab\", \"c\"]", "[\"ab\", \"zz\"]"), StatusCode::kCorruptFile},  // merge piece not in vocab
      {with("[\"ab\", \"c\"]", "[\"c\", \"a\", \"b\"]"), StatusCode::kCorruptFile},
      {with("[\"b\", \"c\"]", "[\"c\", \"b\"]"), StatusCode::kCorruptFile},    // "cb" not in vocab
      {with("\"ca\":270", "\"ca\":269"), StatusCode::kCorruptFile},            // duplicate id
      {with("\"ca\":270", "\"ca\":300"), StatusCode::kCorruptFile},            // hole in ids
      {with("\"ca\":270", "\"ca\":-1"), StatusCode::kCorruptFile},
      {with("\"ca\":270", "\"ca\":99999999999"), StatusCode::kCorruptFile},
      {with("\"ca\":270", "\"ca\":\"x\""), StatusCode::kCorruptFile},
      {with("\"ca\":270", "\"c\\ud800a\":270"), StatusCode::kCorruptFile},      // lone surrogate
      {with("\"ca\":270", "\"c\xff\":270"), StatusCode::kCorruptFile},          // invalid UTF-8
      {with("\"ca\":270", "\"c\x01\":270"), StatusCode::kCorruptFile},          // raw control char
      {with("\"id\": 271", "\"id\": 275"), StatusCode::kCorruptFile},           // added id gap
      {with("\"id\": 5,", "\"id\": 7,"), StatusCode::kCorruptFile},             // added id != vocab id
      {with("\"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": false}\n  ]",
            "\"lstrip\": true, \"rstrip\": false, \"normalized\": false, \"special\": false}\n  ]"),
       StatusCode::kUnsupported},
      {with("{\"type\": \"Replace\"", "{\"type\": \"NFKC\""), StatusCode::kUnsupported},
      {with("\"behavior\": \"MergedWithPrevious\"", "\"behavior\": \"Isolated\""), StatusCode::kUnsupported},
      {with("{\"String\": \" \"}, \"content\"", "{\"Regex\": \" \"}, \"content\""), StatusCode::kUnsupported},
      {with("\"type\": \"TemplateProcessing\"", "\"type\": \"RobertaProcessing\""), StatusCode::kUnsupported},
      {with("\"unk_token\": \"<unk>\"", "\"unk_token\": \"<nope>\""), StatusCode::kCorruptFile},
      {with("\"fuse_unk\": true", "\"fuse_unk\": 1"), StatusCode::kCorruptFile},
      {"{\"x\": " + std::string(100000, '[') + std::string(100000, ']') + "}", StatusCode::kCorruptFile},  // deep
      {"{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", StatusCode::kCorruptFile},  // empty vocab
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    auto v = ParseHfTokenizerJson(cases[i].json);
    EXPECT_FALSE(v.ok()) << "case " << i;
    if (!v.ok()) {
      EXPECT_EQ(v.status().code(), cases[i].code) << "case " << i << ": " << v.status().ToString();
      EXPECT_FALSE(v.status().message().empty());
    }
  }
  EXPECT_FALSE(Tokenizer::FromHfJson("/nonexistent/tokenizer.json").ok());
}

// ---------------------------------------------------------------------------
// GGUF vocabulary: writer, reader, and malformed files.
// ---------------------------------------------------------------------------
Result<Vocab> RoundTrip(const GgufWriter& w, std::vector<uint8_t>* bytes) {
  *bytes = w.ToBytes();
  GEMBED_ASSIGN_OR_RETURN(auto f, GgufFile::FromBytes(bytes->data(), bytes->size()));
  return ReadVocabFromGguf(*f);
}

TEST(TokenizerGguf, WriteReadRoundTrip) {
  const Vocab src = SmallSpmVocab();
  GgufWriter w;
  w.SetString("general.architecture", "gemma-embedding");
  ASSERT_TRUE(WriteGgufVocab(src, &w).ok());
  std::vector<uint8_t> bytes;
  auto v = RoundTrip(w, &bytes);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->algorithm, TokenizerAlgorithm::kLlamaSpm);
  EXPECT_EQ(v->tokens, src.tokens);
  EXPECT_EQ(v->scores, src.scores);
  EXPECT_EQ(v->types, src.types);
  EXPECT_EQ(v->bos_id, 2);
  EXPECT_EQ(v->eos_id, 1);
  EXPECT_EQ(v->unk_id, 3);
  EXPECT_EQ(v->pad_id, 0);
  EXPECT_TRUE(v->add_bos);
  EXPECT_TRUE(v->add_eos);
  EXPECT_FALSE(v->add_space_prefix);

  auto a = MakeTokenizer(src);
  auto b = MakeTokenizer(std::move(v).value());
  ASSERT_TRUE(a && b);
  for (std::string_view s : {"hello hello", "<start_of_turn>a  b\n\n\n<eos>", "\xC3\xA9\xFF", "", "aaa<b>"}) {
    EXPECT_EQ(a->Encode(s, true, true), b->Encode(s, true, true)) << s;
  }
  // Writing what was read gives the same bytes again.
  GgufWriter w2;
  w2.SetString("general.architecture", "gemma-embedding");
  ASSERT_TRUE(WriteGgufVocab(b->vocab(), &w2).ok());
  EXPECT_EQ(w2.ToBytes(), bytes);
}

TEST(TokenizerGguf, WriterConvertsUserDefinedSpacesAndDropsExtraIds) {
  auto v = ParseHfTokenizerJson(SmallTokenizerJson());
  ASSERT_TRUE(v.ok());
  GgufWriter w;
  ASSERT_TRUE(WriteGgufVocab(*v, &w).ok());
  std::vector<uint8_t> bytes;
  auto back = RoundTrip(w, &bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->size(), 271);  // <extra> (id 271) is beyond the model vocab
  EXPECT_EQ(back->tokens[4], "  ");
  EXPECT_EQ(back->types[4], TokenType::kUserDefined);
  EXPECT_EQ(back->tokens[262], "\xE2\x96\x81");  // NORMAL pieces keep U+2581
  EXPECT_TRUE(back->add_eos);                    // EmbeddingGemma default
  GgufVocabOptions no_eos;
  no_eos.add_eos = false;
  GgufWriter w2;
  ASSERT_TRUE(WriteGgufVocab(*v, &w2, no_eos).ok());
  auto back2 = RoundTrip(w2, &bytes);
  ASSERT_TRUE(back2.ok());
  EXPECT_FALSE(back2->add_eos);
}

TEST(TokenizerGguf, MalformedVocabularies) {
  const Vocab good = SmallSpmVocab();
  const size_t n = good.tokens.size();
  std::vector<int32_t> types;
  for (TokenType t : good.types) types.push_back(static_cast<int32_t>(t));

  struct Case {
    const char* name;
    std::function<void(GgufWriter*)> build;
    const char* expect_in_message;
  };
  auto base = [&](GgufWriter* w, bool tokens = true, bool scores = true, bool ttypes = true) {
    w->SetString("tokenizer.ggml.model", "llama");
    if (tokens) w->SetStringArray("tokenizer.ggml.tokens", good.tokens);
    if (scores) w->SetF32Array("tokenizer.ggml.scores", good.scores);
    if (ttypes) w->SetI32Array("tokenizer.ggml.token_type", types);
  };
  std::vector<Case> cases = {
      {"missing tokens", [&](GgufWriter* w) { base(w, false); }, "tokenizer.ggml.tokens"},
      {"missing model",
       [&](GgufWriter* w) { w->SetStringArray("tokenizer.ggml.tokens", good.tokens); }, "tokenizer.ggml.model"},
      {"gpt2 model", [&](GgufWriter* w) { base(w); w->SetString("tokenizer.ggml.model", "gpt2"); }, "gpt2"},
      {"scores too short",
       [&](GgufWriter* w) {
         base(w, true, false);
         w->SetF32Array("tokenizer.ggml.scores", std::vector<float>(n - 1, 0.0f));
       },
       "scores"},
      {"scores too long",
       [&](GgufWriter* w) {
         base(w, true, false);
         w->SetF32Array("tokenizer.ggml.scores", std::vector<float>(n + 1, 0.0f));
       },
       "scores"},
      {"types wrong length",
       [&](GgufWriter* w) {
         base(w, true, true, false);
         w->SetI32Array("tokenizer.ggml.token_type", std::vector<int32_t>(3, 1));
       },
       "token_type"},
      {"type 7",
       [&](GgufWriter* w) {
         base(w, true, true, false);
         auto t = types;
         t[10] = 7;
         w->SetI32Array("tokenizer.ggml.token_type", t);
       },
       "token_type"},
      {"type -1",
       [&](GgufWriter* w) {
         base(w, true, true, false);
         auto t = types;
         t[0] = -1;
         w->SetI32Array("tokenizer.ggml.token_type", t);
       },
       "token_type"},
      {"bos out of range", [&](GgufWriter* w) { base(w); w->SetU32("tokenizer.ggml.bos_token_id", 100000); },
       "bos_token_id"},
      {"eos out of range", [&](GgufWriter* w) { base(w); w->SetU32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(n)); },
       "eos_token_id"},
      {"bos wrong type", [&](GgufWriter* w) { base(w); w->SetString("tokenizer.ggml.bos_token_id", "2"); },
       "bos_token_id"},
      {"duplicate piece",
       [&](GgufWriter* w) {
         base(w, false);
         auto t = good.tokens;
         t[kB] = "a";
         w->SetStringArray("tokenizer.ggml.tokens", t);
       },
       "twice"},
      {"empty tokens",
       [&](GgufWriter* w) {
         w->SetString("tokenizer.ggml.model", "llama");
         w->SetStringArray("tokenizer.ggml.tokens", {});
       },
       "tokens"},
      {"add_eos without eos",
       [&](GgufWriter* w) {
         w->SetString("tokenizer.ggml.model", "llama");
         w->SetStringArray("tokenizer.ggml.tokens", {"a", "b"});
         w->SetBool("tokenizer.ggml.add_eos_token", true);
       },
       "add_eos_token"},
  };
  for (const Case& c : cases) {
    GgufWriter w;
    c.build(&w);
    const std::vector<uint8_t> bytes = w.ToBytes();
    auto f = GgufFile::FromBytes(bytes.data(), bytes.size());
    if (!f.ok()) {
      // The GGUF reader itself rejects well-known keys of the wrong type.
      EXPECT_STREQ(c.name, "bos wrong type") << f.status().ToString();
      EXPECT_NE(f.status().ToString().find(c.expect_in_message), std::string::npos) << f.status().ToString();
      continue;
    }
    auto t = Tokenizer::FromGguf(**f);
    ASSERT_FALSE(t.ok()) << c.name;
    EXPECT_NE(t.status().ToString().find(c.expect_in_message), std::string::npos)
        << c.name << ": " << t.status().ToString();
  }
}

TEST(TokenizerGguf, DefaultsWhenOptionalKeysAbsent) {
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "", "\xE2\x96\x81" "a"});
  std::vector<uint8_t> bytes;
  auto v = RoundTrip(w, &bytes);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  // llama.cpp SPM defaults.
  EXPECT_EQ(v->bos_id, 1);
  EXPECT_EQ(v->eos_id, 2);
  EXPECT_EQ(v->unk_id, 0);
  EXPECT_EQ(v->pad_id, -1);
  EXPECT_TRUE(v->add_bos);
  EXPECT_FALSE(v->add_eos);
  EXPECT_TRUE(v->add_space_prefix);
  EXPECT_EQ(v->tokens[5], "[EMPTY_5]");
  EXPECT_EQ(v->types[4], TokenType::kNormal);
  auto t = MakeTokenizer(std::move(v).value());
  ASSERT_TRUE(t);
  // No types: nothing is special; all scores 0, so merges go leftmost first.
  // Space prefix: "a" -> "▁a". No byte tokens: unknown bytes become <unk>.
  EXPECT_EQ(t->Encode("a", false, false), (Ids{6}));
  EXPECT_EQ(t->Encode("a!", true, false), (Ids{1, 6, 0}));
}

TEST(TokenizerVocab, FromVocabValidates) {
  {
    Vocab v = SmallSpmVocab();
    v.scores.pop_back();
    EXPECT_FALSE(Tokenizer::FromVocab(v).ok());
  }
  {
    Vocab v = SmallSpmVocab();
    v.types[3] = static_cast<TokenType>(9);
    EXPECT_FALSE(Tokenizer::FromVocab(v).ok());
  }
  {
    Vocab v = SmallSpmVocab();
    v.bos_id = v.size();
    auto t = Tokenizer::FromVocab(v);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), StatusCode::kOutOfRange);
  }
  {
    Vocab v = SmallSpmVocab();
    v.tokens[kA] = "";
    EXPECT_FALSE(Tokenizer::FromVocab(v).ok());
  }
  {
    Vocab v;
    EXPECT_FALSE(Tokenizer::FromVocab(v).ok());
  }
  {
    Vocab v = OverlapVocab(TokenizerAlgorithm::kHfBpe);
    v.merges.push_back(BpeMerge{0, 1, 99});
    EXPECT_FALSE(Tokenizer::FromVocab(v).ok());
  }
  {
    Vocab v = SmallSpmVocab();
    v.eos_id = -1;  // add_eos without an EOS id
    EXPECT_FALSE(Tokenizer::FromVocab(v).ok());
    GgufWriter w;
    EXPECT_FALSE(WriteGgufVocab(v, &w).ok());
  }
}

TEST(TokenizerVocab, LooksSpecial) {
  for (const char* s : {"<pad>", "<mask>", "<2mass>", "[@BOS@]", "<|im_start|>", "<unused0>", "<unused6241>",
                        "<\xEF\xBD\x9C" "x\xEF\xBD\x9C>"}) {
    EXPECT_TRUE(TokenLooksSpecial(s)) << s;
  }
  for (const char* s : {"<bos>", "[multimodal]", "<table>", "</s>", "<unused", "|>", "<|"}) {
    EXPECT_FALSE(TokenLooksSpecial(s)) << s;
  }
}

}  // namespace
}  // namespace gembed
