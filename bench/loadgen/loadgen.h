// The load generator's model: options, per-thread statistics, and the scenarios.
// One thread per core given, each with its own reactor (core/shard.h); a run is
// bounded by duration and/or count and stops by itself. See docs/loadgen.md.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/loadgen/histogram.h"
#include "core/socket.h"
#include "core/task.h"

namespace ringproxy {
class TlsClientContext;
}  // namespace ringproxy

namespace ringproxy::loadgen {

class TlsClient;

struct Options {
  // bulk | idle | tcp-echo | tls-handshake | http | imap-login | pop3-login | serve |
  // imap-serve | pop3-serve
  std::string scenario;
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
  bool greeting = false;  // idle: read the server's greeting line before holding (mail)
  double rate = 0;        // open loop: operations per second in total (0: closed loop)
  // TLS over each connection (bulk, tcp-echo, idle, tls-handshake, imap-login, pop3-login;
  // docs/loadgen.md)
  bool tls = false;
  int tls_version = 0;  // 12 or 13: only that version; 0: both
  std::string sni;      // server name sent, and checked when ca_file is set
  std::string ca_file;  // verify the target's chain against these CAs (empty: no check)
  bool resume = false;  // offer the previous handshake's session on each connection slot
  // http
  std::string path = "/";
  std::string host;  // Host header (default: the target address)
  bool keepalive = true;
  int pipeline = 1;
  size_t request_size = 0;   // > 0: POST with a body of this many bytes
  int64_t expect_size = -1;  // response body size to check (-1: any)
  int expect_status = 200;
  std::string expect_fill;  // each response body is this repeated ("": any bytes)
  // imap-login, pop3-login
  std::string users_file;     // lines "user password" (or "user": --password applies)
  std::string user = "user";  // without a file: user<n>, n = 1..users_count
  std::string password = "secret";
  int users_count = 1000;
  std::vector<std::pair<std::string, std::string>> users;  // loaded from users_file
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
  // --tls: completed handshakes, full or resumed, and by what was negotiated
  // ("TLSv1.3 TLS13-AES128-GCM-SHA256 SECP256R1": version, suite, key exchange group)
  uint64_t tls_full = 0;
  uint64_t tls_resumed = 0;
  std::map<std::string, uint64_t, std::less<>> tls_negotiated;

  void Error(std::string_view what, int err);
  void Merge(const Stats& o);
  uint64_t errors_total() const;
};

// Shared by the threads of one run.
struct RunControl {
  int64_t start_ns = 0;               // when measured work starts
  int64_t end_ns = 0;                 // when it stops (duration runs)
  std::atomic<int> threads_ready{0};  // idle: threads whose connections are open
  std::atomic<bool> release{false};   // idle: time to close
  std::atomic<bool> stop{false};      // serve: stop serving
  // --tls: made once per run on the main thread, read-only afterwards
  std::shared_ptr<const TlsClientContext> tls_context;
};

struct ThreadContext {
  const Options* options = nullptr;
  RunControl* control = nullptr;
  int index = 0;
  int connections = 0;       // this thread's share
  uint64_t count = 0;        // this thread's share of --count (may be 0)
  TlsClient* tls = nullptr;  // --tls: the thread's TLS client (bench/loadgen/tls_client.h)
  Stats stats;
};

Task<void> RunBulk(ThreadContext* ctx);
Task<void> RunIdle(ThreadContext* ctx);
Task<void> RunTcpEcho(ThreadContext* ctx);
Task<void> RunTlsHandshake(ThreadContext* ctx);
Task<void> RunServe(ThreadContext* ctx);
Task<void> RunHttp(ThreadContext* ctx);
Task<void> RunImapLogin(ThreadContext* ctx);
Task<void> RunPop3Login(ThreadContext* ctx);
Task<void> RunImapServe(ThreadContext* ctx);
Task<void> RunPop3Serve(ThreadContext* ctx);

// The scenarios that serve (--listen) rather than load a target: serve, imap-serve,
// pop3-serve.
bool IsServer(std::string_view scenario);

// Every scenario by name: ParseOptions checks names against it, the runner dispatches
// on it. nullptr when there is no such scenario.
using ScenarioFn = Task<void> (*)(ThreadContext*);
ScenarioFn FindScenario(std::string_view name);

// Paces an open-loop run: each call waits until the next intended start and returns
// it, so latency is measured from when the operation *should* have started (correct
// under coordinated omission). Closed loop (rate 0): returns now, never waits.
class Pacer {
 public:
  Pacer(const ThreadContext* ctx, int connection_index);
  Task<int64_t> Next();
  // When the next operation is due: its intended start, or now in closed loop.
  int64_t due_ns() const;

 private:
  int64_t interval_ns_ = 0;
  int64_t next_ns_ = 0;
};

// Takes up to `want` operations from the thread's share; returns how many may run
// (0: the run is over, by time or by count). The time is the pacer's due time: in open
// loop an operation due before the end runs however late a stall made it.
uint64_t KeepGoing(ThreadContext* ctx, const Pacer& pacer, uint64_t* remaining, uint64_t want = 1);
Deadline IoDeadline(const ThreadContext* ctx);

// Connects with the run's connect timeout; counts the outcome in ctx->stats.
Task<UniqueFd> ConnectTarget(ThreadContext* ctx);

// Runs the scenario and prints the JSON line (stdout) and summary (stderr).
// Returns the process exit code: 0 ok, 1 target unreachable or bad usage,
// 3 the target misbehaved (errors were counted).
int RunLoadgen(const Options& options);

}  // namespace ringproxy::loadgen
