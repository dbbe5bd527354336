#include "core/pump.h"

#include <linux/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>

#include "core/ops.h"
#include "core/plain_stream.h"
#include "core/reactor.h"

namespace ringproxy {

std::string_view PumpEndName(PumpEnd end) {
  switch (end) {
    case PumpEnd::kClosed:
      return "closed";
    case PumpEnd::kIdleTimeout:
      return "idle_timeout";
    case PumpEnd::kDownstreamError:
      return "downstream_error";
    case PumpEnd::kUpstreamError:
      return "upstream_error";
    case PumpEnd::kStopped:
      return "stopped";
  }
  return "?";
}

namespace {

// One splice call moves at most this much; the pipe's capacity caps it anyway.
constexpr size_t kSpliceChunk = 1 << 20;
// kAuto: a spliced direction whose reads come in this small this many times in a row
// is interactive again and goes back to copy mode.
constexpr int kSmallSplicesToCopy = 4;

}  // namespace

Pump::Pump(ByteStream* downstream, ByteStream* upstream, PumpResources resources,
           PumpOptions options)
    : downstream_(downstream),
      upstream_(upstream),
      resources_(resources),
      options_(options),
      dirs_{{downstream, upstream, true}, {upstream, downstream, false}},
      watch_(&Pump::OnIdle, this) {}

void Pump::OnIdle(IdleWatch* /*watch*/, void* self) {
  Pump* pump = static_cast<Pump*>(self);
  if (pump->StillDelivering()) {
    pump->resources_.sweeper->Add(&pump->watch_, pump->options_.idle_timeout_ms, TurnNowNs());
    return;
  }
  pump->Abort(PumpEnd::kIdleTimeout, 0);
}

bool Pump::StillDelivering() {
  // A reader slower than the idle timeout takes what is queued for it (our output, a
  // pipe's worth in its socket) with no Touch meanwhile: were that idle, a slow mobile
  // client would lose the rest of a large message. Only asked when the timeout is up.
  bool moving = false;
  for (Direction& d : dirs_) {
    tcp_info info{};
    socklen_t len = sizeof(info);
    if (getsockopt(d.to->fd(), IPPROTO_TCP, TCP_INFO, &info, &len) != 0) continue;
    const bool queued =
        d.to->pending_output() > 0 || info.tcpi_notsent_bytes > 0 || info.tcpi_unacked > 0;
    // The first check has no earlier count: something queued then is given the benefit.
    if (queued && (!d.acked_known || info.tcpi_bytes_acked != d.acked)) moving = true;
    d.acked = info.tcpi_bytes_acked;
    d.acked_known = true;
  }
  return moving;
}

void Pump::Abort(PumpEnd end, int error) {
  if (aborted_) return;
  aborted_ = true;
  if (!failed_) {  // the first failure names the end
    end_ = end;
    error_ = error;
  }
  // Sticky on both streams: every wait of both directions ends, and none re-arms.
  downstream_->Abort();
  upstream_->Abort();
}

void Pump::Stop() { Abort(PumpEnd::kStopped, 0); }

void Pump::Fail(const Direction& d, int error, bool on_source) {
  // Which side failed: the source (read) or the destination (write).
  bool downstream = d.to_upstream ? on_source : !on_source;
  const PumpEnd end = downstream ? PumpEnd::kDownstreamError : PumpEnd::kUpstreamError;
  const Direction& other = dirs_[d.to_upstream ? 1 : 0];
  // A plain socket that refused a send was reset: what its peer sent before is in its
  // receive queue, and the other direction, which reads it, delivers that first. Its
  // read ends at the reset, promptly. A timeout is a live peer that stopped reading.
  if (!on_source && error != ETIMEDOUT && d.to->plain() != nullptr && !other.done && !failed_) {
    failed_ = true;
    end_ = end;
    error_ = error;
    return;
  }
  Abort(end, error);
}

bool Pump::CanSplice(const Direction& d) {
  return options_.mode != RelayMode::kCopy && resources_.pipes != nullptr &&
         d.from->plain() != nullptr && d.to->plain() != nullptr;
}

Task<bool> Pump::Deliver(Direction& d, std::span<const std::byte> data) {
  const Deadline deadline = SendDeadline();
  IoResult w = co_await d.to->Write(data, deadline);
  if (aborted_) co_return false;
  if (!w.ok()) {
    Fail(d, w.error(), false);
    co_return false;
  }
  d.from->Consume(data.size());
  d.bytes += data.size();
  Touch();
  // Back-pressure: read no more until the destination has taken all of it, and hold
  // none of the shard's receive buffers while a slow reader takes its time.
  if (d.to->pending_output() > 0) {
    d.from->Detach();
    IoResult f = co_await d.to->Flush(deadline);
    if (aborted_) co_return false;
    if (!f.ok()) {
      Fail(d, f.error(), false);
      co_return false;
    }
    Touch();
  }
  co_return true;
}

Task<Pump::StepEnd> Pump::CopyPhase(Direction& d) {
  const bool may_switch = options_.mode == RelayMode::kAuto && CanSplice(d);
  // Splice mode copies only to step over urgent data (SplicePhase), one chunk.
  const bool back_to_splice = options_.mode == RelayMode::kSplice && CanSplice(d);
  const size_t full = resources_.buffers != nullptr ? resources_.buffers->buffer_size() : 16384;
  int full_in_a_row = 0;
  PlainStream* const plain = d.from->plain();
  while (!aborted_) {
    IoResult r;  // not ?: with co_await in the arms (core/task.h)
    if (plain != nullptr) {
      r = co_await plain->FillDirect(Deadline::Never());  // no frame per wait
    } else {
      r = co_await d.from->Fill(Deadline::Never());
    }
    if (aborted_) break;
    if (r.res == 0) co_return StepEnd::kEof;
    if (!r.ok()) {
      if (r.cancelled() && !d.from->aborted()) continue;  // someone else's cancel
      Fail(d, r.error(), true);
      break;
    }
    std::span<const std::byte> data = d.from->Peek();
    const size_t n = data.size();
    bool delivered = co_await Deliver(d, data);
    if (!delivered) break;
    if (back_to_splice) co_return StepEnd::kSwitch;
    if (may_switch) {
      full_in_a_row = n >= full ? full_in_a_row + 1 : 0;
      if (full_in_a_row >= options_.splice_after_full_buffers) co_return StepEnd::kSwitch;
    }
  }
  co_return StepEnd::kFailed;
}

Task<Pump::StepEnd> Pump::DrainBeforeSplice(Direction& d) {
  PlainStream* from = d.from->plain();
  co_await from->PauseReceive();
  // What was received before the switch goes out first, in order.
  while (!aborted_) {
    IoResult n = from->FillNow();
    if (n.res == -EAGAIN) co_return StepEnd::kSwitch;
    if (n.res == 0) co_return StepEnd::kEof;
    if (!n.ok()) {
      Fail(d, n.error(), true);
      break;
    }
    bool delivered = co_await Deliver(d, from->Peek());
    if (!delivered) break;
  }
  co_return StepEnd::kFailed;
}

Task<Pump::StepEnd> Pump::SplicePhase(Direction& d) {
  StepEnd drained = co_await DrainBeforeSplice(d);
  if (drained != StepEnd::kSwitch) co_return drained;
  const int from = d.from->fd();
  const int to = d.to->fd();
  PipePool& pool = *resources_.pipes;
  Pipe pipe;
  size_t in_pipe = 0;
  StepEnd result = StepEnd::kFailed;
  int small_in_a_row = 0;
  bool polled = false;  // poll said readable since the last splice that moved bytes
  const size_t small = resources_.buffers != nullptr ? resources_.buffers->buffer_size() : 16384;
  while (!aborted_) {
    if (in_pipe == 0) {
      if (options_.mode == RelayMode::kAuto && small_in_a_row >= kSmallSplicesToCopy) {
        result = StepEnd::kSwitch;
        break;
      }
      if (!pipe.valid() && !pool.Acquire(&pipe).ok()) {
        // No pipe (the descriptor limit): copy, as good as splice for the bytes.
        result = StepEnd::kSwitch;
        break;
      }
      IoResult r = SpliceNow(from, pipe.write_fd, kSpliceChunk);
      if (SpliceStuckAtUrgentMark(from, r, polled)) {
        result = StepEnd::kSwitch;  // the copy phase's receive steps over it
        break;
      }
      if (r.res == -EAGAIN) {
        polled = true;
        // Nothing to read: give the (empty) pipe back while we wait.
        pool.Release(pipe);
        pipe = Pipe{};
        IoResult ready = co_await Poll(from, POLLIN | POLLRDHUP, Deadline::Never());
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
      polled = false;
      small_in_a_row = in_pipe < small ? small_in_a_row + 1 : 0;
      Touch();
    }
    IoResult w = co_await Splice(pipe.read_fd, to, in_pipe, to, POLLOUT, SendDeadline());
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

Task<void> Pump::Flow(int which, Gate::Holder /*holder*/) {
  Direction& d = dirs_[which];
  bool splice = options_.mode == RelayMode::kSplice && CanSplice(d);
  while (!aborted_) {
    StepEnd end;  // not ?: with co_await in the arms (core/task.h)
    if (splice) {
      end = co_await SplicePhase(d);
    } else {
      end = co_await CopyPhase(d);
    }
    if (end == StepEnd::kEof) {
      // Everything the source sent has been delivered: pass the end on, as a cut when
      // the source's was one (else a TLS client would get a close_notify for a stream
      // an attacker's FIN cut short, and take it as whole).
      if (!aborted_) {
        IoResult s{0};
        if (d.from->truncated()) {
          s = co_await d.to->ShutdownWriteCut(SendDeadline());
        } else {
          s = co_await d.to->ShutdownWrite(SendDeadline());
        }
        if (!s.ok() && !aborted_) Fail(d, s.error(), false);
      }
      break;
    }
    if (end == StepEnd::kFailed) break;
    splice = !splice;
    ++mode_switches_;
  }
  d.done = true;
}

Task<PumpResult> Pump::Run() {
  resources_.sweeper->Add(&watch_, options_.idle_timeout_ms, TurnNowNs());
  Gate gate;
  Spawn(Flow(0, gate.Enter()));
  Spawn(Flow(1, gate.Enter()));
  co_await gate.Wait();
  resources_.sweeper->Remove(&watch_);
  PumpResult result;
  result.end = aborted_ || failed_ ? end_ : PumpEnd::kClosed;
  result.error = error_;
  result.bytes_to_upstream = dirs_[0].bytes;
  result.bytes_to_downstream = dirs_[1].bytes;
  result.mode_switches = mode_switches_;
  co_return result;
}

namespace {

SpliceEnd SinkEnd(IoResult r, const PlainStream* to) {
  return r.timed_out() && !to->aborted() ? SpliceEnd::kSinkTimeout : SpliceEnd::kSinkError;
}

}  // namespace

Task<SpliceEnd> SpliceExactly(PlainStream* from, PlainStream* to, uint64_t n, PipePool* pipes,
                              int64_t read_timeout_ms, int64_t send_timeout_ms, uint64_t* moved) {
  Pipe pipe;
  size_t in_pipe = 0;
  SpliceEnd end = SpliceEnd::kDone;
  bool copy = true;     // what was received goes out first, in order
  bool polled = false;  // poll said readable since the last splice that moved bytes
  while (*moved < n && end == SpliceEnd::kDone) {
    if (copy) {
      copy = false;
      co_await from->PauseReceive();
      while (*moved < n) {
        if (from->Peek().empty()) {
          IoResult r = from->FillNow();
          if (r.res == -EAGAIN) break;
          if (!r.ok() || r.res == 0) {
            end = r.res == 0 ? SpliceEnd::kSourceEof : SpliceEnd::kSourceError;
            break;
          }
        }
        const std::span<const std::byte> data = from->Peek();
        const size_t take = static_cast<size_t>(std::min<uint64_t>(data.size(), n - *moved));
        IoResult w = co_await to->Write(data.first(take), Deadline::AfterMs(send_timeout_ms));
        if (!w.ok()) {
          end = SinkEnd(w, to);
          break;
        }
        from->Consume(take);
        *moved += take;
      }
      if (end == SpliceEnd::kDone && to->pending_output() > 0) {
        IoResult f = co_await to->Flush(Deadline::AfterMs(send_timeout_ms));
        if (!f.ok()) end = SinkEnd(f, to);
      }
      continue;
    }
    if (in_pipe == 0) {
      if (from->aborted()) {
        end = SpliceEnd::kSourceError;
        break;
      }
      // No pipe (the descriptor limit): this stretch is copied instead.
      const bool no_pipe = !pipe.valid() && !pipes->Acquire(&pipe).ok();
      IoResult r{-EAGAIN};
      if (!no_pipe) {
        r = SpliceNow(from->fd(), pipe.write_fd,
                      static_cast<size_t>(std::min<uint64_t>(kSpliceChunk, n - *moved)));
      }
      if (no_pipe || SpliceStuckAtUrgentMark(from->fd(), r, polled)) {
        // One receive (it also steps over urgent data, where splice(2) stays in front).
        IoResult f = co_await from->Fill(Deadline::AfterMs(read_timeout_ms));
        if (f.timed_out()) {
          end = SpliceEnd::kSourceTimeout;
        } else if (f.res == 0 || !f.ok()) {
          end = f.res == 0 ? SpliceEnd::kSourceEof : SpliceEnd::kSourceError;
        }
        copy = true;
        polled = false;
        continue;
      }
      if (r.res == -EAGAIN) {
        polled = true;
        IoResult ready =
            co_await Poll(from->fd(), POLLIN | POLLRDHUP, Deadline::AfterMs(read_timeout_ms));
        if (ready.timed_out()) {
          end = SpliceEnd::kSourceTimeout;
          break;
        }
        if (!ready.ok() && !ready.cancelled()) {
          end = SpliceEnd::kSourceError;
          break;
        }
        continue;
      }
      if (r.res == 0 || !r.ok()) {
        end = r.res == 0 ? SpliceEnd::kSourceEof : SpliceEnd::kSourceError;
        break;
      }
      in_pipe = r.value();
      polled = false;
    }
    IoResult w = co_await Splice(pipe.read_fd, to->fd(), in_pipe, to->fd(), POLLOUT,
                                 Deadline::AfterMs(send_timeout_ms));
    if (!w.ok() || to->aborted()) {
      end = SinkEnd(w, to);
      break;
    }
    in_pipe -= w.value();
    *moved += w.value();
  }
  if (pipe.valid()) {
    if (in_pipe == 0) {
      pipes->Release(pipe);
    } else {
      pipes->Discard(pipe);
    }
  }
  co_return end;
}

}  // namespace ringproxy
