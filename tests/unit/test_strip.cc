// StripPythonWhitespace (tokenizer/strip.h) on bytes Python cannot express:
// invalid, overlong, surrogate and truncated UTF-8 at the edges are never
// stripped, not even partly. Agreement with Python's str.strip() on every
// whitespace code point and on random strings is checked against Python
// itself in tests/python/test_strip.py.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "tokenizer/strip.h"

namespace gembed {
namespace {

std::string Strip(std::string_view s) { return std::string(StripPythonWhitespace(s)); }

TEST(StripPythonWhitespace, AsciiAndEmpty) {
  EXPECT_EQ(Strip(""), "");
  EXPECT_EQ(Strip(" "), "");
  EXPECT_EQ(Strip(" \t\n\v\f\r\x1c\x1d\x1e\x1f"), "");
  EXPECT_EQ(Strip("  hi\n"), "hi");
  EXPECT_EQ(Strip("a b"), "a b");          // inner whitespace stays
  EXPECT_EQ(Strip("\n\ta \t b\r\n"), "a \t b");
  EXPECT_EQ(Strip("task: search result | query: "), "task: search result | query:");
  // Control characters that are not whitespace in Python.
  EXPECT_EQ(Strip(std::string("\0x\0", 3)), std::string("\0x\0", 3));
  EXPECT_EQ(Strip("\x08x\x1b\x7f"), "\x08x\x1b\x7f");
}

TEST(StripPythonWhitespace, MultiByteWhitespace) {
  // U+0085 U+00A0; U+3000 U+2003 / U+2028 U+2029 U+1680; U+202F U+205F / U+200A.
  EXPECT_EQ(Strip("\xc2\x85\xc2\xa0nbsp\xc2\xa0\xc2\x85"), "nbsp");
  EXPECT_EQ(Strip("\xe3\x80\x80\xe2\x80\x83x\xe2\x80\xa8\xe2\x80\xa9\xe1\x9a\x80"), "x");
  EXPECT_EQ(Strip("\xe2\x80\xaf\xe2\x81\x9fx\xe2\x80\x8a"), "x");
  // Not whitespace for Python: U+200B ZERO WIDTH SPACE, U+180E, U+FEFF, U+2060, U+00AD.
  for (std::string_view cp : {"\xe2\x80\x8b", "\xe1\xa0\x8e", "\xef\xbb\xbf", "\xe2\x81\xa0", "\xc2\xad"}) {
    const std::string s = std::string(cp) + "x" + std::string(cp);
    EXPECT_EQ(Strip(" " + s + " "), s);
  }
}

TEST(StripPythonWhitespace, ResultIsAViewIntoTheInput) {
  const std::string s = "\t  middle \xe3\x80\x80";
  const std::string_view v = StripPythonWhitespace(s);
  EXPECT_EQ(v, "middle");
  EXPECT_EQ(v.data(), s.data() + 3);
}

TEST(StripPythonWhitespace, StopsAtInvalidOrTruncatedUtf8) {
  // A lone byte that is not UTF-8 stops stripping on its side; whitespace
  // beyond it stays.
  EXPECT_EQ(Strip("  \xff  x  \xfe "), "\xff  x  \xfe");
  EXPECT_EQ(Strip(" \x80 "), "\x80");  // lone continuation byte
  // U+3000 cut short (E3 80 without its last byte): kept in full, at either end.
  EXPECT_EQ(Strip("x \xe3\x80"), "x \xe3\x80");
  EXPECT_EQ(Strip("\xe3\x80 x"), "\xe3\x80 x");
  EXPECT_EQ(Strip("\xe3\x80"), "\xe3\x80");
  // U+00A0 cut short.
  EXPECT_EQ(Strip("\xc2"), "\xc2");
  EXPECT_EQ(Strip(" \xc2 "), "\xc2");
  // A whole U+3000 after a stray continuation byte: the U+3000 goes, the byte stays.
  EXPECT_EQ(Strip("x\x80\xe3\x80\x80"), "x\x80");
  // Too many continuation bytes: E3 80 80 80 is not one sequence.
  EXPECT_EQ(Strip("x\xe3\x80\x80\x80"), "x\xe3\x80\x80\x80");
  // Overlong encodings of U+0020 / U+00A0 / U+3000 are not whitespace.
  EXPECT_EQ(Strip("\xc0\xa0x\xc0\xa0"), "\xc0\xa0x\xc0\xa0");
  EXPECT_EQ(Strip("\xe0\x82\xa0x\xe0\x82\xa0"), "\xe0\x82\xa0x\xe0\x82\xa0");
  EXPECT_EQ(Strip("\xf0\x83\x80\x80x\xf0\x83\x80\x80"), "\xf0\x83\x80\x80x\xf0\x83\x80\x80");
  // An encoded surrogate (ED A0 80) is not UTF-8.
  EXPECT_EQ(Strip(" \xed\xa0\x80 "), "\xed\xa0\x80");
  // Valid 4-byte code points are decoded (and are not whitespace).
  EXPECT_EQ(Strip(" \xf0\x9f\x98\x80 "), "\xf0\x9f\x98\x80");
}

TEST(IsPythonWhitespace, Boundaries) {
  for (uint32_t cp : {0x09u, 0x0Du, 0x1Cu, 0x1Fu, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2000u, 0x200Au, 0x2028u,
                      0x2029u, 0x202Fu, 0x205Fu, 0x3000u}) {
    EXPECT_TRUE(IsPythonWhitespace(cp)) << std::hex << cp;
  }
  for (uint32_t cp : {0x00u, 0x08u, 0x0Eu, 0x1Bu, 0x21u, 0x84u, 0x86u, 0x9Fu, 0xA1u, 0x167Fu, 0x1681u, 0x180Eu,
                      0x1FFFu, 0x200Bu, 0x2027u, 0x202Au, 0x202Eu, 0x2030u, 0x205Eu, 0x2060u, 0x2FFFu, 0x3001u,
                      0xFEFFu, 0x10FFFFu}) {
    EXPECT_FALSE(IsPythonWhitespace(cp)) << std::hex << cp;
  }
}

}  // namespace
}  // namespace gembed
