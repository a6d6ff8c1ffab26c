#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <utility>

#include "io/file.h"

namespace gembed {
namespace {

// The folder that holds `path` ("." for a bare name).
std::string ParentDir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string RandomSuffix() {
  static std::atomic<uint64_t> counter{0};
  std::random_device rd;
  const uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ (counter.fetch_add(1) * 0x9E3779B97F4A7C15ull) ^
                     static_cast<uint64_t>(::getpid());
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s;
  uint64_t v = r;
  for (int i = 0; i < 10; ++i) {
    s += kAlphabet[v % 36];
    v /= 36;
  }
  return s;
}

}  // namespace

Status CheckWritableTarget(const std::string& path) {
  if (path.empty()) return InvalidArgument("empty output path");
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return IoError("{}: cannot stat: {}", path, std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return InvalidArgument("{}: exists and is not a regular file ({}); refusing to replace it", path,
                           FileKindName(st.st_mode));
  }
  return Status::Ok();
}

Result<AtomicFile> AtomicFile::Create(const std::string& path) {
  GEMBED_RETURN_IF_ERROR(CheckWritableTarget(path));
  mode_t mode = 0666;  // minus the umask, applied by open(2)
  bool keep_mode = false;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    mode = st.st_mode & 0777;
    keep_mode = true;
  }
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string temp = path + ".tmp." + RandomSuffix();
    int fd;
    do {
      fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      if (errno == EEXIST) continue;  // taken (or a planted link): another name
      return IoError("{}: cannot create a temporary file in {}: {}", path, ParentDir(path), std::strerror(errno));
    }
    AtomicFile f(path, std::move(temp), fd);
    // The replaced file's permission bits, exactly (open applied the umask).
    if (keep_mode && ::fchmod(fd, mode) != 0) {
      return IoError("{}: cannot set the mode of {}: {}", path, f.temp_, std::strerror(errno));
    }
    return f;
  }
  return IoError("{}: cannot create a temporary file in {}: every name tried exists", path, ParentDir(path));
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      temp_(std::move(other.temp_)),
      fd_(std::exchange(other.fd_, -1)),
      committed_(std::exchange(other.committed_, true)) {}

AtomicFile::~AtomicFile() { Abandon(); }

void AtomicFile::Abandon() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
  committed_ = true;  // nothing left to clean up
}

Status AtomicFile::Write(const void* data, size_t n) {
  if (fd_ < 0) return Internal("{}: write after the file was closed", path_);
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      Abandon();
      return IoError("{}: write failed: {}", path_, std::strerror(e));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status AtomicFile::Commit() {
  if (fd_ < 0) return Internal("{}: commit after the file was closed", path_);
  auto fail = [&](const char* what) {
    const int e = errno;
    Abandon();
    return IoError("{}: {}: {}", path_, what, std::strerror(e));
  };
  if (::fsync(fd_) != 0) return fail("fsync failed");
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) return fail("close failed");
  // The target may have been replaced by something else meanwhile; rename
  // only ever replaces the directory entry, never writes through it.
  GEMBED_RETURN_IF_ERROR([&] {
    Status st = CheckWritableTarget(path_);
    if (!st.ok()) Abandon();
    return st;
  }());
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    Abandon();
    return IoError("cannot rename {} to {}: {}", temp_, path_, std::strerror(e));
  }
  committed_ = true;
  // Make the rename durable. Some file systems cannot fsync a folder
  // (EINVAL); the data itself is already on disk.
  const std::string dir = ParentDir(path_);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return IoError("{}: cannot open its folder {}: {}", path_, dir, std::strerror(errno));
  const int r = ::fsync(dfd);
  const int e = errno;
  ::close(dfd);
  if (r != 0 && e != EINVAL && e != EROFS) return IoError("{}: fsync of folder {} failed: {}", path_, dir, std::strerror(e));
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view data) {
  GEMBED_ASSIGN_OR_RETURN(AtomicFile f, AtomicFile::Create(path));
  GEMBED_RETURN_IF_ERROR(f.Write(data));
  return f.Commit();
}

}  // namespace gembed
