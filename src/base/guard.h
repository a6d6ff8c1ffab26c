// RunGuarded: the one last-resort handler for exceptions that escape a face
// of gembed (the CLI's main, later the server's request loop and the Python
// module). Library code returns Status and does not throw on input; what
// can still escape is std::bad_alloc (out of memory), std::system_error
// (a thread or a lock could not be created) and exceptions of the
// libraries underneath (nlohmann::json, CLI11, the standard library). Each
// becomes one line of text instead of std::terminate's abort:
//
//   gembed: error: out of memory (std::bad_alloc)
//   gembed: error: system error: Resource temporarily unavailable (generic:11)
//   gembed: error: internal error: <what()>
//   gembed: error: internal error: an unknown exception
//
// The text after "error: " is CurrentExceptionMessage(); a face that reports
// errors another way (an HTTP status, a Python exception) uses
// CurrentExceptionStatus() inside its own catch (...) to get the same text.
#pragma once

#include <exception>
#include <string>
#include <string_view>
#include <utility>

#include "base/status.h"

namespace gembed {

// Must be called inside a catch block: the message for the exception being
// handled ("out of memory (std::bad_alloc)", ...).
std::string CurrentExceptionMessage();

// Must be called inside a catch block: kResourceExhausted for bad_alloc,
// kInternal for everything else, with CurrentExceptionMessage() as message.
Status CurrentExceptionStatus();

// Writes "<program>: error: <message>\n" to stderr (one write, unbuffered).
void ReportFatalError(std::string_view program, std::string_view message);

// Exit status RunGuarded returns when fn throws.
inline constexpr int kGuardedFailureExit = 1;

// Runs fn() (which returns an exit status) and returns its result; if fn
// throws, reports the exception as above and returns kGuardedFailureExit.
template <typename F>
int RunGuarded(std::string_view program, F&& fn) noexcept {
  try {
    return std::forward<F>(fn)();
  } catch (...) {
    std::string message;
    try {
      message = CurrentExceptionMessage();
    } catch (...) {  // formatting the message ran out of memory too
      message = "out of memory";
    }
    ReportFatalError(program, message);
    return kGuardedFailureExit;
  }
}

}  // namespace gembed
