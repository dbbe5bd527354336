#include "core/reactor.h"

#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace ringproxy {
namespace {

thread_local Reactor* t_current = nullptr;

constexpr unsigned kReapBatch = 256;

// Linux 6.12's io_uring_getevents_arg, whose `pad` became `min_wait_usec` (liburing
// before 2.8 has neither the name nor the feature bit).
#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif
struct GeteventsArgMinWait {
  uint64_t sigmask;
  uint32_t sigmask_sz;
  uint32_t min_wait_usec;
  uint64_t ts;
};
static_assert(sizeof(GeteventsArgMinWait) == sizeof(io_uring_getevents_arg));

// A batched sleep still ends after this long with nothing at all (the loop goes round).
constexpr int64_t kBatchSleepCapNs = 1'000'000'000;

Task<void> RunMain(Task<void> main, bool* done) {
  co_await std::move(main);
  *done = true;
}

}  // namespace

Reactor* Reactor::Current() { return t_current; }

absl::StatusOr<std::unique_ptr<Reactor>> Reactor::Create(const ReactorOptions& options) {
  // splice(2) to a socket whose peer has gone raises SIGPIPE and cannot be told
  // MSG_NOSIGNAL; a proxy must see EPIPE instead of dying. Process-wide by nature.
  signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<Reactor> reactor(new Reactor());
  absl::Status status = reactor->Init(options);
  if (!status.ok()) return status;
  return reactor;
}

absl::Status Reactor::Init(const ReactorOptions& options) {
  // Flags, strongest first; each fallback drops what an older kernel refuses.
  //  CQSIZE: a CQ 4x the SQ, so bursts of multishot completions do not overflow.
  //  SUBMIT_ALL: one bad SQE does not stop the rest of the batch from being submitted.
  //  COOP_TASKRUN + TASKRUN_FLAG: completions are not forced onto us by IPIs; the
  //    kernel raises a flag and we run the work when we next enter (man page advice).
  //  SINGLE_ISSUER: only this thread submits; lets the kernel skip locking.
  //  DEFER_TASKRUN: completion work runs only when we wait, in our loop, in batches.
  // Every session reads through multishot receive (6.0): on an older kernel each one
  // would fail its first read, after a start that looked fine.
  utsname kernel;
  if (uname(&kernel) == 0 && !KernelAtLeast(kernel.release, 6, 0)) {
    return absl::FailedPreconditionError(fmt::format(
        "Linux 6.0 or later is needed (multishot receive); this kernel is {}", kernel.release));
  }
  const unsigned base = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
  const unsigned coop = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  std::vector<unsigned> attempts;
  if (options.single_issuer && options.defer_taskrun) {
    attempts.push_back(base | coop | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
  }
  if (options.single_issuer) attempts.push_back(base | coop | IORING_SETUP_SINGLE_ISSUER);
  attempts.push_back(base | coop);
  attempts.push_back(base);
  const unsigned cq = options.cq_entries != 0 ? options.cq_entries : 4 * options.sq_entries;
  int ret = -EINVAL;
  io_uring_params params;
  for (unsigned flags : attempts) {
    memset(&params, 0, sizeof(params));
    params.flags = flags;
    params.cq_entries = cq;
    ret = io_uring_queue_init_params(options.sq_entries, &ring_, &params);
    if (ret == 0) {
      setup_flags_ = flags;
      break;
    }
    if (ret != -EINVAL) break;
  }
  if (ret != 0) {
    if (ret == -ENOMEM) {
      return absl::ResourceExhaustedError(
          "io_uring_setup failed: ENOMEM (ring memory counts against RLIMIT_MEMLOCK on "
          "kernels before 5.12; raise it or lower runtime.ring_entries)");
    }
    if (ret == -EPERM) {
      return absl::PermissionDeniedError(
          "io_uring_setup failed: EPERM (io_uring is disabled by sysctl "
          "kernel.io_uring_disabled or a seccomp profile)");
    }
    return absl::InternalError(fmt::format("io_uring_setup failed: {}", strerror(-ret)));
  }
  ring_initialized_ = true;
  if (options.coalesce_us > 0) {
    // Without min_wait a batched sleep could not be bounded: run without batching.
    coalesce_unsupported_ = (params.features & IORING_FEAT_MIN_TIMEOUT) == 0;
    if (!coalesce_unsupported_) coalesce_ = CoalescePolicy(options.coalesce_us);
  }
  // A registered ring fd saves an fget/fput on every io_uring_enter.
  ring_fd_registered_ = io_uring_register_ring_fd(&ring_) == 1;
  ready_.reserve(64);
  running_.reserve(64);
  return absl::OkStatus();
}

bool KernelAtLeast(std::string_view release, int major, int minor) {
  int parts[2] = {0, 0};
  size_t at = 0;
  for (int i = 0; i < 2; ++i) {
    if (at >= release.size() || release[at] < '0' || release[at] > '9') return false;
    while (at < release.size() && release[at] >= '0' && release[at] <= '9' && parts[i] < 100000) {
      parts[i] = parts[i] * 10 + (release[at] - '0');
      ++at;
    }
    if (i == 0) {
      if (at >= release.size() || release[at] != '.') return false;
      ++at;
    }
  }
  return parts[0] > major || (parts[0] == major && parts[1] >= minor);
}

Reactor::~Reactor() {
  if (ring_initialized_) io_uring_queue_exit(&ring_);
}

io_uring_sqe* Reactor::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (__builtin_expect(sqe == nullptr, 0)) {
    // SQ full: hand what is queued to the kernel; completions stay in the CQ
    // until the loop reaps them, so nothing runs re-entrantly here.
    ++stats_.sq_full_flushes;
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
    RP_CHECK(sqe != nullptr);
  }
  return sqe;
}

void Reactor::ReserveSqes(unsigned n) {
  if (io_uring_sq_space_left(&ring_) < n) {
    ++stats_.sq_full_flushes;
    io_uring_submit(&ring_);
  }
}

void Reactor::CancelFd(int fd) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data64(sqe, kIgnoredUserData);
}

void Reactor::Cancel(Completion* c) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_cancel64(sqe, reinterpret_cast<uint64_t>(c), 0);
  io_uring_sqe_set_data64(sqe, kIgnoredUserData);
}

void Reactor::RunReady() {
  while (!ready_.empty()) {
    running_.swap(ready_);
    for (std::coroutine_handle<> h : running_) h.resume();
    running_.clear();
  }
}

void Reactor::Reap() {
  struct Copied {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
  };
  io_uring_cqe* cqes[kReapBatch];
  Copied copied[kReapBatch];
  for (;;) {
    unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kReapBatch);
    if (n == 0) return;
    for (unsigned i = 0; i < n; ++i) {
      copied[i] = {cqes[i]->user_data, cqes[i]->res, cqes[i]->flags};
    }
    // Advance once per batch, before dispatch, so handlers may submit freely.
    io_uring_cq_advance(&ring_, n);
    stats_.completions += n;
    for (unsigned i = 0; i < n; ++i) {
      if (copied[i].user_data == kIgnoredUserData) continue;
      auto* c = reinterpret_cast<Completion*>(copied[i].user_data);
      c->handler(c, copied[i].res, copied[i].flags);
    }
    if (n < kReapBatch) return;
  }
}

int Reactor::SubmitAndWaitBatch(unsigned nr, unsigned window_us) {
  // What io_uring_submit does to publish the queued entries (no SQPOLL here): this
  // liburing has no call that passes min_wait, so the enter is made directly.
  io_uring_sq* sq = &ring_.sq;
  const unsigned tail = sq->sqe_tail;
  if (sq->sqe_head != tail) {
    sq->sqe_head = tail;
    io_uring_smp_store_release(sq->ktail, tail);
  }
  const unsigned to_submit = tail - *sq->khead;
  __kernel_timespec cap{kBatchSleepCapNs / 1'000'000'000, kBatchSleepCapNs % 1'000'000'000};
  GeteventsArgMinWait arg{0, 0, window_us, reinterpret_cast<uint64_t>(&cap)};
  unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
  int fd = ring_.ring_fd;
  if (ring_fd_registered_) {
    flags |= IORING_ENTER_REGISTERED_RING;
    fd = ring_.enter_ring_fd;
  }
  ++stats_.coalesced_waits;
  if (mirror_coalesced_ != nullptr) mirror_coalesced_->Add();
  long ret = syscall(__NR_io_uring_enter, fd, to_submit, nr, flags, &arg, sizeof(arg));
  return ret < 0 ? -errno : static_cast<int>(ret);
}

void Reactor::Run(Task<void> main) {
  Reactor* previous = t_current;
  t_current = this;
  const int64_t previous_turn_ns = internal::t_turn_ns;
  internal::t_turn_ns = 0;
  bool done = false;
  Spawn(RunMain(std::move(main), &done));
  while (!done) {
    ++stats_.loop_turns;
    RunReady();
    if (done) break;
    // One enter per turn: submit what the turn queued and, when nothing is ready to
    // run, sleep until at least one completion arrives.
    int ret;
    if (!ready_.empty()) {
      ret = io_uring_submit_and_get_events(&ring_);
    } else if (coalesce_.target() > 1) {
      ret = SubmitAndWaitBatch(coalesce_.target(), coalesce_.window_us());
    } else {
      ret = io_uring_submit_and_wait(&ring_, 1);
    }
    ++stats_.enters;
    if (mirror_enters_ != nullptr) mirror_enters_->Add();
    if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY && ret != -ETIME) {
      RP_CHECK(false && "io_uring_enter failed");
    }
    // A new turn: what runs next reads the clock afresh (the enter may have slept).
    internal::t_turn_ns = 0;
    Reap();
    if (coalesce_.window_us() != 0) coalesce_.Observe(stats_.completions, TurnNowNs());
  }
  // Whatever the last step queued (cancels, closes) still goes to the kernel.
  io_uring_submit(&ring_);
  t_current = previous;
  internal::t_turn_ns = previous_turn_ns;
}

}  // namespace ringproxy
