#include "io/line_reader.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace gembed {

Result<std::vector<std::string>> ReadLinesFromFd(int fd, const std::string& name, const LineLimits& limits) {
  constexpr size_t kChunk = 64 * 1024;
  const auto buf = std::make_unique<char[]>(kChunk);
  std::vector<std::string> lines;
  std::string line;  // the line being read (may end in a '\r' not yet known to precede '\n')
  uint64_t total = 0;
  auto too_long = [&] {
    return OutOfRange("{}: line {} is longer than {} bytes (the limit for one text)", name, lines.size() + 1,
                      limits.max_line_bytes);
  };
  auto finish_line = [&]() -> Status {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() > limits.max_line_bytes) return too_long();
    if (lines.size() >= limits.max_lines) {
      return OutOfRange("{}: more than {} lines (the limit); split it into several runs", name, limits.max_lines);
    }
    lines.push_back(std::move(line));
    line.clear();
    return Status::Ok();
  };
  for (;;) {
    const ssize_t r = ::read(fd, buf.get(), kChunk);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EISDIR) return IoError("{} is a directory, not a file", name);
      return IoError("{}: read failed: {}", name, std::strerror(errno));
    }
    if (r == 0) break;
    total += static_cast<uint64_t>(r);
    if (total > limits.max_total_bytes) {
      return OutOfRange("{}: more than {} bytes of input (the limit); split it into several runs", name,
                        limits.max_total_bytes);
    }
    const char* p = buf.get();
    const char* end = p + r;
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      const char* stop = nl != nullptr ? nl : end;
      // +1: a '\r' that a following '\n' will drop may sit at the end.
      if (line.size() + static_cast<size_t>(stop - p) > limits.max_line_bytes + 1) return too_long();
      line.append(p, stop);
      if (nl == nullptr) break;
      GEMBED_RETURN_IF_ERROR(finish_line());
      p = nl + 1;
    }
  }
  if (!line.empty()) GEMBED_RETURN_IF_ERROR(finish_line());
  return lines;
}

}  // namespace gembed
