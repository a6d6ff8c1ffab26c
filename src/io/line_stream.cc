#include "io/line_stream.h"

#include <cerrno>
#include <cstring>
#include <unistd.h>

namespace gembed {

namespace {
constexpr size_t kChunk = 64 * 1024;
}

LineStream::LineStream(int fd, std::string name, uint64_t max_line_bytes, uint64_t start_offset,
                       uint64_t start_line)
    : fd_(fd), name_(std::move(name)), max_line_bytes_(max_line_bytes), buf_(kChunk),
      offset_(start_offset), line_number_(start_line) {}

Status LineStream::Fill() {
  pos_ = 0;
  end_ = 0;
  for (;;) {
    const ssize_t n = ::read(fd_, buf_.data(), buf_.size());
    if (n > 0) {
      end_ = static_cast<size_t>(n);
      return Status::Ok();
    }
    if (n == 0) {
      eof_ = true;
      return Status::Ok();
    }
    if (errno == EINTR) continue;
    if (errno == EISDIR) return IoError("{} is a directory, not a file", name_);
    return IoError("{}: read failed: {}", name_, std::strerror(errno));
  }
}

Result<bool> LineStream::Next(std::string* line) {
  line->clear();
  // Drop what is left of a line that was too long.
  while (skipping_) {
    if (pos_ == end_) {
      if (eof_) return false;
      GEMBED_RETURN_IF_ERROR(Fill());
      if (pos_ == end_) return false;
    }
    const char* start = buf_.data() + pos_;
    const void* nl = std::memchr(start, '\n', end_ - pos_);
    const size_t take = nl ? static_cast<size_t>(static_cast<const char*>(nl) - start) + 1 : end_ - pos_;
    pos_ += take;
    offset_ += take;
    if (nl) skipping_ = false;
  }
  bool any = false;  // saw at least one byte of this line (or its terminator)
  for (;;) {
    if (pos_ == end_) {
      if (eof_) break;
      GEMBED_RETURN_IF_ERROR(Fill());
      if (pos_ == end_) break;  // end of input
    }
    const char* start = buf_.data() + pos_;
    const size_t avail = end_ - pos_;
    const void* nl = std::memchr(start, '\n', avail);
    const size_t take = nl ? static_cast<size_t>(static_cast<const char*>(nl) - start) : avail;
    any = true;
    line->append(start, take);
    pos_ += take;
    offset_ += take;
    // +1: a '\r' before the newline is not part of the text.
    if (line->size() > max_line_bytes_ + 1 || (nl && line->size() == max_line_bytes_ + 1 && line->back() != '\r')) {
      ++line_number_;
      line->clear();
      line->shrink_to_fit();
      if (nl) {
        ++pos_;
        ++offset_;
      } else {
        skipping_ = true;
      }
      return OutOfRange("{}: line {} is longer than {} bytes (the limit for one text)", name_, line_number_,
                        max_line_bytes_);
    }
    if (nl) {
      ++pos_;
      ++offset_;
      break;
    }
  }
  if (!any) return false;
  ++line_number_;
  if (!line->empty() && line->back() == '\r') line->pop_back();
  if (line->size() > max_line_bytes_) {  // max+1 bytes at the end of the input, without a newline
    line->clear();
    return OutOfRange("{}: line {} is longer than {} bytes (the limit for one text)", name_, line_number_,
                      max_line_bytes_);
  }
  return true;
}

}  // namespace gembed
