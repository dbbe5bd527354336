#include "route/host_resolver.h"

#include <netdb.h>
#include <pthread.h>
#include <sys/eventfd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>

#include "core/ops.h"
#include "core/reactor.h"

namespace ringproxy {

// Shared by the resolving thread and the shard; the thread's copy keeps it alive when
// every waiter gave up.
struct HostResolver::Job {
  std::string host;
  BlockingLookup lookup = nullptr;
  std::shared_ptr<std::atomic<size_t>> live;
  std::mutex mu;
  // Each waiter's eventfd, written once when the answer is in. Shared, so that a waiter
  // that gave up and closed its end leaves no number for the thread to write to.
  std::vector<std::shared_ptr<UniqueFd>> wakes;
  bool done = false;  // under mu; then rc, addresses and finished_ns are set for good
  int rc = 0;
  std::vector<SocketAddress> addresses;
  int64_t finished_ns = 0;
};

namespace {

using Job = HostResolver::Job;

int GetAddrInfo(const char* host, std::vector<SocketAddress>* out) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host, nullptr, &hints, &res);
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    SocketAddress addr = SocketAddress::FromSockaddr(a->ai_addr, a->ai_addrlen);
    bool seen = false;
    for (const SocketAddress& s : *out) seen = seen || s == addr;
    if (!seen) out->push_back(addr);
  }
  if (res != nullptr) freeaddrinfo(res);
  return rc;
}

void ResolveOnThread(const std::shared_ptr<Job>& job) {
  std::vector<SocketAddress> addresses;
  const int rc =
      (job->lookup != nullptr ? job->lookup : &GetAddrInfo)(job->host.c_str(), &addresses);
  std::lock_guard<std::mutex> lock(job->mu);
  job->rc = rc;
  job->addresses = std::move(addresses);
  job->finished_ns = MonotonicNowNs();
  job->done = true;
  const uint64_t one = 1;
  for (const std::shared_ptr<UniqueFd>& wake : job->wakes) {
    ssize_t n = write(wake->get(), &one, sizeof(one));
    (void)n;
  }
  job->wakes.clear();
}

void* ThreadMain(void* arg) {
  std::unique_ptr<std::shared_ptr<Job>> job(static_cast<std::shared_ptr<Job>*>(arg));
  ResolveOnThread(*job);
  (*job)->live->fetch_sub(1, std::memory_order_acq_rel);
  return nullptr;
}

// pthread, not std::thread: the build has no exceptions to report a failed start.
int StartDetached(const std::shared_ptr<Job>& job) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  auto* arg = new std::shared_ptr<Job>(job);
  pthread_t thread;
  int rc = pthread_create(&thread, &attr, &ThreadMain, arg);
  pthread_attr_destroy(&attr);
  if (rc != 0) delete arg;
  return rc;
}

}  // namespace

HostAnswer HostResolver::Answer(const Entry& e, uint16_t port, bool cached) {
  HostAnswer a;
  a.cached = cached;
  a.error = e.error;
  a.addresses = e.addresses;
  for (SocketAddress& s : a.addresses) s.set_port(port);
  return a;
}

void HostResolver::Remember(const std::string& host, Entry e) {
  if (cache_.size() >= options_.max_entries && !cache_.contains(host)) {
    const int64_t now = MonotonicNowNs();
    absl::erase_if(cache_, [now](const auto& kv) { return kv.second.expires_ns <= now; });
    if (cache_.size() >= options_.max_entries) cache_.clear();
  }
  cache_[host] = std::move(e);
}

HostResolver::Entry HostResolver::EntryOf(const Job& job) const {
  Entry e;
  if (job.rc != 0 || job.addresses.empty()) {
    e.error = job.rc != 0 ? gai_strerror(job.rc) : "no IPv4 or IPv6 address";
    e.expires_ns = job.finished_ns + options_.negative_ttl_ms * 1'000'000;
  } else {
    e.addresses = job.addresses;
    e.expires_ns = job.finished_ns + options_.ttl_ms * 1'000'000;
  }
  return e;
}

std::shared_ptr<HostResolver::Job> HostResolver::Start(const std::string& host,
                                                       std::string* error) {
  if (live_->load(std::memory_order_acquire) >= options_.max_in_flight) {
    *error = "too many name resolutions in flight";
    return nullptr;
  }
  auto job = std::make_shared<Job>();
  job->host = host;
  job->lookup = options_.lookup;
  job->live = live_;
  live_->fetch_add(1, std::memory_order_acq_rel);
  if (int rc = StartDetached(job); rc != 0) {
    live_->fetch_sub(1, std::memory_order_acq_rel);
    *error = std::string("cannot start a resolver thread: ") + strerror(rc);
    return nullptr;
  }
  ++threads_started_;
  // Keep only the names still being resolved (at most max_in_flight of them): a done
  // entry whose waiters all gave up is otherwise dropped only when its name comes back.
  if (in_flight_.size() >= options_.max_in_flight) {
    absl::erase_if(in_flight_, [](const auto& kv) {
      std::lock_guard<std::mutex> lock(kv.second->mu);
      return kv.second->done;
    });
  }
  in_flight_[host] = job;
  return job;
}

Task<HostAnswer> HostResolver::Resolve(std::string host, uint16_t port, ConnectControl* control) {
  const int64_t now = MonotonicNowNs();
  if (auto it = cache_.find(host); it != cache_.end()) {
    if (it->second.expires_ns > now) co_return Answer(it->second, port, true);
    cache_.erase(it);
  }
  HostAnswer failed;
  std::shared_ptr<Job> job;
  if (auto it = in_flight_.find(host); it != in_flight_.end()) {
    job = it->second;
    std::lock_guard<std::mutex> lock(job->mu);
    // Done, and no waiter took the answer in time (they all gave up): it may be old.
    const int64_t ttl_ms =
        job->rc != 0 || job->addresses.empty() ? options_.negative_ttl_ms : options_.ttl_ms;
    if (job->done && job->finished_ns + ttl_ms * 1'000'000 <= now) job = nullptr;
  }
  if (job == nullptr) {
    in_flight_.erase(host);
    job = Start(host, &failed.error);
    if (job == nullptr) co_return failed;
  }
  auto wake = std::make_shared<UniqueFd>(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake->valid()) {
    failed.error = std::string("eventfd: ") + strerror(errno);
    co_return failed;
  }
  bool done = false;
  {
    std::lock_guard<std::mutex> lock(job->mu);
    done = job->done;
    if (!done) job->wakes.push_back(wake);
  }
  if (!done) {
    uint64_t value = 0;
    std::span<std::byte> buf(reinterpret_cast<std::byte*>(&value), sizeof(value));
    control->current_fd = wake->get();
    IoResult r{-ECANCELED};
    if (!control->stop) r = co_await Read(wake->get(), buf, Deadline::AfterMs(options_.timeout_ms));
    control->current_fd = -1;
    if (!r.ok()) {
      // No longer waiting: the thread must not keep this eventfd open (a resolver that
      // hangs would otherwise collect one per login until it returns).
      {
        std::lock_guard<std::mutex> lock(job->mu);
        std::erase(job->wakes, wake);
      }
      failed.error = r.timed_out() ? "name resolution timed out" : "name resolution stopped";
      co_return failed;
    }
  }
  // The thread set the answer before it wrote to the eventfd; the lock orders the reads.
  Entry e;
  {
    std::lock_guard<std::mutex> lock(job->mu);
    e = EntryOf(*job);
  }
  if (auto it = in_flight_.find(host); it != in_flight_.end() && it->second == job) {
    in_flight_.erase(it);
  }
  HostAnswer answer = Answer(e, port, false);
  Remember(host, std::move(e));
  co_return answer;
}

}  // namespace ringproxy
