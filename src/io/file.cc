#include "io/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace gembed {

const char* FileKindName(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

Result<RegularFile> RegularFile::Open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO for reading does not wait for a writer (it
  // has no effect on a regular file's reads, and is cleared below anyway).
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return IoError("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return IoError("{}: cannot stat: {}", path, std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return IoError("{}: not a regular file ({})", path, FileKindName(st.st_mode));
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    const int e = errno;
    ::close(fd);
    return IoError("{}: cannot set file flags: {}", path, std::strerror(e));
  }
  return RegularFile(fd, static_cast<uint64_t>(st.st_size));
}

RegularFile::RegularFile(RegularFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), size_(other.size_) {}

RegularFile& RegularFile::operator=(RegularFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
  }
  return *this;
}

RegularFile::~RegularFile() {
  if (fd_ >= 0) ::close(fd_);
}

Result<size_t> RegularFile::Read(void* buf, size_t n, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::read(fd_, static_cast<char*>(buf) + done, n - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return IoError("{}: read failed: {}", path, std::strerror(errno));
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

Result<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes) {
  GEMBED_ASSIGN_OR_RETURN(RegularFile f, RegularFile::Open(path));
  if (f.size() > max_bytes) return OutOfRange("{}: {} bytes, more than the {} allowed", path, f.size(), max_bytes);
  std::string data(static_cast<size_t>(f.size()), '\0');
  GEMBED_ASSIGN_OR_RETURN(size_t n, f.Read(data.data(), data.size(), path));
  data.resize(n);  // the file may have shrunk since fstat
  // A file that grew since fstat: read what fits in the limit, refuse beyond it.
  char extra;
  GEMBED_ASSIGN_OR_RETURN(size_t more, f.Read(&extra, 1, path));
  if (more != 0) {
    if (data.size() + 1 > max_bytes) return OutOfRange("{}: more than the {} bytes allowed", path, max_bytes);
    return IoError("{}: the file changed size while it was read", path);
  }
  return data;
}

}  // namespace gembed
