// Assertions in three tiers (Envoy STYLE.md, HAProxy bug.h):
//   CHECK        always on; for invariants whose violation would corrupt memory.
//   DCHECK       debug builds only; for hot paths.
//   SOFT_BUG     release-safe: counts the event and logs it once per call site.
// Nothing here is for input a peer can send: that is a protocol error with a test.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace ringproxy {

[[noreturn]] void CheckFailed(const char* file, int line, const char* expr);
void SoftBug(const char* file, int line, const char* expr);
uint64_t SoftBugCount();

}  // namespace ringproxy

#define RP_CHECK(cond)                                     \
  do {                                                     \
    if (__builtin_expect(!(cond), 0)) {                    \
      ::ringproxy::CheckFailed(__FILE__, __LINE__, #cond); \
    }                                                      \
  } while (0)

#ifdef NDEBUG
#define RP_DCHECK(cond) \
  do {                  \
    (void)sizeof(cond); \
  } while (0)
#else
#define RP_DCHECK(cond) RP_CHECK(cond)
#endif

// Evaluates to `cond`; when false, counts it and logs the first occurrence per site.
#define RP_SOFT_BUG_IF(cond)                                   \
  ([&]() -> bool {                                             \
    if (__builtin_expect(!!(cond), 0)) {                       \
      static std::atomic<bool> reported{false};                \
      if (!reported.exchange(true, std::memory_order_relaxed)) \
        ::ringproxy::SoftBug(__FILE__, __LINE__, #cond);       \
      else                                                     \
        ::ringproxy::SoftBug(nullptr, 0, nullptr);             \
      return true;                                             \
    }                                                          \
    return false;                                              \
  }())
