#include "proto/relay.h"

#include <poll.h>
#include <sys/socket.h>

#include "core/ops.h"
#include "core/reactor.h"
#include "core/sync.h"

namespace ringproxy {

std::string_view RelayEndName(RelayEnd end) {
  switch (end) {
    case RelayEnd::kClosed: return "closed";
    case RelayEnd::kIdleTimeout: return "idle_timeout";
    case RelayEnd::kDownstreamError: return "downstream_error";
    case RelayEnd::kUpstreamError: return "upstream_error";
    case RelayEnd::kStopped: return "stopped";
    case RelayEnd::kInternalError: return "internal_error";
  }
  return "?";
}

namespace {

// One splice call moves at most this much; the pipe's capacity caps it anyway.
constexpr size_t kSpliceChunk = 1 << 20;

}  // namespace

SpliceRelay::SpliceRelay(int downstream_fd, int upstream_fd, PipePool& pipes, RelayOptions options)
    : downstream_fd_(downstream_fd),
      upstream_fd_(upstream_fd),
      pipes_(pipes),
      options_(options),
      dirs_{{downstream_fd, upstream_fd}, {upstream_fd, downstream_fd}} {}

void SpliceRelay::Abort(RelayEnd end, int error) {
  if (aborted_) return;
  aborted_ = true;
  end_ = end;
  error_ = error;
  // Wake whichever direction is parked in the ring; it sees aborted_ and ends.
  Reactor* reactor = Reactor::Current();
  reactor->CancelFd(downstream_fd_);
  reactor->CancelFd(upstream_fd_);
}

void SpliceRelay::Stop() { Abort(RelayEnd::kStopped, 0); }

Task<void> SpliceRelay::Pump(int which, Gate::Holder /*holder*/) {
  Direction& d = dirs_[which];
  const bool to_upstream = which == 0;
  const int64_t idle_ns = options_.idle_timeout_ms * 1'000'000;
  Pipe pipe;
  size_t in_pipe = 0;
  bool eof = false;
  auto fail = [&](int error, bool on_source) {
    // Which side failed: the source (read) or the destination (write) socket.
    bool downstream = to_upstream ? on_source : !on_source;
    Abort(downstream ? RelayEnd::kDownstreamError : RelayEnd::kUpstreamError, error);
  };
  while (!aborted_) {
    if (in_pipe == 0) {
      if (eof) break;
      if (!pipe.valid()) {
        IoResult got = pipes_.Acquire(&pipe);
        if (!got.ok()) {
          Abort(RelayEnd::kInternalError, got.error());
          break;
        }
      }
      IoResult r = SpliceNow(d.from, pipe.write_fd, kSpliceChunk);
      if (r.res == -EAGAIN) {
        // Nothing to read: give the (empty) pipe back while we wait.
        pipes_.Release(pipe);
        pipe = Pipe{};
        Deadline deadline = Deadline::AtNs(last_activity_ns_ + idle_ns);
        IoResult ready = co_await Poll(d.from, POLLIN | POLLRDHUP, deadline);
        if (aborted_) break;
        if (ready.timed_out()) {
          if (MonotonicNowNs() - last_activity_ns_ >= idle_ns) {
            Abort(RelayEnd::kIdleTimeout, 0);
            break;
          }
          continue;  // the other direction was busy: wait again with a later deadline
        }
        if (!ready.ok() && !ready.cancelled()) {
          fail(ready.error(), true);
          break;
        }
        continue;
      }
      if (r.res == 0) {
        eof = true;
        continue;
      }
      if (!r.ok()) {
        fail(r.error(), true);
        break;
      }
      in_pipe = r.value();
      last_activity_ns_ = MonotonicNowNs();
    }
    // Drain the pipe into the destination.
    Deadline deadline = Deadline::AtNs(last_activity_ns_ + idle_ns);
    IoResult w = co_await Splice(pipe.read_fd, d.to, in_pipe, d.to, POLLOUT, deadline);
    if (aborted_) break;
    if (w.timed_out()) {
      if (MonotonicNowNs() - last_activity_ns_ >= idle_ns) {
        Abort(RelayEnd::kIdleTimeout, 0);
        break;
      }
      continue;
    }
    if (!w.ok()) {
      if (w.cancelled()) continue;
      fail(w.error(), false);
      break;
    }
    in_pipe -= w.value();
    d.bytes += w.value();
    last_activity_ns_ = MonotonicNowNs();
  }
  if (pipe.valid()) {
    if (in_pipe == 0) {
      pipes_.Release(pipe);
    } else {
      pipes_.Discard(pipe);
    }
  }
  if (!aborted_ && eof) {
    // Everything the source sent has been delivered: pass the EOF on.
    shutdown(d.to, SHUT_WR);
  }
  d.done = true;
}

Task<RelayResult> SpliceRelay::Run() {
  last_activity_ns_ = MonotonicNowNs();
  Gate gate;
  Spawn(Pump(0, gate.Enter()));
  Spawn(Pump(1, gate.Enter()));
  co_await gate.Wait();
  RelayResult result;
  result.end = aborted_ ? end_ : RelayEnd::kClosed;
  result.error = error_;
  result.bytes_to_upstream = dirs_[0].bytes;
  result.bytes_to_downstream = dirs_[1].bytes;
  co_return result;
}

}  // namespace ringproxy
