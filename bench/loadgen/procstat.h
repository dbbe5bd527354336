// Reads what a target process costs from /proc: CPU time (user + system) and resident
// memory of the process and all its descendants (a multi-process nginx counts whole).
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace ringproxy::loadgen {

struct ProcessUsage {
  double cpu_seconds = 0;  // utime + stime, all threads, tree-wide
  uint64_t rss_bytes = 0;  // VmRSS summed over the tree
  int processes = 0;
};

ProcessUsage ReadUsage(pid_t root);

}  // namespace ringproxy::loadgen
