// Leveled logging to stderr, with an optional user callback (the C API and the
// server route messages elsewhere). The level is process-wide: it is the only
// global, and it only affects what is printed.
#pragma once

#include <fmt/format.h>

#include <functional>
#include <string>

namespace gembed {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kSilent = 4 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Replaces stderr output; pass nullptr to restore it.
void SetLogCallback(std::function<void(LogLevel, const std::string&)> callback);
void LogMessage(LogLevel level, const std::string& message);

template <typename... Args>
void Log(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
  if (level < GetLogLevel()) return;
  LogMessage(level, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace gembed
