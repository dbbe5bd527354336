#include "core/shard.h"

#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <future>

#include "core/log.h"
#include "core/ops.h"
#include "core/sync.h"
#include "fmt/format.h"

namespace ringproxy {

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int i = 0; i < CPU_SETSIZE; ++i) {
    if (CPU_ISSET(i, &set)) cpus.push_back(i);
  }
  return cpus;
}

absl::StatusOr<std::unique_ptr<Shard>> Shard::Start(int id, int cpu, const ReactorOptions& options,
                                                    Main main) {
  std::unique_ptr<Shard> shard(new Shard(id, cpu));
  shard->event_fd_ = eventfd(0, EFD_CLOEXEC);
  if (shard->event_fd_ < 0) {
    return absl::InternalError(fmt::format("eventfd: {}", strerror(errno)));
  }
  std::promise<absl::Status> started;
  std::future<absl::Status> started_future = started.get_future();
  Shard* raw = shard.get();
  shard->thread_ = std::thread([raw, options, main = std::move(main), &started]() mutable {
    if (raw->cpu_ >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(raw->cpu_, &set);
      int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
      if (rc != 0) {
        started.set_value(absl::InvalidArgumentError(
            fmt::format("shard {}: cannot pin to CPU {}: {}", raw->id_, raw->cpu_, strerror(rc))));
        return;
      }
    }
    log::SetThreadName(fmt::format("shard {}", raw->id_));
    absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
    if (!reactor.ok()) {
      started.set_value(reactor.status());
      return;
    }
    raw->reactor_ = std::move(*reactor);
    started.set_value(absl::OkStatus());
    raw->reactor_->Run(raw->RunMain(std::move(main)));
    raw->reactor_.reset();
  });
  absl::Status status = started_future.get();
  if (!status.ok()) {
    shard->thread_.join();
    return status;
  }
  return shard;
}

Shard::~Shard() {
  Join();
  if (event_fd_ >= 0) close(event_fd_);
}

void Shard::Join() {
  if (thread_.joinable()) thread_.join();
}

void Shard::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!mailbox_closed_) {
      mailbox_.push_back(std::move(fn));
      fn = nullptr;
    }
  }
  if (fn) return;  // destroyed here, outside the lock: nobody will run it
  uint64_t one = 1;
  // An eventfd write never blocks unless the counter would overflow.
  ssize_t n = write(event_fd_, &one, sizeof(one));
  (void)n;
}

Task<void> Shard::RunMain(Main main) {
  Spawn(MailboxLoop());
  co_await main(*this);
  main_done_ = true;
  // Wake the mailbox loop so it sees main_done_ and finishes; it owns no other op.
  uint64_t one = 1;
  ssize_t n = write(event_fd_, &one, sizeof(one));
  (void)n;
  co_await mailbox_done_.Wait();
}

Task<void> Shard::MailboxLoop() {
  uint64_t value = 0;
  for (;;) {
    IoResult r = co_await Read(event_fd_, {reinterpret_cast<std::byte*>(&value), sizeof(value)},
                               Deadline::Never());
    std::vector<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch.swap(mailbox_);
    }
    for (auto& fn : batch) fn();
    if (main_done_ || (!r.ok() && r.res != -EINTR && r.res != -EAGAIN)) break;
  }
  std::vector<std::function<void()>> unrun;
  {
    std::lock_guard<std::mutex> lock(mu_);
    mailbox_closed_ = true;
    unrun.swap(mailbox_);
  }
  unrun.clear();  // posted too late to run: released now
  mailbox_done_.Set();
}

}  // namespace ringproxy
