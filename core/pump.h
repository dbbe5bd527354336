// The pump: once a session knows its upstream, bytes flow both ways between two
// ByteStreams until both sides are done. Per direction, one of two ways to move them:
//   copy   Fill/Peek from the source, Write to the destination: through the ring with
//          no system call per message, and the only way when TLS is on either side.
//   splice socket -> pipe -> socket with splice(2), readiness from the ring: bytes never
//          enter user space. Only when both ends are plain sockets.
// With both ends plain, kAuto starts each direction in copy mode and moves it to
// splice once it streams (several full buffers in a row), and back to copy when the
// stream pauses; kCopy and kSplice pin one way. Otherwise it is always copy.
//
// Semantics in every mode: each direction runs until its source reports EOF, then
// ends its destination's write side (TLS: close_notify, then FIN) and stops; the pump
// ends when both have. An error on either side, a send that makes no progress for
// send_timeout_ms, the idle timeout (no byte in either direction for idle_timeout_ms)
// or Stop() ends both directions at once: the streams are aborted (a sticky flag and
// shutdown(2) of both sockets), so no wait can outlive the stop. One exception: a send
// that fails on a plain socket (the peer reset it) ends only its own direction; the
// other one reads that socket on, delivers what the peer sent before its reset, and
// ends the pump at the reset (a dead socket answers at once; a send that direction
// waits on first ends as sends do, by progress or send_timeout_ms). Idle means no
// byte moved: a slow reader still taking what is queued for it (its socket's
// acknowledged count moves on) keeps the pump alive. Bytes are never
// reordered or dropped, and back-pressure holds: a direction does not read more
// while its destination has not taken what it wrote.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/buffer_ring.h"
#include "core/byte_stream.h"
#include "core/config.h"
#include "core/deadline.h"
#include "core/idle_sweeper.h"
#include "core/pipe_pool.h"
#include "core/result.h"
#include "core/sync.h"
#include "core/task.h"

namespace ringproxy {

enum class PumpEnd : uint8_t {
  kClosed,           // both sides sent EOF and everything was delivered
  kIdleTimeout,      // no traffic for idle_timeout_ms
  kDownstreamError,  // the client side failed (reset, broken pipe, send timeout, TLS)
  kUpstreamError,    // the server side failed
  kStopped,          // Stop() (drain deadline, shutdown)
};

std::string_view PumpEndName(PumpEnd end);

struct PumpResult {
  PumpEnd end = PumpEnd::kClosed;
  int error = 0;  // errno for the error ends (ETIMEDOUT: a send made no progress)
  uint64_t bytes_to_upstream = 0;
  uint64_t bytes_to_downstream = 0;
  uint64_t mode_switches = 0;  // copy <-> splice changes (kAuto)
};

struct PumpOptions {
  int64_t idle_timeout_ms = 600000;
  int64_t send_timeout_ms = 60000;
  RelayMode mode = RelayMode::kAuto;  // when both ends are plain sockets
  // kAuto: consecutive full receive buffers that make a direction switch to splice.
  int splice_after_full_buffers = 4;
};

// What the pump borrows from its shard: the pipe pool, the provided-buffer ring (its
// buffer size tells a full read from a short one) and the idle sweeper (the idle
// timeout is the sweeper's, not a timer per operation).
struct PumpResources {
  PipePool* pipes = nullptr;
  BufferRing* buffers = nullptr;
  IdleSweeper* sweeper = nullptr;
};

// How SpliceExactly ended.
enum class SpliceEnd : uint8_t {
  kDone,
  kSourceEof,      // the source ended before n bytes
  kSourceTimeout,  // no byte from the source for read_timeout_ms
  kSourceError,    // the source failed (or was aborted)
  kSinkError,      // the destination failed
  kSinkTimeout,    // the destination took nothing for send_timeout_ms
};

// Moves exactly `n` bytes from `from` to `to`, both plain sockets: what `from` has
// received already goes first by copy, the rest through a pipe with splice(2), never
// entering user space (an HTTP body of known length). Bytes after the n-th stay in the
// source. *moved counts what reached `to`.
Task<SpliceEnd> SpliceExactly(PlainStream* from, PlainStream* to, uint64_t n, PipePool* pipes,
                              int64_t read_timeout_ms, int64_t send_timeout_ms, uint64_t* moved);

class Pump {
 public:
  // The streams stay the caller's; quiesce them after Run() returns.
  Pump(ByteStream* downstream, ByteStream* upstream, PumpResources resources, PumpOptions options);
  Pump(const Pump&) = delete;
  Pump& operator=(const Pump&) = delete;

  // Runs until the pump ends (see above). Await it once.
  Task<PumpResult> Run();
  // Ends the pump from outside (drain deadline, shutdown); Run() returns kStopped.
  void Stop();

 private:
  struct Direction {
    ByteStream* from;
    ByteStream* to;
    bool to_upstream;
    uint64_t bytes = 0;
    bool done = false;  // its Flow has returned
    // The destination socket's acknowledged bytes at the last idle check.
    uint64_t acked = 0;
    bool acked_known = false;
  };
  enum class StepEnd : uint8_t { kEof, kSwitch, kFailed };

  Task<void> Flow(int which, Gate::Holder holder);
  Task<StepEnd> CopyPhase(Direction& d);
  Task<StepEnd> SplicePhase(Direction& d);
  // Moves what the source received before a switch to splice; kSwitch when done.
  Task<StepEnd> DrainBeforeSplice(Direction& d);
  Task<bool> Deliver(Direction& d, std::span<const std::byte> data);
  bool CanSplice(const Direction& d);
  void Touch() { watch_.Touch(TurnNowNs()); }
  Deadline SendDeadline() const { return Deadline::AfterMs(options_.send_timeout_ms); }
  static void OnIdle(IdleWatch* watch, void* self);
  bool StillDelivering();
  void Fail(const Direction& d, int error, bool on_source);
  void Abort(PumpEnd end, int error);

  ByteStream* downstream_;
  ByteStream* upstream_;
  PumpResources resources_;
  PumpOptions options_;
  Direction dirs_[2];
  IdleWatch watch_;
  uint64_t mode_switches_ = 0;
  bool aborted_ = false;
  bool failed_ = false;  // end_ is set: a send failed, the other direction drains
  PumpEnd end_ = PumpEnd::kClosed;
  int error_ = 0;
};

}  // namespace ringproxy
