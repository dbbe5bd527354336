// Awaitable io_uring operations. Each awaiter holds the Completion the kernel's
// user_data points at; it lives in the awaiting coroutine's frame for exactly as long
// as the operation is in flight. A finite Deadline adds a linked timeout (absolute,
// CLOCK_MONOTONIC); an operation cut by its deadline returns -ETIMEDOUT.
//
// Usage:  IoResult r = co_await Recv(fd, buf, Deadline::AfterMs(5000));
#pragma once

#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/socket.h>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/deadline.h"
#include "core/reactor.h"
#include "core/result.h"

namespace ringproxy {

class IoAwaiter : public Completion {
 public:
  IoAwaiter(const IoAwaiter&) = delete;
  IoAwaiter& operator=(const IoAwaiter&) = delete;

  bool await_ready() noexcept {
    if (deadline_.Passed()) {
      res_ = -ETIMEDOUT;
      return true;
    }
    return false;
  }
  IoResult await_resume() noexcept {
    // A linked timeout cancels the operation; tell that apart from other cancels.
    if (res_ == -ECANCELED && deadline_.finite() && deadline_.Passed()) return {-ETIMEDOUT};
    return {res_};
  }
  uint32_t cqe_flags() const { return flags_; }

 protected:
  explicit IoAwaiter(Deadline deadline) : deadline_(deadline) { handler = &OnComplete; }

  // Returns the SQE for this operation, pointed back at this awaiter.
  io_uring_sqe* Begin(std::coroutine_handle<> waiter) {
    waiter_ = waiter;
    reactor_ = Reactor::Current();
    RP_DCHECK(reactor_ != nullptr);
    // The operation and its linked timeout go into one batch: a flush between them
    // would submit the operation unlinked and the lone timeout would fail (EINVAL).
    if (deadline_.finite()) reactor_->ReserveSqes(2);
    io_uring_sqe* sqe = reactor_->GetSqe();
    return sqe;
  }
  // Call after the SQE is prepared: sets user_data and links the deadline, if any.
  void Commit(io_uring_sqe* sqe) {
    io_uring_sqe_set_data(sqe, static_cast<Completion*>(this));
    if (deadline_.finite()) {
      sqe->flags |= IOSQE_IO_LINK;
      timeout_ = ToKernelTimespec(deadline_);
      io_uring_sqe* t = reactor_->GetSqe();
      io_uring_prep_link_timeout(t, &timeout_, IORING_TIMEOUT_ABS);
      io_uring_sqe_set_data64(t, kIgnoredUserData);
    }
  }

  static void OnComplete(Completion* c, int32_t res, uint32_t flags) {
    auto* self = static_cast<IoAwaiter*>(c);
    self->res_ = res;
    self->flags_ = flags;
    self->waiter_.resume();
  }

  Deadline deadline_;
  Reactor* reactor_ = nullptr;
  std::coroutine_handle<> waiter_;
  int32_t res_ = 0;
  uint32_t flags_ = 0;
  __kernel_timespec timeout_{};
};

class Nop : public IoAwaiter {
 public:
  Nop() : IoAwaiter(Deadline::Never()) {}
  void await_suspend(std::coroutine_handle<> h) {
    io_uring_sqe* sqe = Begin(h);
    io_uring_prep_nop(sqe);
    Commit(sqe);
  }
};

// Waits until the deadline; returns 0 (or -ECANCELED if cancelled first).
class Sleep : public IoAwaiter {
 public:
  explicit Sleep(Deadline until) : IoAwaiter(Deadline::Never()), until_(until) {}
  void await_suspend(std::coroutine_handle<> h) {
    io_uring_sqe* sqe = Begin(h);
    ts_ = ToKernelTimespec(until_);
    io_uring_prep_timeout(sqe, &ts_, 0, IORING_TIMEOUT_ABS);
    Commit(sqe);
  }
  IoResult await_resume() noexcept { return {res_ == -ETIME ? 0 : res_}; }

 private:
  Deadline until_;
  __kernel_timespec ts_{};
};

class Recv : public IoAwaiter {
 public:
  Recv(int fd, std::span<std::byte> buf, Deadline deadline, int flags = 0)
      : IoAwaiter(deadline), fd_(fd), buf_(buf), flags_in_(flags) {}
  void await_suspend(std::coroutine_handle<> h) {
    io_uring_sqe* sqe = Begin(h);
    io_uring_prep_recv(sqe, fd_, buf_.data(), buf_.size(), flags_in_);
    Commit(sqe);
  }

 private:
  int fd_;
  std::span<std::byte> buf_;
  int flags_in_;
};

// One send; the result may be short. See SendAll() in core/socket.h.
class Send : public IoAwaiter {
 public:
  Send(int fd, std::span<const std::byte> buf, Deadline deadline, int flags = MSG_NOSIGNAL)
      : IoAwaiter(deadline), fd_(fd), buf_(buf), flags_in_(flags) {}
  void await_suspend(std::coroutine_handle<> h) {
    io_uring_sqe* sqe = Begin(h);
    io_uring_prep_send(sqe, fd_, buf_.data(), buf_.size(), flags_in_);
    Commit(sqe);
  }

 private:
  int fd_;
  std::span<const std::byte> buf_;
  int flags_in_;
};

class SendMsg : public IoAwaiter {
 public:
  SendMsg(int fd, const msghdr* msg, Deadline deadline, unsigned flags = MSG_NOSIGNAL)
      : IoAwaiter(deadline), fd_(fd), msg_(msg), flags_in_(flags) {}
  void await_suspend(std::coroutine_handle<> h) {
    io_uring_sqe* sqe = Begin(h);
    io_uring_prep_sendmsg(sqe, fd_, msg_, flags_in_);
    Commit(sqe);
  }

 private:
  int fd_;
  const msghdr* msg_;
  unsigned flags_in_;
};

class Read : public IoAwaiter {
 public:
  Read(int fd, std::span<std::byte> buf, Deadline deadline)
      : IoAwaiter(deadline), fd_(fd), buf_(buf) {}
  void await_suspend(std::coroutine_handle<> h) {
    io_uring_sqe* sqe = Begin(h);
    io_uring_prep_read(sqe, fd_, buf_.data(), buf_.size(), 0);
    Commit(sqe);
  }

 private:
  int fd_;
  std::span<std::byte> buf_;
};

// write(2) at `offset`; (uint64_t)-1 writes at the file position (O_APPEND: its end).
class WriteAt : public IoAwaiter {
 public:
  WriteAt(int fd, std::span<const std::byte> buf, uint64_t offset, Deadline deadline)
      : IoAwaiter(deadline), fd_(fd), buf_(buf), offset_(offset) {}
  void await_suspend(std::coroutine_handle<> h) {
    io_uring_sqe* sqe = Begin(h);
    io_uring_prep_write(sqe, fd_, buf_.data(), static_cast<unsigned>(buf_.size()), offset_);
    Commit(sqe);
  }

 private:
  int fd_;
  std::span<const std::byte> buf_;
  uint64_t offset_;
};

class Connect : public IoAwaiter {
 public:
  Connect(int fd, const sockaddr* addr, socklen_t len, Deadline deadline)
      : IoAwaiter(deadline), fd_(fd), addr_(addr), len_(len) {}
  void await_suspend(std::coroutine_handle<> h) {
    io_uring_sqe* sqe = Begin(h);
    io_uring_prep_connect(sqe, fd_, addr_, len_);
    Commit(sqe);
  }

 private:
  int fd_;
  const sockaddr* addr_;
  socklen_t len_;
};

// Single-shot accept; for a listener use AcceptStream (multishot).
class Accept : public IoAwaiter {
 public:
  Accept(int fd, sockaddr* addr, socklen_t* len, Deadline deadline)
      : IoAwaiter(deadline), fd_(fd), addr_(addr), len_(len) {}
  void await_suspend(std::coroutine_handle<> h) {
    io_uring_sqe* sqe = Begin(h);
    io_uring_prep_accept(sqe, fd_, addr_, len_, SOCK_NONBLOCK | SOCK_CLOEXEC);
    Commit(sqe);
  }

 private:
  int fd_;
  sockaddr* addr_;
  socklen_t* len_;
};

// Waits for poll events on fd; returns the ready mask.
class Poll : public IoAwaiter {
 public:
  Poll(int fd, unsigned events, Deadline deadline)
      : IoAwaiter(deadline), fd_(fd), events_(events) {}
  void await_suspend(std::coroutine_handle<> h) {
    io_uring_sqe* sqe = Begin(h);
    io_uring_prep_poll_add(sqe, fd_, events_);
    Commit(sqe);
  }

 private:
  int fd_;
  unsigned events_;
};

class Shutdown : public IoAwaiter {
 public:
  Shutdown(int fd, int how) : IoAwaiter(Deadline::Never()), fd_(fd), how_(how) {}
  void await_suspend(std::coroutine_handle<> h) {
    io_uring_sqe* sqe = Begin(h);
    io_uring_prep_shutdown(sqe, fd_, how_);
    Commit(sqe);
  }

 private:
  int fd_;
  int how_;
};

class Close : public IoAwaiter {
 public:
  explicit Close(int fd) : IoAwaiter(Deadline::Never()), fd_(fd) {}
  void await_suspend(std::coroutine_handle<> h) {
    io_uring_sqe* sqe = Begin(h);
    io_uring_prep_close(sqe, fd_);
    Commit(sqe);
  }

 private:
  int fd_;
};

// Cancels every operation on fd and waits for the cancel itself to complete.
// Returns how many were found (or -ENOENT when none).
class CancelFd : public IoAwaiter {
 public:
  explicit CancelFd(int fd) : IoAwaiter(Deadline::Never()), fd_(fd) {}
  void await_suspend(std::coroutine_handle<> h) {
    io_uring_sqe* sqe = Begin(h);
    io_uring_prep_cancel_fd(sqe, fd_, IORING_ASYNC_CANCEL_ALL);
    Commit(sqe);
  }

 private:
  int fd_;
};

// Non-blocking splice(2) on the calling thread; returns bytes moved or -errno
// (-EAGAIN when nothing could move).
IoResult SpliceNow(int fd_in, int fd_out, size_t len);

// splice(2) from a TCP socket stops in front of urgent data for good (-EAGAIN, or 0
// after the FIN) while poll keeps saying readable; an ordinary receive steps over it.
// True when `splice`, the result of SpliceNow from `fd`, is that case: it moved nothing
// at EOF, or after poll said readable (`polled`), and SIOCATMARK says the mark is next.
bool SpliceStuckAtUrgentMark(int fd, IoResult splice, bool polled);

// Moves up to `len` bytes from fd_in to fd_out (one of them a pipe). It tries
// splice(2) at once; if nothing can move it waits for `wait_events` on `wait_fd`
// through the ring and tries again.
//
// Why not IORING_OP_SPLICE: the kernel forces every io_uring splice onto an io-wq
// worker thread (REQ_F_FORCE_ASYNC), so a splice waiting on an idle socket parks a
// kernel thread. Readiness from the ring plus a non-blocking splice on the reactor
// thread costs no thread and no context switch.
class Splice : public IoAwaiter {
 public:
  Splice(int fd_in, int fd_out, size_t len, int wait_fd, unsigned wait_events, Deadline deadline)
      : IoAwaiter(deadline),
        fd_in_(fd_in),
        fd_out_(fd_out),
        len_(len),
        wait_fd_(wait_fd),
        wait_events_(wait_events) {
    handler = &OnPolled;
  }
  bool await_ready() noexcept {
    IoResult r = SpliceNow(fd_in_, fd_out_, len_);
    if (r.res != -EAGAIN) {
      res_ = r.res;
      return true;
    }
    return IoAwaiter::await_ready();
  }
  void await_suspend(std::coroutine_handle<> h) {
    waiter_ = h;
    Arm();
  }

 private:
  void Arm() {
    io_uring_sqe* sqe = Begin(waiter_);
    io_uring_prep_poll_add(sqe, wait_fd_, wait_events_);
    Commit(sqe);
  }
  static void OnPolled(Completion* c, int32_t res, uint32_t flags);

  int fd_in_;
  int fd_out_;
  size_t len_;
  int wait_fd_;
  unsigned wait_events_;
};

}  // namespace ringproxy
