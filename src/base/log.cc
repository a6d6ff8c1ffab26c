#include "base/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace gembed {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_mu;
std::function<void(LogLevel, const std::string&)> g_callback;

const char* LevelTag(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
    default: return "";
  }
}
}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

void SetLogCallback(std::function<void(LogLevel, const std::string&)> callback) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_callback = std::move(callback);
}

void LogMessage(LogLevel level, const std::string& message) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_callback) {
    g_callback(level, message);
    return;
  }
  std::fprintf(stderr, "gembed %s: %s\n", LevelTag(level), message.c_str());
}

}  // namespace gembed
