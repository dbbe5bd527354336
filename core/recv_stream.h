// RecvStream: a multishot receive on one socket that draws from a BufferRing. It is
// an async stream owned by the session: Next() yields the next chunk, EOF or error.
//
// Back-pressure: when `max_queued` chunks are waiting for the consumer, the multishot
// is cancelled and re-armed on the next Next(); ENOBUFS (ring empty) re-arms when a
// buffer comes back. Neither loses data: bytes stay in the socket until re-armed.
// Stop() must be awaited before destruction: the kernel holds a pointer to it.
#pragma once

#include <coroutine>
#include <cstdint>

#include "core/buffer_ring.h"
#include "core/deadline.h"
#include "core/reactor.h"
#include "core/result.h"
#include "core/small_queue.h"
#include "core/task.h"

namespace ringproxy {

struct Received {
  IoResult status;        // > 0: bytes in `buffer`; 0: end of stream; < 0: -errno
  ProvidedBuffer buffer;  // valid when status.res > 0
};

class RecvStream final : private Completion, private BufferWaiter {
 public:
  RecvStream(BufferRing& ring, int fd, uint32_t max_queued = 8);
  ~RecvStream();
  RecvStream(const RecvStream&) = delete;
  RecvStream& operator=(const RecvStream&) = delete;

  class NextAwaiter {
   public:
    bool await_ready();
    void await_suspend(std::coroutine_handle<> h);
    Received await_resume();

   private:
    friend class RecvStream;
    NextAwaiter(RecvStream* s, Deadline d) : stream_(s), deadline_(d) {}
    RecvStream* stream_;
    Deadline deadline_;
  };
  // The next chunk; -ETIMEDOUT when the deadline passes first (the stream stays usable).
  NextAwaiter Next(Deadline deadline) { return NextAwaiter(this, deadline); }

  // Cancels what is in flight and waits until the kernel no longer references us.
  Task<void> Stop();
  // After Stop(): takes the next chunk that was received but not yet consumed (data
  // or the EOF/error that ended the stream). False when none is left.
  bool TryTake(Received* out);

  bool armed() const { return armed_; }
  uint64_t rearms() const { return rearms_; }

 private:
  struct Entry {
    int32_t res;
    uint16_t buffer_id;
  };
  struct TimerCompletion : Completion {
    RecvStream* stream;
  };

  void Arm();
  void ArmTimer(Deadline d);
  void Wake();
  void RemoveTimer();
  void MaybeFinishStop();
  void OnBuffersAvailable() override;
  static void OnCqe(Completion* c, int32_t res, uint32_t flags);
  static void OnTimer(Completion* c, int32_t res, uint32_t flags);

  BufferRing& ring_;
  int fd_;
  uint32_t max_queued_;
  SmallQueue<Entry, 4> queue_;
  bool armed_ = false;
  bool cancelling_ = false;  // a cancel for the multishot is in flight
  bool finished_ = false;    // EOF or error queued: never re-arm
  bool stopping_ = false;
  bool timed_out_ = false;
  bool cancelled_externally_ = false;  // someone else's cancel (CancelFd) ended the multishot
  bool timer_armed_ = false;
  std::coroutine_handle<> waiter_;
  Deadline waiter_deadline_ = Deadline::Never();
  std::coroutine_handle<> stop_waiter_;
  TimerCompletion timer_;
  __kernel_timespec timer_ts_{};
  uint64_t rearms_ = 0;
};

}  // namespace ringproxy
