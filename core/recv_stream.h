// RecvStream: a multishot receive on one socket that draws from the shard's
// BufferRing, as an async stream owned by the connection: Next() yields the next
// chunk, EOF or error.
//
// Bounded, so that one connection can never starve its shard:
//  - it keeps at most `max_held` ring buffers its consumer has not taken yet (none
//    while the ring is under pressure, except one for a consumer already waiting);
//  - bytes beyond that are copied into the stream's own spill buffer and the ring
//    buffer goes back at once;
//  - once the spill holds `spill_bytes` (or at once when spill_bytes is 0) the
//    multishot is paused: further bytes wait in the kernel until the consumer asks.
// ENOBUFS (ring empty) re-arms when a buffer comes back, and only a stream whose
// consumer is waiting, or whose end is watched, asks for that wake-up, so a returned
// buffer never goes to a stream nobody reads.
//
// Abort() is sticky: nothing re-arms afterwards and Next() returns -ECANCELED.
// Stop() must be awaited before destruction: the kernel holds a pointer to us.
#pragma once

#include <coroutine>
#include <cstdint>
#include <span>
#include <string>

#include "core/buffer_ring.h"
#include "core/deadline.h"
#include "core/reactor.h"
#include "core/result.h"
#include "core/small_queue.h"
#include "core/task.h"

namespace ringproxy {

struct RecvLimits {
  uint32_t max_held = 2;         // ring buffers queued for the consumer
  uint32_t spill_bytes = 16384;  // own buffer for bytes over max_held (0: pause instead)
};

struct Received {
  IoResult status;        // > 0: bytes in data(); 0: end of stream; < 0: -errno
  ProvidedBuffer buffer;  // ring data, or
  std::string spilled;    // data copied out of the ring (when `buffer` is not valid)

  std::span<const std::byte> data() const {
    if (buffer.valid()) return buffer.data();
    return {reinterpret_cast<const std::byte*>(spilled.data()), spilled.size()};
  }
};

// Told when the peer ends its side (an EOF, or a reset or another error) while no
// Next() waits, whatever it sent before is still untaken: a session busy elsewhere
// learns that its client left, and judges the bytes left (a pipelined request behind a
// half-close is still answered; a TLS close_notify is not a request).
class PeerEndObserver {
 public:
  virtual void OnPeerEnded(bool reset) = 0;

 protected:
  ~PeerEndObserver() = default;
};

class RecvStream final : private Completion, private BufferWaiter {
 public:
  RecvStream(BufferRing& ring, int fd, RecvLimits limits = {});
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
  // The next chunk; -ETIMEDOUT when the deadline passes first (the stream stays
  // usable); -ECANCELED after Abort()/Stop() or someone else's cancel.
  NextAwaiter Next(Deadline deadline) { return NextAwaiter(this, deadline); }

  // Takes what is already received without waiting or arming: false when nothing.
  bool TryTake(Received* out);
  // Bytes received and not taken yet (queued buffers and spill).
  size_t buffered() const;
  // Appends them to *out when there are at most `max`; false (nothing appended) if more.
  bool CopyUntaken(size_t max, std::string* out) const;
  // Drops everything received and not taken yet; returns how many bytes.
  size_t Discard();
  // For a consumer about to wait on something else (a lookup, a peer that does not
  // read): the queued ring buffers are copied into the spill and go back, and until the
  // consumer next asks, arriving bytes are spilled (then paused), not held in the ring.
  // A shard's ring must not be pinned by connections that are not reading it.
  void Detach();

  // Ends the multishot and waits for the kernel to let go; what was received stays
  // queued (TryTake) and the next Next() arms again.
  Task<void> Pause();
  // Sticky stop: no re-arm from now on, a waiting Next() returns -ECANCELED soon.
  // Synchronous, so stop paths that cannot await may call it.
  void Abort();
  // Abort(), then waits until the kernel no longer references us.
  Task<void> Stop();

  // One observer at most (nullptr: none); told at once when the end has already come.
  // A paused stream with nothing untaken is armed again to see the end (when the ring
  // is empty, once a buffer comes back); one that holds untaken bytes stays paused and
  // tells nothing.
  void WatchEnd(PeerEndObserver* observer);
  // Brings a waiting Next()'s deadline forward to `d`; nothing when none waits or its
  // deadline comes first.
  void ShortenWait(Deadline d);

  bool armed() const { return armed_; }
  bool aborted() const { return aborted_; }
  uint64_t rearms() const { return rearms_; }
  uint64_t spilled_bytes() const { return spilled_total_; }

 private:
  struct Entry {
    int32_t res;
    uint16_t buffer_id;
  };
  struct TimerCompletion : Completion {
    RecvStream* stream;
  };
  static constexpr int32_t kNoTerminal = 1;

  bool HasData() const { return !queue_.empty() || !spill_.empty(); }
  uint32_t HeldLimit() const;
  void OnData(int32_t res, uint16_t id);
  void Arm();
  void RearmForWaiter();
  void RequestCancel();
  void ArmTimer(Deadline d);
  // Makes sure a kernel timer fires no later than `d`.
  void CoverDeadline(Deadline d);
  void Wake();
  void RemoveTimer();
  void MaybeFinishWait();
  void MaybeTellEnd();
  void OnBuffersAvailable() override;
  static void OnCqe(Completion* c, int32_t res, uint32_t flags);
  static void OnTimer(Completion* c, int32_t res, uint32_t flags);

  BufferRing& ring_;
  int fd_;
  RecvLimits limits_;
  SmallQueue<Entry, 2> queue_;
  std::string spill_;               // bytes after the queued buffers, in order
  int32_t terminal_ = kNoTerminal;  // EOF (0) or -errno, after queue and spill
  bool armed_ = false;
  bool cancelling_ = false;  // a cancel for the multishot is in flight
  bool aborted_ = false;
  bool timed_out_ = false;
  bool cancelled_externally_ = false;  // someone else's cancel (CancelFd) ended the multishot
  bool detached_ = false;              // Detach() until the consumer next asks
  bool timer_armed_ = false;
  bool timer_removing_ = false;                  // a remove for the timer is in flight
  Deadline timer_deadline_ = Deadline::Never();  // when the armed timer fires
  std::coroutine_handle<> waiter_;
  Deadline waiter_deadline_ = Deadline::Never();
  std::coroutine_handle<> quiet_waiter_;  // Pause()/Stop(): waits for the kernel to let go
  TimerCompletion timer_;
  __kernel_timespec timer_ts_{};
  uint64_t rearms_ = 0;
  uint64_t spilled_total_ = 0;
  PeerEndObserver* end_observer_ = nullptr;
};

}  // namespace ringproxy
