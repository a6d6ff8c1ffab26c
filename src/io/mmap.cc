#include "io/mmap.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "io/file.h"

namespace gembed {

Result<std::unique_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  // RegularFile: a FIFO is refused instead of blocking in open(2).
  GEMBED_ASSIGN_OR_RETURN(RegularFile file, RegularFile::Open(path));
  std::unique_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = file.size();
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, file.fd(), 0);
    if (p == MAP_FAILED) return IoError("{}: cannot mmap: {}", path, std::strerror(errno));
    f->data_ = static_cast<const uint8_t*>(p);
  }
  return f;  // the mapping keeps the file alive after the descriptor closes
}

MappedFile::~MappedFile() {
  if (data_ && size_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace gembed
