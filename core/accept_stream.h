// AcceptStream: one multishot accept on a listening socket, as an async stream that
// yields new connections (non-blocking, close-on-exec). One SQE serves many
// connections; the stream re-arms when the kernel ends the multishot (error, or
// Pause() for back-pressure). Stop() must be awaited before destruction.
#pragma once

#include <coroutine>

#include "core/reactor.h"
#include "core/result.h"
#include "core/small_queue.h"
#include "core/task.h"

namespace ringproxy {

class AcceptStream final : private Completion {
 public:
  explicit AcceptStream(int listen_fd);
  ~AcceptStream();
  AcceptStream(const AcceptStream&) = delete;
  AcceptStream& operator=(const AcceptStream&) = delete;

  class NextAwaiter {
   public:
    bool await_ready();
    void await_suspend(std::coroutine_handle<> h);
    IoResult await_resume();

   private:
    friend class AcceptStream;
    explicit NextAwaiter(AcceptStream* s) : stream_(s) {}
    AcceptStream* stream_;
  };
  // The next accepted fd, or -errno (-EMFILE and the like: the caller backs off and
  // calls Next() again), or -ECANCELED once stopping.
  NextAwaiter Next() { return NextAwaiter(this); }

  // Stops taking connections from the kernel until the next Next() (they queue in
  // the listen backlog meanwhile).
  void Pause();
  // Asks the multishot to end; a waiting Next() returns -ECANCELED. Synchronous, so
  // control code that cannot co_await may call it.
  void RequestStop();
  // RequestStop(), then waits for the kernel to let go. Connections accepted
  // but not yet taken stay queued: take them with TryTake() (the destructor closes
  // whatever is left).
  Task<void> Stop();
  // A queued accepted fd, or -1. For draining after Stop().
  int TryTake();

  uint64_t arms() const { return arms_; }

 private:
  void Arm();
  static void OnCqe(Completion* c, int32_t res, uint32_t flags);

  int fd_;
  SmallQueue<int32_t, 4> queue_;
  bool armed_ = false;
  bool cancelling_ = false;
  bool stopping_ = false;
  std::coroutine_handle<> waiter_;
  std::coroutine_handle<> stop_waiter_;
  uint64_t arms_ = 0;
};

}  // namespace ringproxy
