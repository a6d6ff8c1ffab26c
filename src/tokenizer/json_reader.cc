#include "tokenizer/json_reader.h"

#include <charconv>
#include <cstring>

#include "tokenizer/utf8.h"

namespace gembed::tokenizer_internal {

namespace {
constexpr size_t kMaxDepth = 256;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

bool JsonReader::Fail(std::string_view message) {
  if (status_.ok()) {
    status_ = CorruptFile("JSON: {} at byte {}", message, pos_);
  }
  return false;
}

void JsonReader::SkipWhitespace() {
  // Pretty-printed files (tokenizer.json) indent with runs of spaces.
  while (pos_ + 8 <= json_.size() && std::memcmp(json_.data() + pos_, "        ", 8) == 0) pos_ += 8;
  while (pos_ < json_.size()) {
    const char c = json_[pos_];
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
    ++pos_;
  }
}

bool JsonReader::Expect(char c) {
  if (!ok()) return false;
  SkipWhitespace();
  if (pos_ >= json_.size()) return Fail(fmt::format("expected '{}', found end of input", c));
  if (json_[pos_] != c) return Fail(fmt::format("expected '{}'", c));
  ++pos_;
  return true;
}

JsonKind JsonReader::Peek() {
  if (!ok()) return JsonKind::kInvalid;
  SkipWhitespace();
  if (pos_ >= json_.size()) return JsonKind::kEnd;
  const char c = json_[pos_];
  switch (c) {
    case '{': return JsonKind::kObject;
    case '[': return JsonKind::kArray;
    case '"': return JsonKind::kString;
    case 't':
    case 'f': return JsonKind::kBool;
    case 'n': return JsonKind::kNull;
    default:
      if (c == '-' || (c >= '0' && c <= '9')) return JsonKind::kNumber;
      return JsonKind::kInvalid;
  }
}

bool JsonReader::BeginObject() {
  if (!Expect('{')) return false;
  if (first_.size() >= kMaxDepth) return Fail("nesting too deep");
  first_.push_back(true);
  return true;
}

bool JsonReader::BeginArray() {
  if (!Expect('[')) return false;
  if (first_.size() >= kMaxDepth) return Fail("nesting too deep");
  first_.push_back(true);
  return true;
}

bool JsonReader::NextMember(std::string* key) {
  if (!ok()) return false;
  if (first_.empty()) return Fail("NextMember outside an object");
  SkipWhitespace();
  if (pos_ >= json_.size()) return Fail("unterminated object");
  if (json_[pos_] == '}') {
    ++pos_;
    first_.pop_back();
    return false;
  }
  if (!first_.back()) {
    if (json_[pos_] != ',') return Fail("expected ',' or '}' in object");
    ++pos_;
    SkipWhitespace();
  }
  first_.back() = false;
  if (pos_ >= json_.size() || json_[pos_] != '"') return Fail("expected a string key");
  key->clear();
  if (!ParseStringInto(key)) return false;
  return Expect(':');
}

bool JsonReader::NextElement() {
  if (!ok()) return false;
  if (first_.empty()) return Fail("NextElement outside an array");
  SkipWhitespace();
  if (pos_ >= json_.size()) return Fail("unterminated array");
  if (json_[pos_] == ']') {
    ++pos_;
    first_.pop_back();
    return false;
  }
  if (!first_.back()) {
    if (json_[pos_] != ',') return Fail("expected ',' or ']' in array");
    ++pos_;
    SkipWhitespace();
  }
  first_.back() = false;
  if (pos_ >= json_.size()) return Fail("unterminated array");
  return true;
}

bool JsonReader::ParseStringInto(std::string* out) {
  // pos_ is at the opening quote.
  ++pos_;
  const auto* p = reinterpret_cast<const unsigned char*>(json_.data());
  const size_t n = json_.size();
  size_t run = pos_;  // start of the current unescaped run
  while (true) {
    // Skip 8 plain bytes at a time: none of '"', '\\', < 0x20, >= 0x80.
    while (pos_ + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + pos_, 8);
      constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
      auto zero_bytes = [&](uint64_t x) { return (x - kOnes) & ~x & kHigh; };
      const uint64_t special = zero_bytes(w ^ (kOnes * '"')) | zero_bytes(w ^ (kOnes * '\\')) |
                               ((w - kOnes * 0x20) & ~w & kHigh) | (w & kHigh);
      if (special != 0) break;
      pos_ += 8;
    }
    if (pos_ >= n) return Fail("unterminated string");
    const unsigned char c = p[pos_];
    if (c == '"') {
      out->append(json_.data() + run, pos_ - run);
      ++pos_;
      return true;
    }
    if (c < 0x20) return Fail("control character in string");
    if (c < 0x80 && c != '\\') {
      ++pos_;
      continue;
    }
    if (c >= 0x80) {
      const int len = Utf8SequenceLength(p + pos_, n - pos_);
      if (len == 0) return Fail("invalid UTF-8 in string");
      pos_ += static_cast<size_t>(len);
      continue;
    }
    // Escape sequence.
    out->append(json_.data() + run, pos_ - run);
    if (pos_ + 1 >= n) return Fail("unterminated escape");
    const char e = json_[pos_ + 1];
    pos_ += 2;
    switch (e) {
      case '"': out->push_back('"'); break;
      case '\\': out->push_back('\\'); break;
      case '/': out->push_back('/'); break;
      case 'b': out->push_back('\b'); break;
      case 'f': out->push_back('\f'); break;
      case 'n': out->push_back('\n'); break;
      case 'r': out->push_back('\r'); break;
      case 't': out->push_back('\t'); break;
      case 'u': {
        auto read4 = [&](uint32_t* v) -> bool {
          if (pos_ + 4 > n) return false;
          uint32_t x = 0;
          for (int k = 0; k < 4; ++k) {
            const int h = HexValue(json_[pos_ + k]);
            if (h < 0) return false;
            x = x * 16 + static_cast<uint32_t>(h);
          }
          pos_ += 4;
          *v = x;
          return true;
        };
        uint32_t cp = 0;
        if (!read4(&cp)) return Fail("bad \\u escape");
        if (cp >= 0xDC00 && cp <= 0xDFFF) return Fail("lone low surrogate in \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t lo = 0;
          if (pos_ + 2 > n || json_[pos_] != '\\' || json_[pos_ + 1] != 'u') {
            return Fail("lone high surrogate in \\u escape");
          }
          pos_ += 2;
          if (!read4(&lo) || lo < 0xDC00 || lo > 0xDFFF) return Fail("bad surrogate pair in \\u escape");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        Utf8Append(cp, out);
        break;
      }
      default:
        return Fail("bad escape in string");
    }
    run = pos_;
  }
}

bool JsonReader::ReadString(std::string* out) {
  out->clear();
  return AppendString(out);
}

bool JsonReader::AppendString(std::string* out) {
  if (Peek() != JsonKind::kString) return Fail("expected a string");
  return ParseStringInto(out);
}

bool JsonReader::ReadStringOrNull(std::string* out, bool* is_null) {
  const JsonKind k = Peek();
  if (k == JsonKind::kNull) {
    out->clear();
    *is_null = true;
    return ReadNull();
  }
  *is_null = false;
  return ReadString(out);
}

bool JsonReader::ScanNumber(std::string_view* token) {
  if (Peek() != JsonKind::kNumber) return Fail("expected a number");
  const size_t start = pos_;
  const size_t n = json_.size();
  auto digit = [&](size_t i) { return i < n && json_[i] >= '0' && json_[i] <= '9'; };
  if (json_[pos_] == '-') ++pos_;
  if (!digit(pos_)) return Fail("bad number");
  if (json_[pos_] == '0') {
    ++pos_;
  } else {
    while (digit(pos_)) ++pos_;
  }
  if (pos_ < n && json_[pos_] == '.') {
    ++pos_;
    if (!digit(pos_)) return Fail("bad number");
    while (digit(pos_)) ++pos_;
  }
  if (pos_ < n && (json_[pos_] == 'e' || json_[pos_] == 'E')) {
    ++pos_;
    if (pos_ < n && (json_[pos_] == '+' || json_[pos_] == '-')) ++pos_;
    if (!digit(pos_)) return Fail("bad number");
    while (digit(pos_)) ++pos_;
  }
  *token = json_.substr(start, pos_ - start);
  return true;
}

bool JsonReader::ReadInt64(int64_t* v) {
  const size_t start = pos_;
  std::string_view tok;
  if (!ScanNumber(&tok)) return false;
  const auto res = std::from_chars(tok.data(), tok.data() + tok.size(), *v);
  if (res.ec != std::errc() || res.ptr != tok.data() + tok.size()) {
    pos_ = start;
    return Fail("expected an integer");
  }
  return true;
}

bool JsonReader::ReadDouble(double* v) {
  std::string_view tok;
  if (!ScanNumber(&tok)) return false;
  const auto res = std::from_chars(tok.data(), tok.data() + tok.size(), *v);
  if (res.ec != std::errc() && res.ec != std::errc::result_out_of_range) return Fail("bad number");
  return true;
}

bool JsonReader::ReadBool(bool* v) {
  if (Peek() != JsonKind::kBool) return Fail("expected true or false");
  if (json_.substr(pos_, 4) == "true") {
    *v = true;
    pos_ += 4;
    return true;
  }
  if (json_.substr(pos_, 5) == "false") {
    *v = false;
    pos_ += 5;
    return true;
  }
  return Fail("expected true or false");
}

bool JsonReader::ReadNull() {
  if (Peek() != JsonKind::kNull || json_.substr(pos_, 4) != "null") return Fail("expected null");
  pos_ += 4;
  return true;
}

bool JsonReader::SkipString() {
  ++pos_;  // opening quote
  const size_t n = json_.size();
  while (pos_ < n) {
    const char c = json_[pos_];
    if (c == '"') {
      ++pos_;
      return true;
    }
    pos_ += (c == '\\') ? 2 : 1;
  }
  return Fail("unterminated string");
}

bool JsonReader::Skip() {
  switch (Peek()) {
    case JsonKind::kObject: {
      if (!BeginObject()) return false;
      std::string key;
      while (NextMember(&key)) {
        if (!Skip()) return false;
      }
      return ok();
    }
    case JsonKind::kArray: {
      if (!BeginArray()) return false;
      while (NextElement()) {
        if (!Skip()) return false;
      }
      return ok();
    }
    case JsonKind::kString:
      return SkipString();
    case JsonKind::kNumber: {
      std::string_view tok;
      return ScanNumber(&tok);
    }
    case JsonKind::kBool: {
      bool b;
      return ReadBool(&b);
    }
    case JsonKind::kNull:
      return ReadNull();
    case JsonKind::kEnd:
      return Fail("unexpected end of input");
    default:
      return Fail("unexpected character");
  }
}

bool JsonReader::ExpectEnd() {
  if (!ok()) return false;
  SkipWhitespace();
  if (pos_ != json_.size()) return Fail("trailing characters after the JSON value");
  return true;
}

}  // namespace gembed::tokenizer_internal
