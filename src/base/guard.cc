#include "base/guard.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <new>
#include <system_error>

namespace gembed {

std::string CurrentExceptionMessage() {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return "out of memory (std::bad_alloc)";
  } catch (const std::system_error& e) {
    return fmt::format("system error: {} ({}:{})", e.what(), e.code().category().name(), e.code().value());
  } catch (const std::exception& e) {
    return fmt::format("internal error: {}", e.what());
  } catch (...) {
    return "internal error: an unknown exception";
  }
}

Status CurrentExceptionStatus() {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kResourceExhausted, CurrentExceptionMessage());
  } catch (...) {
    return Status(StatusCode::kInternal, CurrentExceptionMessage());
  }
}

void ReportFatalError(std::string_view program, std::string_view message) {
  // Built on the stack and written with one write(2): no allocation, so it
  // also works right after a bad_alloc; long messages are cut.
  char buf[4096];
  size_t n = 0;
  auto put = [&](std::string_view s) {
    for (char c : s) {
      if (n + 1 >= sizeof(buf)) return;
      buf[n++] = c;
    }
  };
  put(program);
  put(": error: ");
  put(message);
  buf[n++] = '\n';
  size_t off = 0;
  while (off < n) {
    const ssize_t w = ::write(STDERR_FILENO, buf + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    off += static_cast<size_t>(w);
  }
}

}  // namespace gembed
