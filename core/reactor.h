// Reactor: one io_uring per shard thread. It owns the ring, batches submissions
// (one io_uring_enter per loop turn that both submits and waits), reaps completions
// in batches and dispatches each one to the Completion that its user_data points at.
// It knows nothing of sockets or protocols; operations live in core/ops.h.
//
// A Completion lives inside the awaiter, inside the coroutine frame that waits for it,
// so a completion finds its coroutine with one pointer and no lookup. The rule that
// keeps this safe: no frame is destroyed while the kernel holds its user_data.
#pragma once

#include <liburing.h>

#include <coroutine>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/coalesce.h"
#include "core/counters.h"
#include "core/deadline.h"
#include "core/task.h"

namespace ringproxy {

struct Completion {
  using Handler = void (*)(Completion* self, int32_t res, uint32_t flags);
  Handler handler = nullptr;
};

// user_data for SQEs whose completion nobody waits for (cancels, linked timeouts).
inline constexpr uint64_t kIgnoredUserData = 0;

struct ReactorOptions {
  unsigned sq_entries = 1024;
  unsigned cq_entries = 0;  // 0 = 4 x sq_entries
  bool single_issuer = true;
  bool defer_taskrun = true;
  // Under load, sleep for a batch of completions for at most this long (0: off);
  // needs Linux 6.12 (IORING_FEAT_MIN_TIMEOUT), else ignored. See core/coalesce.h.
  unsigned coalesce_us = 0;
};

// An absolute CLOCK_MONOTONIC deadline as io_uring's timeouts take it.
inline __kernel_timespec ToKernelTimespec(Deadline d) {
  return {d.ns() / 1'000'000'000, d.ns() % 1'000'000'000};
}

struct ReactorStats {
  uint64_t loop_turns = 0;
  uint64_t enters = 0;
  uint64_t completions = 0;
  uint64_t sq_full_flushes = 0;
  uint64_t coalesced_waits = 0;  // sleeps that asked for more than one completion
};

// Whether a kernel release ("6.1.0-18-amd64", uname -r) is major.minor or later;
// false for one that does not start with two numbers.
bool KernelAtLeast(std::string_view release, int major, int minor);

class Reactor {
 public:
  // Creates the ring on the calling thread; that thread is the only one that may use it.
  static absl::StatusOr<std::unique_ptr<Reactor>> Create(const ReactorOptions& options);
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // The reactor of the calling thread, or nullptr.
  static Reactor* Current();

  // Runs the loop until `main` has finished. `main` must not return while it has
  // operations in flight (await or cancel them first).
  void Run(Task<void> main);

  // Returns a submission entry; when the queue is full the queued ones are submitted
  // first, so this never fails. The caller must fill it before the next GetSqe.
  io_uring_sqe* GetSqe();
  // Makes room for `n` consecutive entries (submitting what is queued if needed), so
  // that a chain (an operation and its linked timeout) is never split by a flush.
  void ReserveSqes(unsigned n);

  // Resumes `h` on the next loop turn (never inline: the caller keeps running).
  void Post(std::coroutine_handle<> h) { ready_.push_back(h); }

  // Asks the kernel to cancel every operation on `fd`; they complete with -ECANCELED.
  void CancelFd(int fd);
  // Asks the kernel to cancel the operation whose user_data is `c`.
  void Cancel(Completion* c);

  io_uring* ring() { return &ring_; }
  unsigned setup_flags() const { return setup_flags_; }
  bool defer_taskrun() const { return (setup_flags_ & IORING_SETUP_DEFER_TASKRUN) != 0; }
  const ReactorStats& stats() const { return stats_; }
  // coalesce_us was asked for but the kernel has no min_wait: batching is off.
  bool coalesce_unsupported() const { return coalesce_unsupported_; }
  // Also counts enters and batched sleeps into these (readable from any thread);
  // nullptr stops it. They must outlive the loop or be reset before they go.
  void MirrorStats(Counter* enters, Counter* coalesced_waits) {
    mirror_enters_ = enters;
    mirror_coalesced_ = coalesced_waits;
  }

 private:
  Reactor() = default;
  absl::Status Init(const ReactorOptions& options);
  void RunReady();
  void Reap();
  // Submits what is queued and sleeps until `nr` completions, or until the window
  // has passed and at least one has arrived.
  int SubmitAndWaitBatch(unsigned nr, unsigned window_us);

  io_uring ring_{};
  bool ring_initialized_ = false;
  unsigned setup_flags_ = 0;
  bool ring_fd_registered_ = false;
  bool coalesce_unsupported_ = false;
  CoalescePolicy coalesce_;
  Counter* mirror_enters_ = nullptr;
  Counter* mirror_coalesced_ = nullptr;
  std::vector<std::coroutine_handle<>> ready_;
  std::vector<std::coroutine_handle<>> running_;
  ReactorStats stats_;
};

// Runs `task` to completion on a fresh loop of `reactor` and returns its value.
// For tests, benchmarks and tools.
template <typename T>
T RunUntilComplete(Reactor& reactor, Task<T> task);

namespace internal {
template <typename T>
Task<void> StoreResult(Task<T> task, std::optional<T>* out) {
  out->emplace(co_await std::move(task));
}
}  // namespace internal

template <typename T>
T RunUntilComplete(Reactor& reactor, Task<T> task) {
  if constexpr (std::is_void_v<T>) {
    reactor.Run(std::move(task));
  } else {
    std::optional<T> out;
    reactor.Run(internal::StoreResult<T>(std::move(task), &out));
    return std::move(*out);
  }
}

}  // namespace ringproxy
