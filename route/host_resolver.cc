#include "route/host_resolver.h"

#include <netdb.h>
#include <pthread.h>
#include <sys/eventfd.h>

#include <atomic>
#include <cstring>
#include <memory>

#include "core/ops.h"
#include "core/reactor.h"

namespace ringproxy {
namespace {

// Shared by the resolving thread and the shard; the thread's copy keeps it alive when
// the session gave up waiting.
struct Job {
  std::string host;
  BlockingLookup lookup = nullptr;
  std::shared_ptr<std::atomic<size_t>> live;
  UniqueFd event;
  std::atomic<bool> done{false};
  int rc = 0;
  std::vector<SocketAddress> addresses;
};

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
  job->rc =
      (job->lookup != nullptr ? job->lookup : &GetAddrInfo)(job->host.c_str(), &job->addresses);
  job->done.store(true, std::memory_order_release);
  uint64_t one = 1;
  ssize_t n = write(job->event.get(), &one, sizeof(one));
  (void)n;
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

Task<HostAnswer> HostResolver::Resolve(std::string host, uint16_t port, ConnectControl* control) {
  const int64_t now = MonotonicNowNs();
  if (auto it = cache_.find(host); it != cache_.end()) {
    if (it->second.expires_ns > now) co_return Answer(it->second, port, true);
    cache_.erase(it);
  }
  HostAnswer failed;
  if (live_->load(std::memory_order_acquire) >= options_.max_in_flight) {
    failed.error = "too many name resolutions in flight";
    co_return failed;
  }
  auto job = std::make_shared<Job>();
  job->host = host;
  job->lookup = options_.lookup;
  job->live = live_;
  job->event.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!job->event.valid()) {
    failed.error = std::string("eventfd: ") + strerror(errno);
    co_return failed;
  }
  live_->fetch_add(1, std::memory_order_acq_rel);
  if (int rc = StartDetached(job); rc != 0) {
    live_->fetch_sub(1, std::memory_order_acq_rel);
    failed.error = std::string("cannot start a resolver thread: ") + strerror(rc);
    co_return failed;
  }
  ++threads_started_;
  uint64_t value = 0;
  std::span<std::byte> buf(reinterpret_cast<std::byte*>(&value), sizeof(value));
  control->current_fd = job->event.get();
  IoResult r{-ECANCELED};
  if (!control->stop) {
    r = co_await Read(job->event.get(), buf, Deadline::AfterMs(options_.timeout_ms));
  }
  control->current_fd = -1;
  if (!r.ok() || !job->done.load(std::memory_order_acquire)) {
    failed.error = r.timed_out() ? "name resolution timed out" : "name resolution stopped";
    co_return failed;
  }
  Entry e;
  if (job->rc != 0 || job->addresses.empty()) {
    e.error = job->rc != 0 ? gai_strerror(job->rc) : "no IPv4 or IPv6 address";
    e.expires_ns = MonotonicNowNs() + options_.negative_ttl_ms * 1'000'000;
  } else {
    e.addresses = std::move(job->addresses);
    e.expires_ns = MonotonicNowNs() + options_.ttl_ms * 1'000'000;
  }
  HostAnswer answer = Answer(e, port, false);
  Remember(host, std::move(e));
  co_return answer;
}

}  // namespace ringproxy
