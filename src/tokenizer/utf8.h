// UTF-8 helpers for the tokenizer (header-only, no allocation).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gembed::tokenizer_internal {

// "▁" U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's whitespace marker.
inline constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";

// Length (1..4) of the well-formed UTF-8 sequence starting at s[0], or 0 if
// the bytes there do not start one (Unicode 15 table 3-7: no overlong forms,
// no surrogates, nothing above U+10FFFF, no truncated sequence). n >= 1.
inline int Utf8SequenceLength(const unsigned char* s, size_t n) {
  const unsigned char b0 = s[0];
  if (b0 < 0x80) return 1;
  if (b0 < 0xC2) return 0;  // continuation byte or overlong 2-byte lead
  auto cont = [](unsigned char b) { return (b & 0xC0) == 0x80; };
  if (b0 < 0xE0) return (n >= 2 && cont(s[1])) ? 2 : 0;
  if (b0 < 0xF0) {
    if (n < 3) return 0;
    const unsigned char b1 = s[1];
    if (b0 == 0xE0 && (b1 < 0xA0 || b1 > 0xBF)) return 0;  // overlong
    if (b0 == 0xED && (b1 < 0x80 || b1 > 0x9F)) return 0;  // surrogates
    if (!cont(b1) || !cont(s[2])) return 0;
    return 3;
  }
  if (b0 > 0xF4 || n < 4) return 0;
  const unsigned char b1 = s[1];
  if (b0 == 0xF0 && (b1 < 0x90 || b1 > 0xBF)) return 0;  // overlong
  if (b0 == 0xF4 && (b1 < 0x80 || b1 > 0x8F)) return 0;  // > U+10FFFF
  if (!cont(b1) || !cont(s[2]) || !cont(s[3])) return 0;
  return 4;
}

// Code point of a well-formed sequence of length `len` (from Utf8SequenceLength).
inline uint32_t Utf8Decode(const unsigned char* s, int len) {
  switch (len) {
    case 1: return s[0];
    case 2: return ((s[0] & 0x1Fu) << 6) | (s[1] & 0x3Fu);
    case 3: return ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
    default:
      return ((s[0] & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
  }
}

inline void Utf8Append(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

inline bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const int len = Utf8SequenceLength(p + i, s.size() - i);
    if (len == 0) return false;
    i += static_cast<size_t>(len);
  }
  return true;
}

// Appends `text` with every occurrence of `from` replaced by `to`.
inline void AppendReplaced(std::string_view text, std::string_view from, std::string_view to, std::string* out) {
  if (from.empty()) {
    out->append(text);
    return;
  }
  size_t pos = 0;
  while (true) {
    const size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) break;
    out->append(text.substr(pos, hit - pos));
    out->append(to);
    pos = hit + from.size();
  }
  out->append(text.substr(pos));
}

// "<0xAB>" for byte 0xAB (upper-case hex, the SentencePiece / HF spelling).
inline std::string ByteTokenText(uint8_t b) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string s = "<0x00>";
  s[3] = kHex[b >> 4];
  s[4] = kHex[b & 15];
  return s;
}

// The byte of a "<0xAB>" piece (upper- or lower-case hex digits), or -1.
inline int ParseByteTokenText(std::string_view s) {
  if (s.size() != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(s[3]), lo = hex(s[4]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

}  // namespace gembed::tokenizer_internal
