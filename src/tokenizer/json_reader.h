// JsonReader: a small pull parser for JSON (RFC 8259), used for
// tokenizer.json (33 MB for Gemma3) without building a DOM.
//
// Error model: the first error is sticky. Every method returns false once
// the reader has failed, and status() says what went wrong and at which byte
// offset. Callers can therefore chain reads and check status() at the end.
// Limits: nesting depth 256; strings must be valid UTF-8 (as serde_json
// requires); \u escapes must not be lone surrogates.
//
// Iteration protocol:
//   BeginObject(); while (NextMember(&key)) { ...read or Skip() the value... }
//   BeginArray();  while (NextElement())    { ...read or Skip() the value... }
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace gembed::tokenizer_internal {

enum class JsonKind { kObject, kArray, kString, kNumber, kBool, kNull, kEnd, kInvalid };

class JsonReader {
 public:
  explicit JsonReader(std::string_view json) : json_(json) {}

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  size_t offset() const { return pos_; }

  // Kind of the next value (skips whitespace); kEnd at the end of input.
  JsonKind Peek();

  bool BeginObject();
  // Reads the next member's key (and the ':'); false at '}' (consumed) or on error.
  bool NextMember(std::string* key);
  bool BeginArray();
  // True if another element follows (its value is next); false at ']' (consumed) or on error.
  bool NextElement();

  // Decoded string value into *out (replaces its contents).
  bool ReadString(std::string* out);
  // Decoded string value appended to *out.
  bool AppendString(std::string* out);
  bool ReadInt64(int64_t* v);
  bool ReadDouble(double* v);
  bool ReadBool(bool* v);
  bool ReadNull();
  // Reads a string or null: null gives *is_null = true and an empty *out.
  bool ReadStringOrNull(std::string* out, bool* is_null);
  // Skips one value of any kind.
  bool Skip();
  // True if only whitespace is left; otherwise fails.
  bool ExpectEnd();

  // Fails with `message` (kept if an error is already recorded).
  bool Fail(std::string_view message);

 private:
  void SkipWhitespace();
  bool Expect(char c);
  bool ParseStringInto(std::string* out);  // appends
  bool ScanNumber(std::string_view* token);
  bool SkipString();

  std::string_view json_;
  size_t pos_ = 0;
  Status status_;
  // One entry per open container: true while no element has been read yet.
  std::vector<bool> first_;
};

}  // namespace gembed::tokenizer_internal
