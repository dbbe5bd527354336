#include "core/recv_stream.h"

#include <cstring>
#include <utility>

namespace ringproxy {

RecvStream::RecvStream(BufferRing& ring, int fd, RecvLimits limits)
    : ring_(ring), fd_(fd), limits_(limits) {
  handler = &OnCqe;
  timer_.handler = &OnTimer;
  timer_.stream = this;
}

RecvStream::~RecvStream() {
  // Destroying a stream the kernel still writes into would be a use-after-free.
  RP_CHECK(!armed_ && !timer_armed_);
  ring_.CancelWait(this);
  Discard();
}

void RecvStream::Detach() {
  detached_ = true;
  if (queue_.empty()) return;
  std::string own;
  CopyUntaken(buffered(), &own);  // the queued buffers' bytes, then the spill
  spilled_total_ += own.size() - spill_.size();
  while (!queue_.empty()) {
    ring_.Return(queue_.front().buffer_id);
    queue_.pop_front();
  }
  spill_.swap(own);
}

uint32_t RecvStream::HeldLimit() const {
  if (detached_) return 0;
  // Under pressure nothing is held for a consumer that is busy elsewhere; one buffer
  // for a consumer that is waiting goes to it at once (no copy).
  if (ring_.under_pressure()) return waiter_ && queue_.empty() ? 1 : 0;
  return limits_.max_held;
}

void RecvStream::OnData(int32_t res, uint16_t id) {
  ring_.NoteConsumed();
  if (aborted_) {
    ring_.Return(id);
    return;
  }
  const uint32_t limit = HeldLimit();
  if (queue_.size() < limit && spill_.empty()) {
    queue_.push_back({res, id});
  } else {
    // Over this connection's share: copy out and give the buffer back now. (With
    // spill_bytes 0 this only takes what the kernel delivers before the pause lands.)
    std::span<std::byte> src = ring_.Data(id);
    spill_.append(reinterpret_cast<const char*>(src.data()), static_cast<size_t>(res));
    spilled_total_ += static_cast<uint64_t>(res);
    ring_.Return(id);
  }
  // The consumer is behind: stop taking bytes; they wait in the socket.
  const bool full = queue_.size() >= limit && spill_.size() >= limits_.spill_bytes;
  if (full && !waiter_) RequestCancel();
}

void RecvStream::Arm() {
  RP_DCHECK(!armed_ && !aborted_);
  Reactor* reactor = Reactor::Current();
  io_uring_sqe* sqe = reactor->GetSqe();
  io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = ring_.group_id();
  io_uring_sqe_set_data(sqe, static_cast<Completion*>(this));
  armed_ = true;
  ++rearms_;
}

void RecvStream::RequestCancel() {
  if (armed_ && !cancelling_) {
    cancelling_ = true;
    Reactor::Current()->Cancel(this);
  }
}

void RecvStream::ArmTimer(Deadline d) {
  RP_DCHECK(!timer_armed_);
  timer_ts_ = ToKernelTimespec(d);
  io_uring_sqe* sqe = Reactor::Current()->GetSqe();
  io_uring_prep_timeout(sqe, &timer_ts_, 0, IORING_TIMEOUT_ABS);
  io_uring_sqe_set_data(sqe, static_cast<Completion*>(&timer_));
  timer_armed_ = true;
  timer_deadline_ = d;
}

void RecvStream::CoverDeadline(Deadline d) {
  if (!d.finite() || timer_removing_) return;
  if (!timer_armed_) {
    ArmTimer(d);
    return;
  }
  // A timer left from an earlier wait that fires first is fine: OnTimer re-arms for
  // the waiter's deadline. One that fires later is moved forward (rare: deadlines
  // are mostly "now + a fixed timeout", so they only grow).
  if (d < timer_deadline_) {
    timer_ts_ = ToKernelTimespec(d);
    io_uring_sqe* sqe = Reactor::Current()->GetSqe();
    io_uring_prep_timeout_update(sqe, &timer_ts_,
                                 reinterpret_cast<uint64_t>(static_cast<Completion*>(&timer_)),
                                 IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(sqe, kIgnoredUserData);
    timer_deadline_ = d;
  }
}

void RecvStream::OnCqe(Completion* c, int32_t res, uint32_t flags) {
  auto* self = static_cast<RecvStream*>(c);
  const bool was_cancelling = self->cancelling_;
  if ((flags & IORING_CQE_F_MORE) == 0) {
    self->armed_ = false;
    self->cancelling_ = false;
  }
  if (res > 0) {
    RP_CHECK(flags & IORING_CQE_F_BUFFER);
    self->OnData(res, static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT));
  } else if (res == 0) {
    self->terminal_ = 0;
  } else if (res == -ENOBUFS) {
    self->ring_.NoteEmpty();
    // An end watcher with no consumer waiting must still see the FIN (a session busy
    // elsewhere); not after a pause or stop was asked for (was_cancelling).
    // The CQE can be stale (a buffer came back since): then receive again at once.
    if (!self->waiter_ && self->end_observer_ != nullptr && !self->HasData() && !was_cancelling &&
        !self->aborted_ && self->terminal_ == kNoTerminal) {
      if (self->ring_.exhausted()) {
        self->ring_.WaitForBuffers(self);
      } else if (!self->armed_) {
        self->Arm();
      }
    }
  } else if (res == -ECANCELED) {
    // Our own pause or stop: Next() re-arms unless aborted. Someone else's cancel
    // (the owner's CancelFd) wakes the waiter with -ECANCELED; the stream stays usable.
    if (!was_cancelling && !self->aborted_) self->cancelled_externally_ = true;
  } else {
    self->terminal_ = res;
  }
  self->RearmForWaiter();
  self->MaybeTellEnd();
  // Wake last: the waiter may destroy this stream.
  self->MaybeFinishWait();
  self->Wake();
}

void RecvStream::ShortenWait(Deadline d) {
  if (!waiter_ || !(d < waiter_deadline_)) return;
  waiter_deadline_ = d;
  CoverDeadline(d);
}

void RecvStream::WatchEnd(PeerEndObserver* observer) {
  end_observer_ = observer;
  if (observer == nullptr) {
    if (!waiter_) ring_.CancelWait(this);
    return;
  }
  // A paused stream (its owner read the socket itself, as a splice does) sees no end:
  // receive again, as a Next() would, or once a buffer comes back.
  if (!armed_ && !aborted_ && !waiter_ && terminal_ == kNoTerminal && !cancelled_externally_ &&
      !HasData()) {
    if (ring_.exhausted()) {
      ring_.WaitForBuffers(this);
    } else {
      Arm();
    }
  }
  MaybeTellEnd();
}

void RecvStream::MaybeTellEnd() {
  if (end_observer_ == nullptr || waiter_ || terminal_ == kNoTerminal) return;
  std::exchange(end_observer_, nullptr)->OnPeerEnded(terminal_ < 0);
}

void RecvStream::RearmForWaiter() {
  // The multishot ended (ENOBUFS, or a pause whose cancel completed after the consumer
  // had started waiting again) while a consumer waits with nothing to take: receive
  // again now, or when a buffer comes back (the ENOBUFS CQE can be stale).
  if (armed_ || aborted_ || !waiter_ || HasData() || terminal_ != kNoTerminal ||
      cancelled_externally_) {
    return;
  }
  if (ring_.exhausted()) {
    ring_.WaitForBuffers(this);
  } else {
    Arm();
  }
}

void RecvStream::OnTimer(Completion* c, int32_t /*res*/, uint32_t /*flags*/) {
  auto* self = static_cast<TimerCompletion*>(c)->stream;
  self->timer_armed_ = false;
  self->timer_removing_ = false;
  // The timer may belong to an earlier Next(): judge by the current waiter's deadline.
  if (self->waiter_ && !self->aborted_) {
    if (self->waiter_deadline_.Passed()) {
      self->timed_out_ = true;
      std::coroutine_handle<> h = std::exchange(self->waiter_, {});
      self->ring_.CancelWait(self);
      h.resume();
      return;
    }
    self->CoverDeadline(self->waiter_deadline_);
    return;
  }
  self->MaybeFinishWait();
}

void RecvStream::RemoveTimer() {
  if (!timer_armed_ || timer_removing_) return;
  timer_removing_ = true;
  io_uring_sqe* sqe = Reactor::Current()->GetSqe();
  io_uring_prep_timeout_remove(sqe, reinterpret_cast<uint64_t>(static_cast<Completion*>(&timer_)),
                               0);
  io_uring_sqe_set_data64(sqe, kIgnoredUserData);
}

void RecvStream::Wake() {
  if (!waiter_) return;
  if (!HasData() && terminal_ == kNoTerminal && !cancelled_externally_) return;
  // The timer stays armed for the next wait (see CoverDeadline): removing and
  // re-arming it for every message costs two SQEs, two CQEs and a scan of the ring's
  // timeout list. Stop() removes it.
  ring_.CancelWait(this);
  std::coroutine_handle<> h = std::exchange(waiter_, {});
  h.resume();
}

void RecvStream::OnBuffersAvailable() {
  if (armed_ || aborted_ || terminal_ != kNoTerminal) return;
  if (waiter_ || (end_observer_ != nullptr && !HasData())) Arm();
}

bool RecvStream::NextAwaiter::await_ready() {
  RecvStream* s = stream_;
  s->detached_ = false;  // the consumer reads again
  return s->aborted_ || s->HasData() || s->terminal_ != kNoTerminal;
}

void RecvStream::NextAwaiter::await_suspend(std::coroutine_handle<> h) {
  RecvStream* s = stream_;
  RP_CHECK(!s->waiter_);
  s->waiter_ = h;
  s->waiter_deadline_ = deadline_;
  s->timed_out_ = false;
  s->cancelled_externally_ = false;  // a cancel that hit no waiter is stale
  if (!s->armed_) {
    if (!s->ring_.exhausted()) {
      s->Arm();
    } else {
      s->ring_.NoteEmpty();
      s->ring_.WaitForBuffers(s);
    }
  }
  s->CoverDeadline(deadline_);
}

Received RecvStream::NextAwaiter::await_resume() {
  RecvStream* s = stream_;
  s->cancelled_externally_ = false;
  Received out;
  if (s->aborted_) {
    out.status = IoResult{-ECANCELED};
  } else if (s->TryTake(&out)) {
    // data, or the EOF/error that ended the stream (it stays for later calls)
  } else if (s->timed_out_) {
    s->timed_out_ = false;
    out.status = IoResult{-ETIMEDOUT};
  } else {
    out.status = IoResult{-ECANCELED};
  }
  return out;
}

bool RecvStream::TryTake(Received* out) {
  if (!queue_.empty()) {
    Entry e = queue_.front();
    queue_.pop_front();
    out->status = IoResult{e.res};
    out->buffer = ring_.Take(e.buffer_id, static_cast<uint32_t>(e.res));
    return true;
  }
  if (!spill_.empty()) {
    out->status = IoResult{static_cast<int32_t>(spill_.size())};
    out->spilled = std::move(spill_);
    spill_ = std::string();
    return true;
  }
  if (terminal_ != kNoTerminal) {
    out->status = IoResult{terminal_};
    return true;
  }
  return false;
}

bool RecvStream::CopyUntaken(size_t max, std::string* out) const {
  if (buffered() > max) return false;
  SmallQueue<Entry, 2> copy = queue_;
  while (!copy.empty()) {
    const std::span<const std::byte> d = ring_.Data(copy.front().buffer_id);
    out->append(reinterpret_cast<const char*>(d.data()), static_cast<size_t>(copy.front().res));
    copy.pop_front();
  }
  out->append(spill_);
  return true;
}

size_t RecvStream::buffered() const {
  size_t n = spill_.size();
  SmallQueue<Entry, 2> copy = queue_;
  while (!copy.empty()) {
    n += static_cast<size_t>(copy.front().res);
    copy.pop_front();
  }
  return n;
}

size_t RecvStream::Discard() {
  size_t n = spill_.size();
  std::string().swap(spill_);
  while (!queue_.empty()) {
    Entry e = queue_.front();
    queue_.pop_front();
    n += static_cast<size_t>(e.res);
    ring_.Return(e.buffer_id);
  }
  return n;
}

void RecvStream::MaybeFinishWait() {
  if (quiet_waiter_ && !armed_ && (!aborted_ || !timer_armed_)) {
    Reactor::Current()->Post(std::exchange(quiet_waiter_, {}));
  }
}

Task<void> RecvStream::Pause() {
  ring_.CancelWait(this);  // a watched end waiting for buffers: the owner reads now
  RequestCancel();
  if (armed_) {
    struct QuietAwaiter {
      RecvStream* s;
      bool await_ready() { return !s->armed_; }
      void await_suspend(std::coroutine_handle<> h) { s->quiet_waiter_ = h; }
      void await_resume() {}
    };
    co_await QuietAwaiter{this};
  }
}

void RecvStream::Abort() {
  if (aborted_) return;
  aborted_ = true;
  ring_.CancelWait(this);
  RequestCancel();
  RemoveTimer();
  if (waiter_) Reactor::Current()->Post(std::exchange(waiter_, {}));
}

Task<void> RecvStream::Stop() {
  Abort();
  if (armed_ || timer_armed_) {
    struct StopAwaiter {
      RecvStream* s;
      bool await_ready() { return !s->armed_ && !s->timer_armed_; }
      void await_suspend(std::coroutine_handle<> h) { s->quiet_waiter_ = h; }
      void await_resume() {}
    };
    co_await StopAwaiter{this};
  }
}

}  // namespace ringproxy
