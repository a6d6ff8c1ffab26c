// Tests on the real Gemma3 tokenizer (shared data; skipped when absent).
// Expected ids come from Hugging Face `tokenizers` 0.22.1 on the same
// tokenizer.json (the oracle), and the layout facts from MODEL-SPEC §6.2.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

namespace gembed {
namespace {

using Ids = std::vector<int32_t>;

std::string SharedDir() {
  const char* env = std::getenv("GEMBED_SHARED_DIR");
  return env != nullptr ? env : GEMBED_DEFAULT_SHARED_DIR;
}

class Gemma3Tokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = SharedDir() + "/gemma3-tokenizer/tokenizer.json";
    if (!std::filesystem::exists(path)) return;
    auto t = Tokenizer::FromHfJson(path);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    json_ = std::move(t).value().release();

    GgufWriter w;
    w.SetString("general.architecture", "gemma-embedding");
    ASSERT_TRUE(WriteGgufVocab(json_->vocab(), &w).ok());
    gguf_bytes_ = new std::vector<uint8_t>(w.ToBytes());
    auto f = GgufFile::FromBytes(gguf_bytes_->data(), gguf_bytes_->size());
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    auto g = Tokenizer::FromGguf(**f);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    gguf_ = std::move(g).value().release();
  }
  static void TearDownTestSuite() {
    delete json_;
    delete gguf_;
    delete gguf_bytes_;
    json_ = gguf_ = nullptr;
    gguf_bytes_ = nullptr;
  }
  void SetUp() override {
    if (json_ == nullptr) GTEST_SKIP() << "Gemma3 tokenizer not found under " << SharedDir() << " (set GEMBED_SHARED_DIR)";
  }
  static Tokenizer* json_;
  static Tokenizer* gguf_;
  static std::vector<uint8_t>* gguf_bytes_;
};
Tokenizer* Gemma3Tokenizer::json_ = nullptr;
Tokenizer* Gemma3Tokenizer::gguf_ = nullptr;
std::vector<uint8_t>* Gemma3Tokenizer::gguf_bytes_ = nullptr;

TEST_F(Gemma3Tokenizer, VocabularyLayout) {
  const Vocab& v = gguf_->vocab();
  ASSERT_EQ(v.size(), 262144);
  std::map<TokenType, int> counts;
  for (TokenType t : v.types) ++counts[t];
  EXPECT_EQ(counts[TokenType::kControl], 6251);
  EXPECT_EQ(counts[TokenType::kUserDefined], 163);
  EXPECT_EQ(counts[TokenType::kByte], 256);
  EXPECT_EQ(v.bos_id, 2);
  EXPECT_EQ(v.eos_id, 1);
  EXPECT_EQ(v.unk_id, 3);
  EXPECT_EQ(v.pad_id, 0);
  EXPECT_TRUE(v.add_bos);
  EXPECT_TRUE(v.add_eos);
  EXPECT_EQ(v.tokens[138], "  ");
  EXPECT_EQ(v.tokens[212], "</s>");
  // The tokenizer.json side keeps <image_soft_token> (262144) and "▁▁".
  EXPECT_EQ(json_->vocab_size(), 262145);
  EXPECT_EQ(json_->TokenText(138), "\xE2\x96\x81\xE2\x96\x81");
  EXPECT_TRUE(json_->add_bos());
  EXPECT_FALSE(json_->add_eos());
}

TEST_F(Gemma3Tokenizer, KnownIdsFromHf) {
  struct Case {
    std::string text;
    Ids ids;  // HF tokenizers, add_special_tokens=False
  };
  const std::vector<Case> cases = {
      {"hello world", {23391, 1902}},
      {"  hello", {138, 23391}},
      {"a  b", {236746, 138, 236763}},
      {"   x", {139, 236781}},
      {" ", {236743}},
      {"\t\tx", {255969, 236781}},
      {"x\r\ny", {236781, 251, 107, 236762}},
      {"<bos>hi", {2, 2202}},
      {"<bo", {236820, 1709}},
      {"<bos", {236820, 46757}},
      {"<0x41>", {236820, 236771, 236781, 236812, 236770, 236813}},
      {"\xC3\xA9", {236859}},
      {std::string("\0", 1), {238}},
      {"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", {94951}},  // 日本語
      {"\xF0\x9F\x98\x80", {242398}},                      // 😀
  };
  for (const Case& c : cases) {
    EXPECT_EQ(json_->Encode(c.text, false, false), c.ids) << "json: " << c.text;
    EXPECT_EQ(gguf_->Encode(c.text, false, false), c.ids) << "gguf: " << c.text;
  }
  EXPECT_EQ(json_->EncodeWithSpecial("hello world"), (Ids{2, 23391, 1902}));
  EXPECT_EQ(gguf_->EncodeWithSpecial("hello world"), (Ids{2, 23391, 1902, 1}));
  EXPECT_EQ(gguf_->EncodeWithSpecial(""), (Ids{2, 1}));
  // The two documented differences of the GGUF path (see test_tokenizer_parity.py).
  EXPECT_EQ(json_->Encode("\xE2\x96\x81\xE2\x96\x81x", false, false), (Ids{138, 236781}));
  EXPECT_NE(gguf_->Encode("\xE2\x96\x81\xE2\x96\x81x", false, false), (Ids{138, 236781}));
  EXPECT_EQ(json_->Encode("<image_soft_token>", false, false), (Ids{262144}));
  EXPECT_GT(gguf_->Encode("<image_soft_token>", false, false).size(), 1u);
}

TEST_F(Gemma3Tokenizer, GgufRoundTripIsStable) {
  // Write the GGUF-loaded vocab again: identical bytes.
  GgufWriter w;
  w.SetString("general.architecture", "gemma-embedding");
  ASSERT_TRUE(WriteGgufVocab(gguf_->vocab(), &w).ok());
  EXPECT_TRUE(w.ToBytes() == *gguf_bytes_);
}

TEST_F(Gemma3Tokenizer, DecodeRoundTrip) {
  for (std::string_view s : {"hello world", "  indented\n\tcode();\n", "<start_of_turn>user\nhi<end_of_turn>",
                             "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x98\x80", "a\xFF\xFE" "b"}) {
    for (const Tokenizer* t : {json_, gguf_}) {
      auto d = t->Decode(t->Encode(s, false, false));
      ASSERT_TRUE(d.ok());
      EXPECT_EQ(*d, s);
    }
  }
}

}  // namespace
}  // namespace gembed
