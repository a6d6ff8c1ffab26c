#include "input.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gembed::cli {

Result<std::vector<std::string>> ReadInputLines(const std::string& path, const LineLimits& limits) {
  if (path.empty() || path == "-") return ReadLinesFromFd(STDIN_FILENO, "standard input", limits);
  const std::string name = fmt::format("--input '{}'", path);
  // Not O_NONBLOCK: a FIFO or a pipe (`--input <(cmd)`) is a fine input.
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return NotFound("cannot open {}: {}", name, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return IoError("{} is a directory, not a file", name);
  }
  auto lines = ReadLinesFromFd(fd, name, limits);
  ::close(fd);
  return lines;
}

}  // namespace gembed::cli
