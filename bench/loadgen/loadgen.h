// The load generator's model: options, per-thread statistics, and the scenarios.
// One thread per core given, each with its own reactor (core/shard.h); a run is
// bounded by duration and/or count and stops by itself. See docs/loadgen.md.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/loadgen/histogram.h"
#include "core/socket.h"
#include "core/task.h"

namespace ringproxy::loadgen {

struct Options {
  std::string scenario;  // bulk | idle | tcp-echo | serve
  SocketAddress target;
  std::string target_text;
  int threads = 1;
  std::vector<int> cpus;  // pin thread i to cpus[i % n]; empty: not pinned
  int connections = 1;    // total, split over threads
  double duration_s = 10;
  uint64_t count = 0;     // total operations (0: duration only)
  size_t size = 65536;    // bulk: send chunk; tcp-echo: message size
  double hold_s = 5;      // idle: how long to hold the connections
  int batch = 500;        // idle: connects in flight at once
  size_t send_first = 0;  // idle: bytes sent and echoed before holding (makes a relay connect)
  double connect_timeout_s = 5;
  double io_timeout_s = 10;
  pid_t measure_pid = 0;  // CPU and RSS of this process tree are measured
  std::string label;
  std::string json_path;  // also append the JSON line here
  // serve
  SocketAddress listen;
  std::string listen_text;
};

absl::StatusOr<Options> ParseOptions(int argc, char** argv);
std::string Usage();

// What one thread saw. Merged by the runner after the threads finish.
struct Stats {
  uint64_t ops = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t connects = 0;
  uint64_t connect_failures = 0;
  uint64_t verified_bytes = 0;
  Histogram latency_ns;
  std::map<std::string, uint64_t> errors;
  // idle
  uint64_t opened = 0;
  uint64_t closed_early = 0;

  void Error(std::string_view what, int err);
  void Merge(const Stats& o);
  uint64_t errors_total() const;
};

// Shared by the threads of one run.
struct RunControl {
  int64_t start_ns = 0;  // when measured work starts
  int64_t end_ns = 0;    // when it stops (duration runs)
  std::atomic<int> threads_ready{0};  // idle: threads whose connections are open
  std::atomic<bool> release{false};   // idle: time to close
  std::atomic<bool> stop{false};      // serve: stop serving
};

struct ThreadContext {
  const Options* options = nullptr;
  RunControl* control = nullptr;
  int index = 0;
  int connections = 0;  // this thread's share
  uint64_t count = 0;   // this thread's share (0: unbounded)
  Stats stats;
};

Task<void> RunBulk(ThreadContext* ctx);
Task<void> RunIdle(ThreadContext* ctx);
Task<void> RunTcpEcho(ThreadContext* ctx);
Task<void> RunServe(ThreadContext* ctx);

// Connects with the run's connect timeout; counts the outcome in ctx->stats.
Task<UniqueFd> ConnectTarget(ThreadContext* ctx);

// Runs the scenario and prints the JSON line (stdout) and summary (stderr).
// Returns the process exit code: 0 ok, 1 target unreachable or bad usage,
// 3 the target misbehaved (errors were counted).
int RunLoadgen(const Options& options);

}  // namespace ringproxy::loadgen
