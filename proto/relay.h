// The plaintext relay: after a session knows its upstream, bytes flow both ways by
// splice(2) through a pipe borrowed from the shard's pool, never through user space.
//
// Semantics: each direction runs until its source reports EOF, then shuts down the
// write side of its destination (half-close honoured) and ends; the relay ends when
// both have. An error on either side (reset, broken pipe), the idle timeout (no byte
// in either direction for idle_timeout_ms) or Stop() ends both directions at once.
// Bytes are never reordered or dropped: a direction only takes more input when its
// pipe is empty.
#pragma once

#include <cstdint>

#include "core/deadline.h"
#include "core/pipe_pool.h"
#include "core/result.h"
#include "core/sync.h"
#include "core/task.h"

namespace ringproxy {

enum class RelayEnd : uint8_t {
  kClosed,           // both sides sent EOF and everything was delivered
  kIdleTimeout,      // no traffic for idle_timeout_ms
  kDownstreamError,  // the client side failed (reset, broken pipe)
  kUpstreamError,    // the server side failed
  kStopped,          // Stop() (drain deadline, shutdown)
  kInternalError,    // no pipe could be had (descriptor limit)
};

std::string_view RelayEndName(RelayEnd end);

struct RelayResult {
  RelayEnd end = RelayEnd::kClosed;
  int error = 0;  // errno for the error ends
  uint64_t bytes_to_upstream = 0;
  uint64_t bytes_to_downstream = 0;
};

struct RelayOptions {
  int64_t idle_timeout_ms = 600000;
};

class SpliceRelay {
 public:
  SpliceRelay(int downstream_fd, int upstream_fd, PipePool& pipes, RelayOptions options);
  SpliceRelay(const SpliceRelay&) = delete;
  SpliceRelay& operator=(const SpliceRelay&) = delete;

  // Runs until the relay ends (see above). Await it once.
  Task<RelayResult> Run();
  // Ends the relay from outside (e.g. drain deadline); Run() then returns kStopped.
  void Stop();

  // Bytes moved so far (readable while running).
  uint64_t bytes_to_upstream() const { return dirs_[0].bytes; }
  uint64_t bytes_to_downstream() const { return dirs_[1].bytes; }

 private:
  struct Direction {
    int from;
    int to;
    uint64_t bytes = 0;
    bool done = false;
  };
  // `holder` keeps Run()'s gate open until this direction's frame is gone.
  Task<void> Pump(int which, Gate::Holder holder);
  void Abort(RelayEnd end, int error);

  int downstream_fd_;
  int upstream_fd_;
  PipePool& pipes_;
  RelayOptions options_;
  Direction dirs_[2];
  int64_t last_activity_ns_ = 0;
  bool aborted_ = false;
  RelayEnd end_ = RelayEnd::kClosed;
  int error_ = 0;
};

}  // namespace ringproxy
