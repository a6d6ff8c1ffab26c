// Leading/trailing whitespace removal exactly like Python's str.strip() with
// no argument, which sentence-transformers applies to PROMPT + TEXT before
// tokenising (models.Transformer.tokenize: str(s).strip()).
#pragma once

#include <cstdint>
#include <string_view>

namespace gembed {

// Python's str.isspace() for one code point (general category Zs, or
// bidirectional class WS, B or S): U+0009-U+000D, U+001C-U+001F, U+0020,
// U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F,
// U+3000. Not U+180E, U+200B or U+FEFF.
bool IsPythonWhitespace(uint32_t cp);

// `s` without its leading and trailing whitespace code points (IsPythonWhitespace),
// decoding UTF-8 at both ends. Stops at the first non-whitespace code point or
// at bytes that are not a well-formed UTF-8 sequence (invalid, overlong,
// surrogate or truncated): partial sequences are never removed. For valid
// UTF-8 the result is the UTF-8 of Python's s.strip(). A view into `s`.
std::string_view StripPythonWhitespace(std::string_view s);

}  // namespace gembed
