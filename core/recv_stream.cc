#include "core/recv_stream.h"

namespace ringproxy {

RecvStream::RecvStream(BufferRing& ring, int fd, uint32_t max_queued)
    : ring_(ring), fd_(fd), max_queued_(max_queued == 0 ? 1 : max_queued) {
  handler = &OnCqe;
  timer_.handler = &OnTimer;
  timer_.stream = this;
}

RecvStream::~RecvStream() {
  // Destroying a stream the kernel still writes into would be a use-after-free.
  RP_CHECK(!armed_ && !timer_armed_);
  ring_.CancelWait(this);
  while (!queue_.empty()) {
    Entry e = queue_.front();
    queue_.pop_front();
    if (e.res > 0) ring_.Return(e.buffer_id);
  }
}

void RecvStream::Arm() {
  RP_DCHECK(!armed_);
  Reactor* reactor = Reactor::Current();
  io_uring_sqe* sqe = reactor->GetSqe();
  io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = ring_.group_id();
  io_uring_sqe_set_data(sqe, static_cast<Completion*>(this));
  armed_ = true;
  ++rearms_;
}

void RecvStream::ArmTimer(Deadline d) {
  RP_DCHECK(!timer_armed_);
  timer_ts_ = ToKernelTimespec(d);
  io_uring_sqe* sqe = Reactor::Current()->GetSqe();
  io_uring_prep_timeout(sqe, &timer_ts_, 0, IORING_TIMEOUT_ABS);
  io_uring_sqe_set_data(sqe, static_cast<Completion*>(&timer_));
  timer_armed_ = true;
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
    self->ring_.NoteConsumed();
    self->queue_.push_back({res, static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT)});
    if (self->queue_.size() >= self->max_queued_ && self->armed_ && !self->cancelling_) {
      // The consumer is behind: stop taking buffers; bytes wait in the socket.
      self->cancelling_ = true;
      Reactor::Current()->Cancel(self);
    }
  } else if (res == 0) {
    self->queue_.push_back({0, 0});
    self->finished_ = true;
  } else if (res == -ENOBUFS) {
    // The shard's ring ran dry. The CQE can be stale (buffers came back since the
    // kernel looked): re-arm now if there are buffers, else when one comes back.
    if (!self->armed_ && !self->stopping_) {
      if (self->ring_.exhausted()) {
        self->ring_.WaitForBuffers(self);
      } else if (self->waiter_) {
        self->Arm();
      }
    }
  } else if (res == -ECANCELED) {
    // Our own pause or stop: Next() re-arms unless stopping. Someone else's cancel
    // (the owner's CancelFd) wakes the waiter with -ECANCELED; the stream stays usable.
    if (!was_cancelling && !self->stopping_) self->cancelled_externally_ = true;
  } else {
    self->queue_.push_back({res, 0});
    self->finished_ = true;
  }
  // Wake last: the waiter may destroy this stream.
  self->MaybeFinishStop();
  self->Wake();
}

void RecvStream::OnTimer(Completion* c, int32_t /*res*/, uint32_t /*flags*/) {
  auto* self = static_cast<TimerCompletion*>(c)->stream;
  self->timer_armed_ = false;
  // The timer may belong to an earlier Next(): judge by the current waiter's deadline.
  if (self->waiter_ && !self->stopping_) {
    if (self->waiter_deadline_.Passed()) {
      self->timed_out_ = true;
      std::coroutine_handle<> h = std::exchange(self->waiter_, {});
      h.resume();
      return;
    }
    if (self->waiter_deadline_.finite()) self->ArmTimer(self->waiter_deadline_);
    return;
  }
  self->MaybeFinishStop();
  self->Wake();
}

void RecvStream::RemoveTimer() {
  io_uring_sqe* sqe = Reactor::Current()->GetSqe();
  io_uring_prep_timeout_remove(sqe, reinterpret_cast<uint64_t>(static_cast<Completion*>(&timer_)),
                               0);
  io_uring_sqe_set_data64(sqe, kIgnoredUserData);
}

void RecvStream::Wake() {
  if (!waiter_) return;
  if (queue_.empty() && !(stopping_ && !armed_) && !cancelled_externally_) return;
  if (timer_armed_) RemoveTimer();
  std::coroutine_handle<> h = std::exchange(waiter_, {});
  h.resume();
}

void RecvStream::OnBuffersAvailable() {
  if (!armed_ && !finished_ && !stopping_ && waiter_) Arm();
}

bool RecvStream::NextAwaiter::await_ready() {
  RecvStream* s = stream_;
  if (!s->queue_.empty()) return true;
  if (s->finished_ || s->stopping_) return true;
  return false;
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
      s->ring_.WaitForBuffers(s);
    }
  }
  if (deadline_.finite() && !s->timer_armed_) s->ArmTimer(deadline_);
}

Received RecvStream::NextAwaiter::await_resume() {
  RecvStream* s = stream_;
  s->cancelled_externally_ = false;
  if (s->queue_.empty()) {
    if (s->timed_out_) {
      s->timed_out_ = false;
      return {IoResult{-ETIMEDOUT}, {}};
    }
    return {IoResult{-ECANCELED}, {}};
  }
  Entry e = s->queue_.front();
  // EOF and errors stay queued so every later Next() sees them too.
  if (e.res <= 0) return {IoResult{e.res}, {}};
  s->queue_.pop_front();
  return {IoResult{e.res}, s->ring_.Take(e.buffer_id, static_cast<uint32_t>(e.res))};
}

void RecvStream::MaybeFinishStop() {
  if (stopping_ && stop_waiter_ && !armed_ && !timer_armed_) {
    Reactor::Current()->Post(std::exchange(stop_waiter_, {}));
  }
}

Task<void> RecvStream::Stop() {
  stopping_ = true;
  ring_.CancelWait(this);
  if (armed_ && !cancelling_) {
    cancelling_ = true;
    Reactor::Current()->Cancel(this);
  }
  if (timer_armed_) RemoveTimer();
  if (waiter_ && !armed_) Reactor::Current()->Post(std::exchange(waiter_, {}));
  if (armed_ || timer_armed_) {
    struct StopAwaiter {
      RecvStream* s;
      bool await_ready() { return !s->armed_ && !s->timer_armed_; }
      void await_suspend(std::coroutine_handle<> h) { s->stop_waiter_ = h; }
      void await_resume() {}
    };
    co_await StopAwaiter{this};
  }
}

}  // namespace ringproxy

namespace ringproxy {

bool RecvStream::TryTake(Received* out) {
  RP_CHECK(!armed_);
  if (queue_.empty()) return false;
  Entry e = queue_.front();
  queue_.pop_front();
  out->status = IoResult{e.res};
  out->buffer =
      e.res > 0 ? ring_.Take(e.buffer_id, static_cast<uint32_t>(e.res)) : ProvidedBuffer();
  return true;
}

}  // namespace ringproxy
