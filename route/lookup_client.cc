#include "route/lookup_client.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "core/log.h"
#include "core/ops.h"
#include "core/reactor.h"
#include "fmt/format.h"

namespace ringproxy {

std::string_view LookupStatusName(LookupStatus s) {
  switch (s) {
    case LookupStatus::kOk:
      return "ok";
    case LookupStatus::kLoginFailed:
      return "login failed";
    case LookupStatus::kInvalidRoute:
      return "invalid route";
    case LookupStatus::kUnavailable:
      return "unavailable";
    case LookupStatus::kInvalidRequest:
      return "invalid request";
  }
  return "?";
}

LookupClient::LookupClient(LookupOptions options) : options_(std::move(options)) {
  for (const LookupHandler& h : options_.handlers) {
    auto handler = std::make_unique<Handler>();
    handler->config = h;
    handlers_.push_back(std::move(handler));
  }
}

LookupClient::~LookupClient() { Close(); }

void LookupClient::Close() {
  for (auto& h : handlers_) h->idle.clear();
}

bool LookupClient::HandlerSkipped(size_t index) const {
  const Handler& h = *handlers_[index];
  return h.failed_at_ns != 0 &&
         MonotonicNowNs() - h.failed_at_ns < options_.retry_interval_ms * 1'000'000;
}

namespace {

// Lists a connection as in flight for as long as an attempt uses it.
class ActiveFd {
 public:
  ActiveFd(std::vector<int>* list, int fd) : list_(list), fd_(fd) { list_->push_back(fd); }
  ~ActiveFd() { std::erase(*list_, fd_); }
  ActiveFd(const ActiveFd&) = delete;
  ActiveFd& operator=(const ActiveFd&) = delete;

 private:
  std::vector<int>* list_;
  int fd_;
};

}  // namespace

void LookupClient::Abort() {
  aborted_ = true;
  for (int fd : active_fds_) Reactor::Current()->CancelFd(fd);
}

Task<LookupClient::Attempt> LookupClient::Try(Handler* h, int index, const std::string* request,
                                              bool reused_ok, LookupResult* out) {
  UniqueFd fd;
  bool reused = false;
  if (reused_ok && !h->idle.empty()) {
    const int64_t oldest_ok = MonotonicNowNs() - options_.max_idle_ms * 1'000'000;
    auto stale = std::find_if(h->idle.begin(), h->idle.end(), [oldest_ok](const Handler::Idle& i) {
      return i.since_ns >= oldest_ok;
    });
    h->idle.erase(h->idle.begin(), stale);  // closed: idle too long to trust
  }
  if (reused_ok && !h->idle.empty()) {
    fd = std::move(h->idle.back().fd);
    h->idle.pop_back();
    reused = true;
    ++stats_.reused;
  }
  std::optional<ActiveFd> active;
  if (reused) {
    active.emplace(&active_fds_, fd.get());
  } else {
    IoResult s = OpenTcpSocket(h->config.address.family());
    if (!s.ok()) {
      out->reason = fmt::format("socket: {}", strerror(s.error()));
      co_return Attempt::kDone;
    }
    fd.Reset(s.res);
    active.emplace(&active_fds_, fd.get());
    ++stats_.connects;
    IoResult c = co_await Connect(fd.get(), h->config.address.get(), h->config.address.size(),
                                  Deadline::AfterMs(options_.connect_timeout_ms));
    // Abort() cancels what is in flight; an attempt between two waits stops here (and a
    // cancelled connect is no failure of the handler's).
    if (aborted_) co_return Attempt::kDone;
    if (!c.ok()) {
      h->failed_at_ns = MonotonicNowNs();
      ++stats_.handler_failures;
      RP_LOG(kWarn, "lookup handler {} ({}): connect failed: {}; skipped for {} ms", h->config.text,
             h->config.address.ToString(), strerror(c.error()), options_.retry_interval_ms);
      co_return Attempt::kFailover;
    }
    h->failed_at_ns = 0;
  }
  IoResult w =
      co_await SendAll(fd.get(), AsBytes(*request), Deadline::AfterMs(options_.timeout_ms));
  if (aborted_) co_return Attempt::kDone;
  if (!w.ok()) {
    // A kept connection the service has closed meanwhile: try a fresh one, no penalty.
    if (reused) co_return Attempt::kRetryFresh;
    RP_LOG(kWarn, "lookup handler {}: sending failed: {}; trying the next", h->config.text,
           strerror(w.error()));
    co_return Attempt::kFailover;
  }
  std::string buf;
  std::byte chunk[4096];
  const Deadline read_deadline = Deadline::AfterMs(options_.timeout_ms);
  for (;;) {
    IoResult r = co_await Recv(fd.get(), chunk, read_deadline);
    if (aborted_) co_return Attempt::kDone;
    // A kept connection that ends (EOF) or is reset before any answer: the service
    // dropped it as the request went out. A lookup only reads, so asking again on a
    // fresh connection is safe; once, since Lookup retries only a reused one.
    const bool dropped = r.res == 0 || r.res == -ECONNRESET || r.res == -EPIPE;
    if (dropped && buf.empty() && reused) co_return Attempt::kRetryFresh;
    if (r.res <= 0) {
      out->reason = r.res == 0 ? std::string("lookup service closed the connection")
                    : r.timed_out()
                        ? fmt::format("no lookup response within {} ms", options_.timeout_ms)
                        : fmt::format("lookup recv: {}", strerror(r.error()));
      RP_LOG(kWarn, "lookup handler {}: {}", h->config.text, out->reason);
      co_return Attempt::kDone;
    }
    buf.append(reinterpret_cast<const char*>(chunk), r.value());
    lookup::ParsedResponse resp = lookup::ParseResponse(buf);
    if (resp.error == lookup::Error::kNeedMore) continue;
    if (resp.error != lookup::Error::kNone) {
      out->reason = fmt::format("invalid lookup response: {}", lookup::ErrorName(resp.error));
      RP_LOG(kWarn, "lookup handler {}: {}", h->config.text, out->reason);
      co_return Attempt::kDone;
    }
    lookup::Answer a = lookup::Interpret(resp);
    out->handler = index;
    switch (a.outcome) {
      case lookup::Outcome::kOk:
        out->status = LookupStatus::kOk;
        out->server = std::string(a.server);
        out->port = a.port;
        if (!lookup::UnescapeMailAuth(a.user, &out->user)) out->user.clear();
        out->cache_alias = a.cache_alias;
        out->auth_id = std::string(a.auth_id);
        out->auth_pass = std::string(a.auth_pass);
        break;
      case lookup::Outcome::kLoginFailed:
        out->status = LookupStatus::kLoginFailed;
        out->reason = std::string(a.status);
        out->wait_s = a.wait_s;
        break;
      case lookup::Outcome::kInvalidRoute:
        out->status = LookupStatus::kInvalidRoute;
        out->reason = "Auth-Status OK without a usable Auth-Server/Auth-Port";
        break;
      case lookup::Outcome::kInvalid:
        out->reason = "lookup response without Auth-Status";
        co_return Attempt::kDone;
    }
    // Keep the connection if the service keeps it and nothing else came after.
    if (options_.keepalive && resp.keep_alive && resp.consumed == buf.size() &&
        h->idle.size() < options_.max_idle_per_handler) {
      h->idle.push_back({std::move(fd), MonotonicNowNs()});
    }
    co_return Attempt::kDone;
  }
}

Task<LookupResult> LookupClient::Lookup(LookupQuery q) {
  ++stats_.lookups;
  LookupResult result;
  const size_t n = handlers_.size();
  if (n == 0) {
    result.reason = "no lookup handlers configured";
    ++stats_.unavailable;
    co_return result;
  }
  const size_t start = next_++ % n;
  lookup::Request req;
  req.method = q.method;
  req.user = q.user;
  req.escape_user = q.escape_user;
  req.protocol = q.protocol;
  req.login_attempt = q.login_attempt;
  req.client_ip = q.client_ip;
  req.proxy_ip = q.proxy_ip;
  req.proxy_host = q.proxy_host;
  req.zimbra_admin = q.zimbra_admin;
  req.zimbra_zx = q.zimbra_zx;
  req.auth_id = q.auth_id;
  req.admin_user = q.admin_user;
  req.admin_pass = q.admin_pass;
  bool tried_any = false;
  for (size_t i = 0; i < n; ++i) {
    if (aborted_) break;
    const size_t index = (start + i) % n;
    Handler* h = handlers_[index].get();
    if (HandlerSkipped(index)) continue;
    if (tried_any) ++stats_.failovers;
    tried_any = true;
    std::string request;
    const std::string host = h->config.address.ToString();
    const lookup::RequestError bad =
        lookup::WriteRequest(req, host, h->config.path, options_.keepalive, &request);
    if (bad != lookup::RequestError::kNone) {
      // Not a handler's fault: no failover, and each handler would refuse it alike. The
      // value is logged escaped (it holds control bytes), the admin password not at all.
      const std::string_view value = lookup::RefusedValue(req, host, h->config.path, bad);
      RP_LOG(kWarn, "lookup request not sent: {}: \"{}\"", lookup::RequestErrorName(bad),
             bad == lookup::RequestError::kBadAdminPass ? std::string("(not shown)")
                                                        : lookup::EscapeMailAuth(value));
      result.status = LookupStatus::kInvalidRequest;
      result.reason = std::string(lookup::RequestErrorName(bad));
      ++stats_.invalid_requests;
      co_return result;
    }
    Attempt a = co_await Try(h, static_cast<int>(index), &request, true, &result);
    if (a == Attempt::kRetryFresh && !aborted_) {
      a = co_await Try(h, static_cast<int>(index), &request, false, &result);
    }
    if (aborted_) break;
    if (a == Attempt::kDone) {
      if (result.status == LookupStatus::kUnavailable) ++stats_.unavailable;
      co_return result;
    }
  }
  result.status = LookupStatus::kUnavailable;
  result.reason = aborted_ ? "shutting down" : "no valid lookup handlers";
  ++stats_.unavailable;
  co_return result;
}

}  // namespace ringproxy
