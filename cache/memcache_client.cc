#include "cache/memcache_client.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "core/log.h"
#include "core/ops.h"
#include "fmt/format.h"

namespace ringproxy {

using memcache::Opcode;

// One request from the moment it is queued until its reply (or failure). Lives in the
// frame of the coroutine that issued it.
struct MemcacheClient::Pending : IntrusiveNode<Pending> {
  uint32_t opaque = 0;
  Opcode opcode = Opcode::kGet;
  int64_t deadline_ns = 0;
  McReply reply;
  bool done = false;
  bool again = false;  // failed because its server went bad: worth placing again
  std::coroutine_handle<> waiter;
};

struct MemcacheClient::Server {
  enum class State { kIdle, kConnecting, kUp, kBad };
  CacheServer config;
  int index = 0;
  State state = State::kIdle;
  int64_t bad_until_ns = 0;
  // Connecting again after reconnect_ms: its keys stay with the others until it is up.
  bool probing = false;
  uint64_t connect_attempt = 0;  // a Connect that finds another one started since: stale
  UniqueFd fd;
  std::string out;  // encoded requests not written yet
  bool writing = false;
  IntrusiveList<Pending> pending;  // in the order they were sent
  Gate tasks;                      // connect, reader, writer of the current connection
};

class MemcacheClient::Waiter {
 public:
  explicit Waiter(Pending* p) : p_(p) {}
  bool await_ready() const { return p_->done; }
  void await_suspend(std::coroutine_handle<> h) { p_->waiter = h; }
  void await_resume() const {}

 private:
  Pending* p_;
};

MemcacheClient::MemcacheClient(MemcacheOptions options)
    : options_(std::move(options)), placement_(options_.servers, options_.distribution) {
  for (size_t i = 0; i < options_.servers.size(); ++i) {
    auto s = std::make_unique<Server>();
    s->config = options_.servers[i];
    s->index = static_cast<int>(i);
    servers_.push_back(std::move(s));
  }
}

MemcacheClient::~MemcacheClient() {
  for (auto& s : servers_) RP_CHECK(s->pending.empty() && s->tasks.count() == 0);
  RP_CHECK(tasks_.count() == 0);
}

bool MemcacheClient::ServerUsable(size_t index) const {
  const Server& s = *servers_[index];
  return s.state != Server::State::kBad && !s.probing;
}

int MemcacheClient::ServerFor(std::string_view key) {
  const int64_t now = MonotonicNowNs();
  for (auto& s : servers_) {
    if (s->state == Server::State::kBad && now >= s->bad_until_ns && !closing_) {
      // Tried again in the background: a server that still drops packets would
      // otherwise hold every request for its keys for a connect timeout.
      s->state = Server::State::kConnecting;
      s->probing = true;
      Spawn(Connect(s.get(), tasks_.Enter()));
    }
  }
  const int index = placement_.Pick(key, [this](size_t i) { return ServerUsable(i); });
  if (index >= 0) return index;
  // None is up: wait for one being tried again rather than fail at once.
  return placement_.Pick(key, [this](size_t i) {
    return servers_[i]->probing && servers_[i]->state == Server::State::kConnecting;
  });
}

void MemcacheClient::Complete(Pending* p, McError error) {
  if (p->done) return;
  p->done = true;
  p->reply.error = error;
  if (error == McError::kUnavailable) ++stats_.unavailable;
  // Through the ready queue: the reader that completes it keeps running safely.
  if (p->waiter) Reactor::Current()->Post(p->waiter);
}

void MemcacheClient::MarkBad(Server& s, std::string_view why) {
  if (s.state == Server::State::kBad) return;
  RP_LOG(kWarn, "memcached {}: {}; marked bad for {} ms, its keys go elsewhere", s.config.text, why,
         options_.reconnect_ms);
  ++stats_.servers_marked_bad;
  s.state = Server::State::kBad;
  s.probing = false;
  s.bad_until_ns = MonotonicNowNs() + options_.reconnect_ms * 1'000'000;
  s.out.clear();
  while (Pending* p = s.pending.PopFront()) {
    p->again = true;
    Complete(p, McError::kUnavailable);
  }
  if (s.fd.valid()) {
    // Abort the connection now (the peer sees it at once); the descriptor itself is
    // closed once the reader and writer have let go of it.
    shutdown(s.fd.get(), SHUT_RDWR);
    Reactor::Current()->CancelFd(s.fd.get());
  }
}

void MemcacheClient::Enqueue(Server& s, Pending* p) {
  s.pending.PushBack(p);
  if (s.state == Server::State::kBad) s.state = Server::State::kIdle;  // retry time has come
  if (s.state == Server::State::kIdle) {
    s.state = Server::State::kConnecting;
    Spawn(Connect(&s, tasks_.Enter()));
  } else if (s.state == Server::State::kUp && !s.writing) {
    Spawn(Writer(&s, s.tasks.Enter()));
  }
  if (!watchdog_running_) {
    watchdog_running_ = true;
    Spawn(Watchdog(tasks_.Enter()));
  }
  pending_work_.Set();
}

Task<void> MemcacheClient::Connect(Server* s, Gate::Holder /*holder*/) {
  // The previous connection's tasks must be gone before its descriptor is reused.
  if (s->fd.valid()) {
    co_await s->tasks.Wait();
  }
  s->fd.Reset();
  const uint64_t attempt = ++s->connect_attempt;
  ++stats_.connects;
  IoResult sock = OpenTcpSocket(s->config.address.family());
  IoResult c{-EINVAL};
  if (sock.ok()) {
    s->fd.Reset(sock.res);
    c = co_await ringproxy::Connect(s->fd.get(), s->config.address.get(), s->config.address.size(),
                                    Deadline::AfterMs(options_.timeout_ms));
  } else {
    c = sock;
  }
  // Closed meanwhile, or given up (the watchdog) and connected to again since.
  if (s->state != Server::State::kConnecting || s->connect_attempt != attempt) co_return;
  s->probing = false;
  if (!c.ok()) {
    ++stats_.connect_failures;
    MarkBad(*s, fmt::format("connect failed: {}", strerror(c.error())));
    s->fd.Reset();
    co_return;
  }
  s->state = Server::State::kUp;
  RP_LOG(kInfo, "memcached {}: connected", s->config.text);
  Spawn(Reader(s, s->tasks.Enter()));
  if (!s->out.empty() && !s->writing) Spawn(Writer(s, s->tasks.Enter()));
}

Task<void> MemcacheClient::Writer(Server* s, Gate::Holder /*holder*/) {
  s->writing = true;
  std::string buf;
  while (s->state == Server::State::kUp && !s->out.empty()) {
    buf.clear();
    buf.swap(s->out);
    IoResult r =
        co_await SendAll(s->fd.get(), AsBytes(buf), Deadline::AfterMs(options_.timeout_ms));
    if (!r.ok()) {
      // Not kUp: the connection was already given up (a reader error, the watchdog),
      // and a new one may be on its way; this late error is not about that one.
      if (s->state == Server::State::kUp) {
        MarkBad(*s, fmt::format("send failed: {}", strerror(r.error())));
      }
      break;
    }
  }
  s->writing = false;
}

Task<void> MemcacheClient::Reader(Server* s, Gate::Holder /*holder*/) {
  std::string buf;
  size_t start = 0;
  std::vector<std::byte> chunk(64 << 10);
  const memcache::Limits limits{options_.max_value + 1024};
  uint64_t skip = 0;  // bytes of a too large reply still to pass over
  while (s->state == Server::State::kUp) {
    IoResult r = co_await Recv(s->fd.get(), chunk, Deadline::Never());
    if (s->state != Server::State::kUp) break;
    if (r.res <= 0) {
      MarkBad(*s, r.res == 0 ? std::string("connection closed by the server")
                             : fmt::format("recv failed: {}", strerror(r.error())));
      break;
    }
    buf.append(reinterpret_cast<const char*>(chunk.data()), r.value());
    const size_t skipped = std::min(skip, buf.size());
    start += skipped;
    skip -= skipped;
    for (;;) {
      memcache::ParseResult p =
          memcache::ParseResponse(std::string_view(buf).substr(start), limits);
      if (p.error == memcache::ParseError::kNeedMore) break;
      Pending* front = s->pending.front();
      if (p.error == memcache::ParseError::kBodyTooLarge && front != nullptr &&
          front->opaque == p.message.opaque) {
        // A value too big to take (someone else's, under our key): the framing holds, so
        // it is passed over and only this request fails, not the server.
        s->pending.Remove(front);
        Complete(front, McError::kProtocol);
        const size_t here = std::min(p.consumed, buf.size() - start);
        start += here;
        skip = p.consumed - here;
        if (skip != 0) break;
        continue;
      }
      if (p.error != memcache::ParseError::kNone || front == nullptr ||
          front->opaque != p.message.opaque) {
        std::string why = p.error != memcache::ParseError::kNone
                              ? fmt::format("bad response ({})", memcache::ParseErrorName(p.error))
                              : std::string("response does not match the request in flight");
        if (front != nullptr) {
          // Its own failure; the requests behind it fail as unavailable with the server.
          s->pending.Remove(front);
          Complete(front, McError::kProtocol);
        }
        MarkBad(*s, why);
        break;
      }
      s->pending.Remove(front);
      front->reply.status = p.message.status_or_vbucket;
      front->reply.server = s->index;
      if (p.message.status_or_vbucket == 0) {
        if (front->opcode == Opcode::kIncrement || front->opcode == Opcode::kDecrement) {
          if (!memcache::CounterValue(p.message, &front->reply.counter)) {
            Complete(front, McError::kProtocol);
            start += p.consumed;
            continue;
          }
        } else if (front->opcode == Opcode::kGetK || front->opcode == Opcode::kGet) {
          front->reply.value.assign(p.message.value);
        }
      }
      Complete(front, McError::kNone);
      start += p.consumed;
    }
    if (s->state != Server::State::kUp) break;
    buf.erase(0, start);
    start = 0;
  }
}

Task<void> MemcacheClient::Watchdog(Gate::Holder /*holder*/) {
  // While requests are out, check every 100 ms whether the oldest of a server has
  // outlived the fetch timeout; that server is then treated as failed.
  while (!closing_) {
    bool any = false;
    for (auto& s : servers_) {
      Pending* front = s->pending.front();
      if (front == nullptr) continue;
      any = true;
      if (MonotonicNowNs() >= front->deadline_ns) {
        ++stats_.timeouts;
        MarkBad(*s, fmt::format("no reply within {} ms", options_.timeout_ms));
      }
    }
    if (!any) {
      pending_work_.Reset();
      co_await pending_work_.Wait();
      continue;
    }
    co_await Sleep(Deadline::AfterMs(100));
  }
  watchdog_running_ = false;
}

Task<McReply> MemcacheClient::Execute(std::string key, Opcode op, std::string value, uint64_t a,
                                      uint64_t b, uint32_t ttl) {
  ++stats_.requests;
  McReply failed;
  failed.error = McError::kUnavailable;
  if (closing_) co_return failed;
  // Placed by the key as given, sent as its MD5 when too long (as Zimbra's fork does).
  std::string normalized;
  if (key.size() > memcache::kMaxKeyLength) normalized = memcache::NormalizeKey(key);
  const std::string_view sent = normalized.empty() ? std::string_view(key) : normalized;
  // A request its server failed by going bad while it waited is placed again, away from
  // that server (Zimbra's fork posts such "again" failures anew): a counter must not go
  // uncounted, nor a login be refused, while another server is up.
  for (size_t attempt = 1;; ++attempt) {
    const int index = ServerFor(key);
    if (index < 0) {
      ++stats_.unavailable;
      co_return failed;
    }
    failed.server = index;
    Server& s = *servers_[static_cast<size_t>(index)];
    if (s.pending.size() >= options_.max_pending) {
      ++stats_.unavailable;
      co_return failed;
    }
    Pending p;
    p.opaque = next_opaque_++;
    p.opcode = op;
    p.deadline_ns = MonotonicNowNs() + options_.timeout_ms * 1'000'000;
    switch (op) {
      case Opcode::kGetK:
      case Opcode::kGet:
        memcache::EncodeGet(op, sent, p.opaque, &s.out);
        break;
      case Opcode::kAdd:
      case Opcode::kSet:
        memcache::EncodeStore(op, sent, value, 0, ttl, p.opaque, 0, &s.out);
        break;
      case Opcode::kIncrement:
      case Opcode::kDecrement:
        memcache::EncodeCounter(op, sent, a, b, ttl, p.opaque, &s.out);
        break;
      case Opcode::kDelete:
        memcache::EncodeDelete(sent, p.opaque, &s.out);
        break;
      default:
        memcache::EncodeSimple(op, p.opaque, &s.out);
        break;
    }
    p.reply.server = index;
    Enqueue(s, &p);
    co_await Waiter(&p);
    if (!p.again || closing_ || attempt >= servers_.size()) co_return std::move(p.reply);
  }
}

// Plain functions handing back Execute's lazy task: no coroutine frame of their own.
Task<McReply> MemcacheClient::Get(std::string key) {
  return Execute(std::move(key), Opcode::kGetK, {}, 0, 0, 0);
}

Task<McReply> MemcacheClient::Add(std::string key, std::string value, uint32_t ttl_s) {
  return Execute(std::move(key), Opcode::kAdd, std::move(value), 0, 0, ttl_s);
}

Task<McReply> MemcacheClient::Set(std::string key, std::string value, uint32_t ttl_s) {
  return Execute(std::move(key), Opcode::kSet, std::move(value), 0, 0, ttl_s);
}

Task<McReply> MemcacheClient::Increment(std::string key, uint64_t delta, uint64_t initial,
                                        uint32_t ttl_s) {
  return Execute(std::move(key), Opcode::kIncrement, {}, delta, initial, ttl_s);
}

Task<McReply> MemcacheClient::Delete(std::string key) {
  return Execute(std::move(key), Opcode::kDelete, {}, 0, 0, 0);
}

void MemcacheClient::Abort() {
  closing_ = true;
  for (auto& s : servers_) {
    s->state = Server::State::kBad;
    s->probing = false;
    while (Pending* p = s->pending.PopFront()) Complete(p, McError::kUnavailable);
    if (s->fd.valid()) Reactor::Current()->CancelFd(s->fd.get());
  }
  pending_work_.Set();
}

Task<void> MemcacheClient::Close() {
  Abort();
  // Connects first: a connect in progress may itself be waiting for a server's tasks.
  co_await tasks_.Wait();
  for (auto& s : servers_) {
    co_await s->tasks.Wait();
    s->fd.Reset();
  }
}

}  // namespace ringproxy
