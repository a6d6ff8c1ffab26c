// Status / Result<T>: how every layer reports errors. Library code never
// aborts on input; it returns a Status. Codes map to C API codes and HTTP
// status codes at the edges.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace gembed {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,  // bad user input (CLI flag, text, request)
  kNotFound = 2,         // missing file, key or tensor
  kIoError = 3,          // open/read/write/mmap failed
  kCorruptFile = 4,      // a file's bytes break its format's rules
  kUnsupported = 5,      // valid but not handled (dtype, version, arch)
  kOutOfRange = 6,       // a size or index past a limit
  kResourceExhausted = 7,
  kInternal = 8,
  kCancelled = 9,         // the caller cancelled the operation
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corrupt file: <message>"
  std::string ToString() const;

  // Returns a copy with "context: " prepended to the message.
  Status WithContext(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename... Args>
Status MakeStatus(StatusCode code, fmt::format_string<Args...> f, Args&&... args) {
  return Status(code, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status InvalidArgument(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kInvalidArgument, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status NotFound(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kNotFound, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status IoError(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kIoError, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status CorruptFile(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kCorruptFile, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status Unsupported(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kUnsupported, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status OutOfRange(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kOutOfRange, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status ResourceExhausted(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kResourceExhausted, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status Cancelled(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kCancelled, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status Internal(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kInternal, fmt::format(f, std::forward<Args>(args)...));
}

// Result<T>: a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}           // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}    // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace gembed

#define GEMBED_CONCAT_INNER_(a, b) a##b
#define GEMBED_CONCAT_(a, b) GEMBED_CONCAT_INNER_(a, b)

#define GEMBED_RETURN_IF_ERROR(expr)               \
  do {                                             \
    ::gembed::Status gembed_status_ = (expr);      \
    if (!gembed_status_.ok()) return gembed_status_; \
  } while (0)

#define GEMBED_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

// GEMBED_ASSIGN_OR_RETURN(auto x, MakeX());
#define GEMBED_ASSIGN_OR_RETURN(lhs, expr) \
  GEMBED_ASSIGN_OR_RETURN_IMPL_(GEMBED_CONCAT_(gembed_result_, __LINE__), lhs, expr)
