// LineStream: the lines of a file or pipe, one at a time, with bounded memory
// (a 64 KiB read buffer plus at most one line of `max_line_bytes`), so a corpus
// of any size streams through `gembed embed` and a stream that never ends
// (`yes | gembed embed`, /dev/zero) cannot exhaust memory.
//
// Lines: '\n' ends a line and one '\r' before it is dropped; a final line
// without a newline counts; an empty stream has no lines. Bytes are returned
// as they are (validation is the caller's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace gembed {

class LineStream {
 public:
  // Reads `fd` (not owned; must stay open) from its current position, which
  // the caller may have set (`start_offset` is then the byte offset reported
  // for it and `start_line` the number of lines before it). `name` names the
  // input in messages, e.g. "--input 'corpus.jsonl'".
  LineStream(int fd, std::string name, uint64_t max_line_bytes, uint64_t start_offset = 0,
             uint64_t start_line = 0);

  // The next line into *line. Returns false at the end of the input.
  // A line longer than max_line_bytes is kOutOfRange naming its number, as
  // soon as the limit is passed (an endless line, e.g. /dev/zero, fails at
  // once); a later Next() first skips the rest of that line, so the caller
  // may go on with the next one.
  // kIoError if reading fails (EISDIR: "... is a directory, not a file").
  Result<bool> Next(std::string* line);

  uint64_t line_number() const { return line_number_; }  // of the line last returned (1-based)
  uint64_t offset() const { return offset_; }  // bytes up to the end of the last line, terminator included

 private:
  Status Fill();  // reads more into buf_; sets eof_

  int fd_;
  std::string name_;
  uint64_t max_line_bytes_;
  std::vector<char> buf_;
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
  bool skipping_ = false;  // the rest of a too-long line is still to be dropped
  uint64_t offset_ = 0, line_number_ = 0;
};

}  // namespace gembed
