// Reading texts one per line from a stream (`gembed embed`, `gembed bench
// --input`; later the server's batch files) with bounded memory: the input
// is read in chunks and split as it arrives, so a stream that never ends
// (`yes | gembed embed`, `--input /dev/zero`) or a single huge line stops
// with an error at the limit instead of growing until std::bad_alloc.
//
// Lines: '\n' ends a line and one '\r' before it is dropped; a final line
// without a newline counts; an empty stream has no lines. Bytes are kept as
// they are (NUL, invalid UTF-8).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace gembed {

struct LineLimits {
  // Bytes of one line, without its "\n" / "\r\n".
  uint64_t max_line_bytes = uint64_t{1} << 20;  // 1 MiB (~250,000 tokens, 120x the context)
  // Bytes of the whole input (line terminators included).
  uint64_t max_total_bytes = uint64_t{1} << 30;  // 1 GiB
  // Number of lines: each costs memory beyond its bytes (and an embedding
  // of 3 KiB later), so a stream of empty lines is bounded too.
  uint64_t max_lines = uint64_t{1} << 20;  // 1,048,576
};

// Reads `fd` to its end. `name` names the input in messages, e.g.
// "--input 'texts.txt'" or "standard input". Errors:
//   kOutOfRange "<name>: line 3 is longer than 1048576 bytes (the limit for one text)"
//   kOutOfRange "<name>: more than 1073741824 bytes of input (the limit); split it into several runs"
//   kOutOfRange "<name>: more than 1048576 lines (the limit); split it into several runs"
//   kIoError    "<name>: read failed: <reason>" (EISDIR: "<name> is a directory, not a file")
Result<std::vector<std::string>> ReadLinesFromFd(int fd, const std::string& name, const LineLimits& limits = {});

}  // namespace gembed
