// MappedFile: a read-only memory mapping of a whole file. Weights are used in
// place from the mapping (zero copy); the OS pages them in on demand.
// Errors (kIoError) read "<path>: cannot open: <reason>" and the like; only
// regular files are mapped ("<path>: not a regular file (a FIFO)"), and a
// FIFO is refused without blocking (io/file.h).
// The mapping is private and read-only; as with any mmap, truncating the file
// while it is mapped makes later reads fault (SIGBUS), so model files must not
// be rewritten in place (GgufWriter::WriteFile writes a temp file and renames).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"

namespace gembed {

class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  std::string path_;
};

}  // namespace gembed
