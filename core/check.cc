#include "core/check.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "core/log.h"
#include "core/result.h"

namespace ringproxy {
namespace {
std::atomic<uint64_t> g_soft_bugs{0};
}  // namespace

void CheckFailed(const char* file, int line, const char* expr) {
  // Straight to stderr: the log writer may be the thing that is broken.
  char buf[512];
  int n = snprintf(buf, sizeof(buf), "CHECK failed at %s:%d: %s\n", file, line, expr);
  if (n > 0) {
    ssize_t w = write(STDERR_FILENO, buf, static_cast<size_t>(n));
    (void)w;
  }
  abort();
}

void SoftBug(const char* file, int line, const char* expr) {
  g_soft_bugs.fetch_add(1, std::memory_order_relaxed);
  if (file != nullptr)
    RP_LOG(kError, "soft bug at {}:{}: {} (counted; reported once)", file, line, expr);
}

uint64_t SoftBugCount() { return g_soft_bugs.load(std::memory_order_relaxed); }

std::string_view SideName(Side side) {
  switch (side) {
    case Side::kDownstream:
      return "downstream";
    case Side::kUpstream:
      return "upstream";
    case Side::kInternal:
      return "internal";
  }
  return "?";
}

}  // namespace ringproxy
