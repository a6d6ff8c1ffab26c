// AtomicFile: how gembed writes every output file (GGUF and safetensors
// writers, so synth / convert / tokenize --write-gguf-vocab, and
// `embed --output`). Readers never see a half-written file, and writing
// never goes through a file that is not ours:
//   1. the target must not exist, or be a regular file (lstat: a symbolic
//      link, device, FIFO, directory or socket is refused; so `-o /dev/null`
//      run as root does not replace the device node);
//   2. the data goes to a new temporary file next to the target, created
//      with O_CREAT|O_EXCL|O_NOFOLLOW under a random name (a symbolic link
//      planted at a predictable "OUT.tmp" is never followed);
//   3. Commit() fsyncs it, renames it over the target and fsyncs the folder;
//   4. on any error, or if Commit() is never called, the temporary file is
//      removed and the target is left as it was.
// The new file gets the mode of the file it replaces (permission bits), or
// 0666 minus the umask.
// Errors (kIoError / kInvalidArgument) name the path:
//   "<path>: exists and is not a regular file (a character device); refusing to replace it"
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.h"

namespace gembed {

class AtomicFile {
 public:
  static Result<AtomicFile> Create(const std::string& path);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();  // not committed: closes and removes the temporary file

  Status Write(const void* data, size_t n);
  Status Write(std::string_view s) { return Write(s.data(), s.size()); }
  // fsync, close, rename over the target, fsync the folder. Once only.
  Status Commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }

 private:
  AtomicFile(std::string path, std::string temp, int fd) : path_(std::move(path)), temp_(std::move(temp)), fd_(fd) {}
  void Abandon();
  std::string path_, temp_;
  int fd_ = -1;
  bool committed_ = false;
};

// Create + Write + Commit.
Status WriteFileAtomically(const std::string& path, std::string_view data);

// Ok when `path` does not exist or is a regular file (not following a
// symbolic link); otherwise kInvalidArgument as above. AtomicFile::Create
// checks this itself; a face may call it to fail before doing any work.
Status CheckWritableTarget(const std::string& path);

}  // namespace gembed
