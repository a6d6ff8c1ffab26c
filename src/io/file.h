// Opening files that gembed reads as a whole (models, tokenizer.json, the
// JSON configuration files): they must be regular files. open(2) on a FIFO
// blocks until a writer appears, and a device or a directory has no useful
// size, so every reader goes through OpenRegularFile: it opens with
// O_NONBLOCK (a FIFO opens at once), checks fstat's S_ISREG and only then
// clears O_NONBLOCK. Errors (kIoError) name the path:
//   "<path>: cannot open: No such file or directory"
//   "<path>: not a regular file (a FIFO)"
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "base/status.h"

namespace gembed {

// "a FIFO", "a directory", "a character device", "a block device",
// "a socket", "a symbolic link", "a regular file" (st_mode from stat/lstat).
const char* FileKindName(mode_t mode);

// An open read-only descriptor (O_CLOEXEC) of a regular file, with its
// size. Closes the descriptor when destroyed.
class RegularFile {
 public:
  static Result<RegularFile> Open(const std::string& path);
  RegularFile(RegularFile&& other) noexcept;
  RegularFile& operator=(RegularFile&& other) noexcept;
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;
  ~RegularFile();

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }

  // Reads up to n bytes at the current offset; returns how many were read
  // (fewer only at the end of the file). Retries EINTR.
  Result<size_t> Read(void* buf, size_t n, const std::string& path);

 private:
  RegularFile(int fd, uint64_t size) : fd_(fd), size_(size) {}
  int fd_ = -1;
  uint64_t size_ = 0;
};

// The whole content of the regular file at path. A file larger than
// max_bytes is kOutOfRange ("<path>: N bytes, more than the M allowed").
Result<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes);

}  // namespace gembed
