// Invariant checks for programmer errors only (never for input validation,
// which returns a Status). GEMBED_CHECK is always on; GEMBED_DCHECK only in
// debug builds, for hot loops.
#pragma once

#include <cstdio>
#include <cstdlib>

#define GEMBED_CHECK(cond)                                                       \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "%s:%d: GEMBED_CHECK failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                       \
      std::abort();                                                              \
    }                                                                            \
  } while (0)

#ifdef NDEBUG
#define GEMBED_DCHECK(cond) \
  do {                      \
  } while (0)
#else
#define GEMBED_DCHECK(cond) GEMBED_CHECK(cond)
#endif
