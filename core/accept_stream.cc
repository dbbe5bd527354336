#include "core/accept_stream.h"

#include <sys/socket.h>
#include <unistd.h>

namespace ringproxy {

AcceptStream::AcceptStream(int listen_fd) : fd_(listen_fd) { handler = &OnCqe; }

AcceptStream::~AcceptStream() {
  RP_CHECK(!armed_);
  while (!queue_.empty()) {
    if (queue_.front() >= 0) close(queue_.front());
    queue_.pop_front();
  }
}

void AcceptStream::Arm() {
  io_uring_sqe* sqe = Reactor::Current()->GetSqe();
  io_uring_prep_multishot_accept(sqe, fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  io_uring_sqe_set_data(sqe, static_cast<Completion*>(this));
  armed_ = true;
  ++arms_;
}

void AcceptStream::OnCqe(Completion* c, int32_t res, uint32_t flags) {
  auto* self = static_cast<AcceptStream*>(c);
  if ((flags & IORING_CQE_F_MORE) == 0) {
    self->armed_ = false;
    self->cancelling_ = false;
  }
  // Even when stopping: the owner serves what was accepted (TryTake) rather than
  // reset connections the kernel already completed; errors other than our cancel too.
  if (res != -ECANCELED) self->queue_.push_back(res);
  const bool stopped = self->stopping_ && !self->armed_;
  if (stopped && self->stop_waiter_) {
    Reactor::Current()->Post(std::exchange(self->stop_waiter_, {}));
  }
  // The multishot ended (a pause's cancel, or someone else's) after the consumer had
  // started waiting again with nothing to take: accept again for it.
  if (!self->armed_ && self->waiter_ && self->queue_.empty() && !self->stopping_) self->Arm();
  // Resume last: the waiter may destroy this stream.
  if (self->waiter_ && (!self->queue_.empty() || stopped)) {
    std::exchange(self->waiter_, {}).resume();
  }
}

bool AcceptStream::NextAwaiter::await_ready() {
  return !stream_->queue_.empty() || stream_->stopping_;
}

void AcceptStream::NextAwaiter::await_suspend(std::coroutine_handle<> h) {
  AcceptStream* s = stream_;
  RP_CHECK(!s->waiter_);
  s->waiter_ = h;
  if (!s->armed_) s->Arm();
}

IoResult AcceptStream::NextAwaiter::await_resume() {
  AcceptStream* s = stream_;
  if (s->stopping_ || s->queue_.empty()) return {-ECANCELED};
  int32_t r = s->queue_.front();
  s->queue_.pop_front();
  return {r};
}

void AcceptStream::Pause() {
  if (armed_ && !cancelling_) {
    cancelling_ = true;
    Reactor::Current()->Cancel(this);
  }
}

void AcceptStream::RequestStop() {
  stopping_ = true;
  Pause();
  if (waiter_ && !armed_) Reactor::Current()->Post(std::exchange(waiter_, {}));
}

Task<void> AcceptStream::Stop() {
  RequestStop();
  if (armed_) {
    struct StopAwaiter {
      AcceptStream* s;
      bool await_ready() { return !s->armed_; }
      void await_suspend(std::coroutine_handle<> h) { s->stop_waiter_ = h; }
      void await_resume() {}
    };
    co_await StopAwaiter{this};
  }
}

int AcceptStream::TryTake() {
  while (!queue_.empty()) {
    int32_t r = queue_.front();
    queue_.pop_front();
    if (r >= 0) return r;
  }
  return -1;
}

}  // namespace ringproxy
