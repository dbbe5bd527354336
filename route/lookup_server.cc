#include "route/lookup_server.h"

#include <unistd.h>

#include <optional>
#include <random>
#include <set>

#include "absl/status/statusor.h"
#include "core/accept_stream.h"
#include "core/log.h"
#include "core/ops.h"
#include "core/status_util.h"
#include "core/sync.h"
#include "fmt/format.h"

namespace ringproxy {
namespace {

void LogRequest(int fd, std::string_view line) {
  if (fd < 0) return;
  fmt::memory_buffer full;
  fmt::format_to(std::back_inserter(full), "{} ", MonotonicNowNs() / 1'000'000);
  const size_t from = full.size();
  full.append(line);
  // Header values (and the login they decode to) may hold CR, LF or other controls:
  // written as \xHH, as the process log does, they cannot start a line of their own.
  log::EndEscapedLine(&full, from);
  // A test tool: a blocking append per request keeps the log exact for the tests.
  ssize_t n = write(fd, full.data(), full.size());
  (void)n;
}

// Why a request head is no lookup: the answer's status (and header), the log reason.
struct Refusal {
  std::string_view status;
  std::string_view header;
  std::string_view reason;
};

// Only GET of the servlet's path (spec §1.1) is a lookup; a query string is let pass.
std::optional<Refusal> Refuse(const lookup::ParsedRequest& req) {
  if (req.error != lookup::Error::kNone) {
    return Refusal{"400 Bad Request", "", lookup::ErrorName(req.error)};
  }
  if (req.method != "GET")
    return Refusal{"405 Method Not Allowed", "Allow: GET\r\n", "method not GET"};
  if (req.target.substr(0, req.target.find('?')) != lookup::kDefaultPath) {
    return Refusal{"404 Not Found", "", "unknown path"};
  }
  return std::nullopt;
}

Task<void> ServeConnection(const LookupServerOptions* options,
                           std::shared_ptr<const Directory> directory, LookupServerStats* stats,
                           int raw_fd, std::set<int>* live, const std::atomic<bool>* stop,
                           Gate::Holder /*holder*/) {
  UniqueFd fd(raw_fd);
  live->insert(raw_fd);
  std::string buf;
  std::byte chunk[4096];
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> dice(0.0, 1.0);
  Deadline head = Deadline::AfterMs(options->idle_timeout_ms);
  for (;;) {
    lookup::ParsedRequest req = lookup::ParseRequest(buf);
    if (req.error == lookup::Error::kNeedMore) {
      // A stop cancels the waits in flight once; one begun after it (a reply sent after
      // --latency-ms) would wait out the idle timeout.
      if (stop->load()) break;
      // Idle: the clock starts again; once a head has begun, its deadline holds.
      if (buf.empty()) head = Deadline::AfterMs(options->idle_timeout_ms);
      IoResult r = co_await Recv(fd.get(), chunk, head);
      if (r.res <= 0) break;
      buf.append(reinterpret_cast<const char*>(chunk), r.value());
      continue;
    }
    std::string reply;
    if (std::optional<Refusal> no = Refuse(req)) {
      stats->bad_requests.fetch_add(1, std::memory_order_relaxed);
      RP_LOG(kWarn, "lookupd: malformed request ({}), answered {} and closed", no->reason,
             no->status);
      LogRequest(options->request_log_fd, fmt::format("malformed={}", no->reason));
      reply = fmt::format("HTTP/1.1 {}\r\n{}Connection: close\r\nContent-Length: 0\r\n\r\n",
                          no->status, no->header);
      (void)co_await SendAll(fd.get(), AsBytes(reply), Deadline::AfterMs(5000));
      break;
    }
    stats->requests.fetch_add(1, std::memory_order_relaxed);
    const bool keep_alive = req.keep_alive && !options->close_after_reply;
    Decision d = Decide(*directory, req);
    buf.erase(0, req.consumed);
    if (options->latency_ms > 0) co_await Sleep(Deadline::AfterMs(options->latency_ms));
    if (options->error_rate > 0 && dice(rng) < options->error_rate) {
      stats->errors_injected.fetch_add(1, std::memory_order_relaxed);
      LogRequest(options->request_log_fd, d.log + " injected=500");
      reply = fmt::format(
          "HTTP/1.1 500 Internal Server Error\r\nConnection: {}\r\n"
          "Content-Length: 0\r\n\r\n",
          keep_alive ? "keep-alive" : "close");
    } else {
      LogRequest(options->request_log_fd, d.log);
      lookup::Reply r;
      r.ok = d.ok;
      r.status = d.status;
      r.server = d.server;
      r.port = d.port;
      r.user = d.user;
      r.cache_alias = d.cache_alias;
      r.wait_s = d.wait_s;
      r.auth_id = d.auth_id;
      r.auth_pass = d.auth_pass;
      lookup::WriteReply(r, keep_alive, &reply);
    }
    IoResult w = co_await SendAll(fd.get(), AsBytes(reply), Deadline::AfterMs(5000));
    if (!w.ok() || !keep_alive) break;
    head = Deadline::AfterMs(options->idle_timeout_ms);  // a pipelined next head starts now
  }
  live->erase(raw_fd);
  stats->connections.fetch_sub(1, std::memory_order_relaxed);
}

Task<void> WatchStop(const std::atomic<bool>* stop, AcceptStream* accepts, std::set<int>* live,
                     Gate::Holder /*holder*/) {
  while (!stop->load()) co_await Sleep(Deadline::AfterMs(50));
  accepts->RequestStop();
  for (int fd : *live) Reactor::Current()->CancelFd(fd);
}

}  // namespace

Task<void> ServeLookups(const LookupServerOptions* options,
                        std::shared_ptr<const Directory> directory, LookupServerStats* stats,
                        const std::atomic<bool>* stop) {
  absl::StatusOr<UniqueFd> listener = ListenTcp(options->listen, ListenOptions{4096, true});
  if (!listener.ok()) {
    RP_LOG(kError, "lookupd: {}", MessageOf(listener.status()));
    co_return;
  }
  std::set<int> live;
  Gate connections;
  AcceptStream accepts(listener->get());
  Spawn(WatchStop(stop, &accepts, &live, connections.Enter()));
  for (;;) {
    IoResult r = co_await accepts.Next();
    if (r.cancelled()) break;
    if (!r.ok()) {
      co_await Sleep(Deadline::AfterMs(100));
      continue;
    }
    if (stats->connections.fetch_add(1, std::memory_order_relaxed) >= options->max_connections) {
      stats->connections.fetch_sub(1, std::memory_order_relaxed);
      close(r.res);
      if (stats->connections_refused.fetch_add(1, std::memory_order_relaxed) == 0) {
        RP_LOG(kWarn, "lookupd: {} connections open, closing new ones (--max-connections)",
               options->max_connections);
      }
      continue;
    }
    Spawn(ServeConnection(options, directory, stats, r.res, &live, stop, connections.Enter()));
  }
  co_await accepts.Stop();
  for (int fd = accepts.TryTake(); fd >= 0; fd = accepts.TryTake()) close(fd);
  for (int fd : live) Reactor::Current()->CancelFd(fd);
  co_await connections.Wait();
}

}  // namespace ringproxy
