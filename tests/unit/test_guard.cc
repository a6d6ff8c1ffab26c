// RunGuarded: an exception that escapes a face of gembed becomes one line on
// stderr and exit status 1, never std::terminate's abort.
#include <gtest/gtest.h>

#include <functional>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "base/guard.h"

namespace gembed {
namespace {

// Runs RunGuarded("gembed", fn) and returns (exit status, what it printed).
template <typename F>
std::pair<int, std::string> Guarded(F fn) {
  ::testing::internal::CaptureStderr();
  const int rc = RunGuarded("gembed", fn);
  return {rc, ::testing::internal::GetCapturedStderr()};
}

TEST(RunGuarded, PassesTheResultThrough) {
  const auto [rc, err] = Guarded([] { return 7; });
  EXPECT_EQ(rc, 7);
  EXPECT_EQ(err, "");
}

TEST(RunGuarded, EachKindOfExceptionIsOneLineAndExitOne) {
  struct Case {
    std::function<int()> fn;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {[]() -> int { throw std::bad_alloc(); }, "gembed: error: out of memory (std::bad_alloc)\n"},
      {[]() -> int { throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again), "thread"); },
       "gembed: error: system error: thread: Resource temporarily unavailable (generic:11)\n"},
      {[]() -> int { throw std::runtime_error("boom"); }, "gembed: error: internal error: boom\n"},
      {[]() -> int { throw 42; }, "gembed: error: internal error: an unknown exception\n"},
  };
  for (const Case& c : cases) {
    const auto [rc, err] = Guarded(c.fn);
    EXPECT_EQ(rc, 1);
    EXPECT_EQ(err, c.expect);
  }
}

// A real allocation failure (not a hand-thrown bad_alloc).
TEST(RunGuarded, HugeAllocationIsReported) {
  const auto [rc, err] = Guarded([] {
    std::vector<char> v;
    v.reserve(static_cast<size_t>(1) << 62);  // far beyond any address space
    return 0;
  });
  EXPECT_EQ(rc, 1);
  // vector::reserve may throw length_error instead on some libraries.
  EXPECT_TRUE(err == "gembed: error: out of memory (std::bad_alloc)\n" ||
              err.rfind("gembed: error: internal error: ", 0) == 0)
      << err;
}

TEST(RunGuarded, StatusForOtherFaces) {
  try {
    throw std::bad_alloc();
  } catch (...) {
    const Status s = CurrentExceptionStatus();
    EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
    EXPECT_EQ(s.message(), "out of memory (std::bad_alloc)");
  }
  try {
    throw std::logic_error("bug");
  } catch (...) {
    const Status s = CurrentExceptionStatus();
    EXPECT_EQ(s.code(), StatusCode::kInternal);
    EXPECT_EQ(s.message(), "internal error: bug");
  }
}

}  // namespace
}  // namespace gembed
