// The plaintext relay: once a session knows its upstream, bytes flow both ways until
// both sides are done. Two ways to move them, per direction:
//   copy   multishot recv into the shard's provided buffers, then send, all through the
//          ring: no syscall per message, so it wins for interactive traffic.
//   splice socket -> pipe -> socket with splice(2), readiness from the ring: bytes never
//          enter user space, so it wins for bulk.
// kAuto starts each direction in copy mode and moves it to splice once it streams
// (several full buffers in a row); it moves back to copy when the stream pauses.
//
// Semantics, in every mode: each direction runs until its source reports EOF, then
// shuts down the write side of its destination (half-close honoured) and ends; the
// relay ends when both have. An error on either side (reset, broken pipe), the idle
// timeout (no byte in either direction for idle_timeout_ms) or Stop() ends both
// directions at once. Bytes are never reordered or dropped.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/buffer_ring.h"
#include "core/config.h"
#include "core/deadline.h"
#include "core/idle_sweeper.h"
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
  uint64_t mode_switches = 0;  // copy <-> splice changes (kAuto)
};

struct RelayOptions {
  int64_t idle_timeout_ms = 600000;
  RelayMode mode = RelayMode::kAuto;
  // kAuto: consecutive full receive buffers that make a direction switch to splice.
  int splice_after_full_buffers = 4;
};

// Where the relay borrows from: the shard's pipe pool, provided-buffer ring and idle
// sweeper (the idle timeout is enforced by the sweeper, not by a timer per operation).
struct RelayResources {
  PipePool* pipes = nullptr;
  BufferRing* buffers = nullptr;
  IdleSweeper* sweeper = nullptr;
};

class Relay {
 public:
  Relay(int downstream_fd, int upstream_fd, RelayResources resources, RelayOptions options);
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Runs until the relay ends (see above). Await it once.
  Task<RelayResult> Run();
  // Ends the relay from outside (drain deadline, shutdown); Run() returns kStopped.
  void Stop();

 private:
  struct Direction {
    int from;
    int to;
    bool to_upstream;
    uint64_t bytes = 0;
  };
  enum class StepEnd : uint8_t { kEof, kSwitch, kFailed };

  Task<void> Pump(int which, Gate::Holder holder);
  Task<StepEnd> CopyPhase(Direction& d);
  Task<StepEnd> SplicePhase(Direction& d);
  void Touch() { watch_.Touch(MonotonicNowNs()); }
  static void OnIdle(IdleWatch* watch, void* self);
  void Fail(const Direction& d, int error, bool on_source);
  void Abort(RelayEnd end, int error);

  int downstream_fd_;
  int upstream_fd_;
  RelayResources resources_;
  RelayOptions options_;
  Direction dirs_[2];
  IdleWatch watch_;
  uint64_t mode_switches_ = 0;
  bool aborted_ = false;
  RelayEnd end_ = RelayEnd::kClosed;
  int error_ = 0;
};

}  // namespace ringproxy
