#include "tokenizer/strip.h"

#include "tokenizer/utf8.h"

namespace gembed {

bool IsPythonWhitespace(uint32_t cp) {
  if (cp <= 0x20) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
  if (cp < 0x85) return false;
  if (cp <= 0xA0) return cp == 0x85 || cp == 0xA0;
  if (cp < 0x1680) return false;
  if (cp == 0x1680) return true;
  if (cp >= 0x2000 && cp <= 0x200A) return true;
  return cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

namespace {

using tokenizer_internal::Utf8Decode;
using tokenizer_internal::Utf8SequenceLength;

// Length of the whitespace code point that starts s[i], or 0.
size_t LeadingWhitespaceLength(const unsigned char* p, size_t n) {
  const int len = Utf8SequenceLength(p, n);
  if (len == 0 || !IsPythonWhitespace(Utf8Decode(p, len))) return 0;
  return static_cast<size_t>(len);
}

// Length of the whitespace code point that ends p[0..n), or 0: the last
// sequence must be well formed and exactly reach the end.
size_t TrailingWhitespaceLength(const unsigned char* p, size_t n) {
  size_t start = n - 1;
  // Back over at most three continuation bytes to the lead byte.
  while (start > 0 && n - start < 4 && (p[start] & 0xC0) == 0x80) --start;
  const size_t len = n - start;
  if (Utf8SequenceLength(p + start, len) != static_cast<int>(len)) return 0;
  return IsPythonWhitespace(Utf8Decode(p + start, static_cast<int>(len))) ? len : 0;
}

}  // namespace

std::string_view StripPythonWhitespace(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t begin = 0, end = s.size();
  while (begin < end) {
    const size_t len = LeadingWhitespaceLength(p + begin, end - begin);
    if (len == 0) break;
    begin += len;
  }
  while (end > begin) {
    const size_t len = TrailingWhitespaceLength(p + begin, end - begin);
    if (len == 0) break;
    end -= len;
  }
  return s.substr(begin, end - begin);
}

}  // namespace gembed
