#include "proto/relay.h"

#include <poll.h>
#include <sys/socket.h>

#include "core/ops.h"
#include "core/reactor.h"
#include "core/recv_stream.h"
#include "core/socket.h"

namespace ringproxy {

std::string_view RelayEndName(RelayEnd end) {
  switch (end) {
    case RelayEnd::kClosed:
      return "closed";
    case RelayEnd::kIdleTimeout:
      return "idle_timeout";
    case RelayEnd::kDownstreamError:
      return "downstream_error";
    case RelayEnd::kUpstreamError:
      return "upstream_error";
    case RelayEnd::kStopped:
      return "stopped";
    case RelayEnd::kInternalError:
      return "internal_error";
  }
  return "?";
}

namespace {

// One splice call moves at most this much; the pipe's capacity caps it anyway.
constexpr size_t kSpliceChunk = 1 << 20;
// Receive buffers a direction may hold before its multishot pauses (back-pressure).
constexpr uint32_t kMaxQueuedBuffers = 4;
// kAuto: a spliced direction whose reads come in this small this many times in a row
// is interactive again and goes back to copy mode.
constexpr int kSmallSplicesToCopy = 4;

}  // namespace

Relay::Relay(int downstream_fd, int upstream_fd, RelayResources resources, RelayOptions options)
    : downstream_fd_(downstream_fd),
      upstream_fd_(upstream_fd),
      resources_(resources),
      options_(options),
      dirs_{{downstream_fd, upstream_fd, true}, {upstream_fd, downstream_fd, false}},
      watch_(&Relay::OnIdle, this) {}

void Relay::OnIdle(IdleWatch* /*watch*/, void* self) {
  static_cast<Relay*>(self)->Abort(RelayEnd::kIdleTimeout, 0);
}

void Relay::Abort(RelayEnd end, int error) {
  if (aborted_) return;
  aborted_ = true;
  end_ = end;
  error_ = error;
  // Wake whichever direction is parked in the ring; it sees aborted_ and ends.
  Reactor* reactor = Reactor::Current();
  reactor->CancelFd(downstream_fd_);
  reactor->CancelFd(upstream_fd_);
}

void Relay::Stop() { Abort(RelayEnd::kStopped, 0); }

void Relay::Fail(const Direction& d, int error, bool on_source) {
  // Which socket failed: the source (read) or the destination (write).
  bool downstream = d.to_upstream ? on_source : !on_source;
  Abort(downstream ? RelayEnd::kDownstreamError : RelayEnd::kUpstreamError, error);
}

Task<Relay::StepEnd> Relay::CopyPhase(Direction& d) {
  RecvStream stream(*resources_.buffers, d.from, kMaxQueuedBuffers);
  StepEnd result = StepEnd::kFailed;
  int full_in_a_row = 0;
  const uint32_t full = resources_.buffers->buffer_size();
  bool switching = false;
  while (!aborted_) {
    Received r = co_await stream.Next(Deadline::Never());
    if (aborted_) break;
    if (r.status.res == 0) {
      result = StepEnd::kEof;
      break;
    }
    if (!r.status.ok()) {
      if (r.status.cancelled()) continue;
      Fail(d, r.status.error(), true);
      break;
    }
    std::span<const std::byte> data = r.buffer.data();
    while (!data.empty() && !aborted_) {
      IoResult s = co_await Send(d.to, data, Deadline::Never());
      if (aborted_) break;
      if (!s.ok()) {
        if (s.cancelled()) continue;
        Fail(d, s.error(), false);
        break;
      }
      data = data.subspan(s.value());
      d.bytes += s.value();
      Touch();
    }
    if (aborted_) break;
    if (options_.mode == RelayMode::kAuto) {
      full_in_a_row = r.buffer.size() == full ? full_in_a_row + 1 : 0;
      if (full_in_a_row >= options_.splice_after_full_buffers) {
        switching = true;
        result = StepEnd::kSwitch;
        break;
      }
    }
  }
  co_await stream.Stop();
  if (switching) {
    // What was received before the switch goes out first, in order.
    Received r;
    while (!aborted_ && stream.TryTake(&r)) {
      if (r.status.res == 0) {
        result = StepEnd::kEof;
        break;
      }
      if (!r.status.ok()) {
        Fail(d, r.status.error(), true);
        result = StepEnd::kFailed;
        break;
      }
      IoResult s = co_await SendAll(d.to, r.buffer.data(), Deadline::Never());
      if (!s.ok()) {
        if (!aborted_) Fail(d, s.error(), false);
        result = StepEnd::kFailed;
        break;
      }
      d.bytes += s.value();
      Touch();
    }
  }
  co_return aborted_ ? StepEnd::kFailed : result;
}

Task<Relay::StepEnd> Relay::SplicePhase(Direction& d) {
  PipePool& pool = *resources_.pipes;
  Pipe pipe;
  size_t in_pipe = 0;
  StepEnd result = StepEnd::kFailed;
  int small_in_a_row = 0;
  const size_t small = resources_.buffers != nullptr ? resources_.buffers->buffer_size() : 16384;
  while (!aborted_) {
    if (in_pipe == 0) {
      if (options_.mode == RelayMode::kAuto && small_in_a_row >= kSmallSplicesToCopy) {
        result = StepEnd::kSwitch;
        break;
      }
      if (!pipe.valid()) {
        IoResult got = pool.Acquire(&pipe);
        if (!got.ok()) {
          Abort(RelayEnd::kInternalError, got.error());
          break;
        }
      }
      IoResult r = SpliceNow(d.from, pipe.write_fd, kSpliceChunk);
      if (r.res == -EAGAIN) {
        // Nothing to read: give the (empty) pipe back while we wait.
        pool.Release(pipe);
        pipe = Pipe{};
        IoResult ready = co_await Poll(d.from, POLLIN | POLLRDHUP, Deadline::Never());
        if (aborted_) break;
        if (!ready.ok() && !ready.cancelled()) {
          Fail(d, ready.error(), true);
          break;
        }
        continue;
      }
      if (r.res == 0) {
        result = StepEnd::kEof;
        break;
      }
      if (!r.ok()) {
        Fail(d, r.error(), true);
        break;
      }
      in_pipe = r.value();
      small_in_a_row = in_pipe < small ? small_in_a_row + 1 : 0;
      Touch();
    }
    IoResult w = co_await Splice(pipe.read_fd, d.to, in_pipe, d.to, POLLOUT, Deadline::Never());
    if (aborted_) break;
    if (!w.ok()) {
      if (w.cancelled()) continue;
      Fail(d, w.error(), false);
      break;
    }
    in_pipe -= w.value();
    d.bytes += w.value();
    Touch();
  }
  if (pipe.valid()) {
    if (in_pipe == 0) {
      pool.Release(pipe);
    } else {
      pool.Discard(pipe);
    }
  }
  co_return aborted_ ? StepEnd::kFailed : result;
}

Task<void> Relay::Pump(int which, Gate::Holder /*holder*/) {
  Direction& d = dirs_[which];
  bool splice = options_.mode == RelayMode::kSplice;
  while (!aborted_) {
    StepEnd end;  // not ?: with co_await in the arms (core/task.h)
    if (splice) {
      end = co_await SplicePhase(d);
    } else {
      end = co_await CopyPhase(d);
    }
    if (end == StepEnd::kEof) {
      // Everything the source sent has been delivered: pass the EOF on.
      if (!aborted_) shutdown(d.to, SHUT_WR);
      break;
    }
    if (end == StepEnd::kFailed) break;
    splice = !splice;
    ++mode_switches_;
  }
}

Task<RelayResult> Relay::Run() {
  resources_.sweeper->Add(&watch_, options_.idle_timeout_ms, MonotonicNowNs());
  Gate gate;
  Spawn(Pump(0, gate.Enter()));
  Spawn(Pump(1, gate.Enter()));
  co_await gate.Wait();
  resources_.sweeper->Remove(&watch_);
  RelayResult result;
  result.end = aborted_ ? end_ : RelayEnd::kClosed;
  result.error = error_;
  result.bytes_to_upstream = dirs_[0].bytes;
  result.bytes_to_downstream = dirs_[1].bytes;
  result.mode_switches = mode_switches_;
  co_return result;
}

}  // namespace ringproxy
