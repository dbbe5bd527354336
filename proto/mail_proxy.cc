#include "proto/mail_proxy.h"

#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "core/json.h"
#include "core/log.h"
#include "core/ops.h"
#include "core/plain_stream.h"
#include "core/pump.h"
#include "core/reactor.h"
#include "core/sync.h"
#include "proto/mail_config.h"
#include "proto/session_route.h"
#include "proto/session_tls.h"
#include "route/keys.h"
#include "route/upstream_connect.h"
#include "tls/config.h"
#include "tls/tls_stream.h"

namespace ringproxy {
namespace {

using mail::Credentials;
using mail::Mechanism;
using mail::PreauthEnd;
using mail::UpstreamLoginOutcome;
using mail::UpstreamLoginStatus;

// Zimbra's login suffixes (spec §4.1): stripped for the lookup and the caches, given
// back to the IMAP upstream.
constexpr std::string_view kLoginSuffixes[] = {"/tb", "/wm", "/ni"};

std::string StripSuffix(std::string* login) {
  for (std::string_view s : kLoginSuffixes) {
    if (login->size() > s.size() && login->ends_with(s)) {
      login->resize(login->size() - s.size());
      return std::string(s);
    }
  }
  return "";
}

std::string_view MechanismName(Mechanism m) {
  switch (m) {
    case Mechanism::kLogin:
      return "login";
    case Mechanism::kAuthenticatePlain:
      return "plain";
    case Mechanism::kAuthenticateLogin:
      return "sasl-login";
  }
  return "?";
}

// One login attempt as the audit log records it. Never a password.
struct AuditRecord {
  std::string user;
  std::string account;
  std::string result;
  std::string upstream;
  std::string route_source;
  std::string mechanism;
};

bool IsImap(const ListenerConfig* listener) {
  return static_cast<const MailListenerSettings*>(listener->protocol_settings.get())->protocol ==
         MailProtocol::kImap;
}

std::string InternalErrorLine(bool imap) {
  return imap ? "* BAD internal server error\r\n" : "-ERR internal server error\r\n";
}

// Admission before the greeting: the route stack must exist and the IP throttle must
// allow the client. Returns the line that refuses it, or "" to greet it (or when
// stopped: *stopped says). *waiting: the event a Stop() sets while memcached is asked.
Task<std::string> Refusal(ShardServices* services, ShardSnapshot* snapshot,
                          const ListenerConfig* listener, const SocketAddress* peer,
                          Event** waiting, const bool* stopped) {
  const bool imap = IsImap(listener);
  RouteStack* routes = snapshot->routes.get();
  if (routes == nullptr) {
    // The config check requires [lookup]; a shard that could not build it says so.
    RP_LOG(kError, "{}: client {}: no route stack on this shard; closing", listener->name,
           peer->ToString());
    co_return InternalErrorLine(imap);
  }
  if (routes->throttle() == nullptr) co_return "";
  const auto* settings =
      static_cast<const MailListenerSettings*>(listener->protocol_settings.get());
  std::optional<ThrottleDecision> d =
      co_await AskThrottle(snapshot, ThrottleAsk::kIp, peer->HostString(),
                           std::string(settings->name()), waiting, stopped);
  if (!d.has_value() || d->allowed()) co_return "";
  services->metrics->mail_throttled.Add();
  RP_LOG(kInfo, "{}: client {}: IP throttled ({} logins in the window)", listener->name,
         peer->ToString(), d->count);
  co_return fmt::format("{} {}\r\n", imap ? "* BYE" : "-ERR", d->message);
}

// How a login attempt ended for the session.
enum class AttemptEnd : uint8_t { kDone, kRetry };

class StartTlsUpgrader;

class MailSession final : public SessionBase {
 public:
  // `greeted`: the connection was parked (admitted, greeted, then idle until its first
  // byte); the session starts at the dialogue.
  MailSession(ShardServices* services, SnapshotRef snapshot, const ListenerConfig* listener, int fd,
              SocketAddress peer, bool greeted)
      : services_(services),
        snapshot_(std::move(snapshot)),
        listener_(listener),
        settings_(static_cast<const MailListenerSettings*>(listener->protocol_settings.get())),
        peer_(peer),
        client_(UniqueFd(fd), services->buffers),
        greeted_(greeted) {}

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    connect_.stop = true;
    if (pump_ != nullptr) pump_->Stop();
    if (connect_.current_fd >= 0) Reactor::Current()->CancelFd(connect_.current_fd);
    if (holding_) Reactor::Current()->CancelFd(client_.fd());
    if (waiting_ != nullptr) waiting_->Set();
    if (upstream_ != nullptr) upstream_->Abort();
    client_.Abort();
  }

  Task<void> Run();

 private:
  friend class StartTlsUpgrader;

  bool imap() const { return settings_->protocol == MailProtocol::kImap; }
  bool client_tls_on() const { return down_ != &client_; }
  Task<PreauthEnd> Preauth(Credentials* credentials, bool greet);
  Task<AttemptEnd> Login(Credentials* credentials, int attempt);
  // Logs in on the connected upstream and relays; `route` names it for the logs.
  Task<AttemptEnd> LoginUpstream(Credentials* credentials, const ResolveResult* route,
                                 std::string login, std::string authzid_login, AuditRecord* audit,
                                 int64_t start_ns);
  Task<bool> Reply(std::string text);
  // Holds the client for `ms` (Auth-Wait): ends early when the client leaves (or only
  // half-closes) or the session is stopped. True when the whole wait passed: only then
  // may the client see the refusal, so that no client gets it sooner.
  Task<bool> Hold(int64_t ms);
  std::string RefusedText(const Credentials& c) const;
  // The user throttle refused: IMAP "* BYE <msg>" and the tagged NO, POP3 "-ERR <msg>".
  std::string UserThrottledText(std::string_view message, const Credentials& c) const;
  std::string InternalErrorText() const;
  std::string_view LookupProtocol() const;
  Task<void> Audit(AuditRecord* record, int64_t start_ns);

  ShardServices* services_;
  SnapshotRef snapshot_;
  const ListenerConfig* listener_;
  const MailListenerSettings* settings_;
  SocketAddress peer_;
  std::string client_ip_;
  std::string local_ip_;
  PlainStream client_;
  ByteStream* down_ = &client_;
  std::unique_ptr<TlsStream> client_tls_;
  ByteStream* upstream_ = nullptr;
  Pump* pump_ = nullptr;
  ConnectControl connect_;
  bool stopped_ = false;
  Event* waiting_ = nullptr;  // a route or throttle task's event: Stop() sets it
  bool holding_ = false;
  bool relayed_ = false;
  bool write_failed_ = false;  // the client stopped taking bytes: spend no more time on it
  bool greeted_;
};

// STARTTLS / STLS: the listener's certificates on the client's plain stream.
class StartTlsUpgrader final : public mail::TlsUpgrader {
 public:
  explicit StartTlsUpgrader(MailSession* session) : s_(session) {}
  Task<ByteStream*> Upgrade(ByteStream* plain) override {
    const bool done = co_await AcceptTls(s_->services_, s_->snapshot_.get(), s_->listener_, plain,
                                         s_->peer_, &s_->stopped_, &s_->client_tls_);
    if (!done) co_return nullptr;
    ByteStream* secured = s_->client_tls_.get();
    co_return secured;
  }

 private:
  MailSession* s_;
};

std::string MailSession::RefusedText(const Credentials& c) const {
  if (imap()) {
    const std::string_view tag = c.tag.empty() ? std::string_view("*") : c.tag;
    return fmt::format("{} NO {} failed\r\n", tag,
                       c.mechanism == Mechanism::kLogin ? "LOGIN" : "AUTHENTICATE");
  }
  return c.mechanism == Mechanism::kLogin ? "-ERR LOGIN failed\r\n"
                                          : "-ERR authentication failed: LOGIN failed\r\n";
}

std::string MailSession::UserThrottledText(std::string_view message, const Credentials& c) const {
  if (imap()) return fmt::format("* BYE {}\r\n{}", message, RefusedText(c));
  return fmt::format("-ERR {}\r\n", message);
}

std::string MailSession::InternalErrorText() const { return InternalErrorLine(imap()); }

std::string_view MailSession::LookupProtocol() const {
  const bool ssl = listener_->extensions.Get<TlsUpstreamConfig>(kUpstreamTlsTable) != nullptr;
  if (imap()) return ssl ? "imapssl" : "imap";
  return ssl ? "pop3ssl" : "pop3";
}

Task<bool> MailSession::Reply(std::string text) {
  // Whole, not queued: what follows (a relay to a silent server, another pre-auth
  // dialogue waiting for the client) would not push a remainder out.
  IoResult w =
      co_await WriteAll(down_, AsBytes(text), Deadline::AfterMs(listener_->send_timeout_ms));
  if (!w.ok()) write_failed_ = true;
  co_return w.ok();
}

Task<bool> MailSession::Hold(int64_t ms) {
  if (stopped_) co_return false;
  if (ms <= 0) co_return true;
  holding_ = true;
  IoResult r = co_await Poll(client_.fd(), POLLRDHUP, Deadline::AfterMs(ms));
  holding_ = false;
  co_return r.timed_out() && !stopped_;
}

Task<void> MailSession::Audit(AuditRecord* r, int64_t start_ns) {
  const auto* sink = snapshot_->config->sections.Get<AuditSink>(kAuditTable);
  if (sink == nullptr) co_return;
  std::string line = "{\"time\":";
  AppendJsonString(&line, log::UtcStamp());
  line += ",\"listener\":";
  AppendJsonString(&line, listener_->name);
  line += ",\"protocol\":";
  AppendJsonString(&line, settings_->name());
  line += client_tls_on() ? ",\"tls\":true" : ",\"tls\":false";
  line += ",\"client\":";
  AppendJsonString(&line, peer_.ToString());
  line += ",\"mechanism\":";
  AppendJsonString(&line, r->mechanism);
  line += ",\"user\":";
  AppendJsonString(&line, r->user);
  line += ",\"account\":";
  AppendJsonString(&line, r->account);
  line += ",\"result\":";
  AppendJsonString(&line, r->result);
  line += ",\"upstream\":";
  AppendJsonString(&line, r->upstream);
  line += ",\"route\":";
  AppendJsonString(&line, r->route_source);
  line += fmt::format(",\"latency_ms\":{:.3f}}}\n", (TurnNowNs() - start_ns) / 1e6);
  co_await sink->Write(std::move(line));
}

Task<PreauthEnd> MailSession::Preauth(Credentials* credentials, bool greet) {
  StartTlsUpgrader upgrader(this);
  mail::TlsUpgrader* up = client_tls_on() ? nullptr : &upgrader;
  PreauthEnd end;
  const mail::SessionName who{listener_->name, &peer_};
  if (imap()) {
    end = co_await imap::RunPreauth(&down_, &settings_->imap, client_tls_on(), up, credentials,
                                    greet, who);
  } else {
    end = co_await pop3::RunPreauth(&down_, &settings_->pop3, client_tls_on(), up, credentials,
                                    greet, who);
  }
  co_return end;
}

Task<void> MailSession::Run() {
  ShardMetrics& metrics = *services_->metrics;
  const int64_t start_ns = TurnNowNs();
  client_ip_ = peer_.HostString();
  if (std::optional<SocketAddress> local = LocalAddress(client_.fd())) {
    local_ip_ = local->HostString();
  }
  bool ok = true;
  if (!greeted_) {
    // Implicit TLS: admission is said inside TLS, so after the handshake.
    if (settings_->implicit_tls) {
      ok = co_await AcceptTls(services_, snapshot_.get(), listener_, &client_, peer_, &stopped_,
                              &client_tls_);
      if (ok) down_ = client_tls_.get();
    }
    if (ok && !stopped_) {
      std::string refusal =
          co_await Refusal(services_, snapshot_.get(), listener_, &peer_, &waiting_, &stopped_);
      if (!refusal.empty() && !stopped_) co_await Reply(std::move(refusal));
      ok = refusal.empty();
    }
  }
  std::string end_text = "closed";
  if (ok && !stopped_) {
    bool greet = !greeted_;
    std::string id_name, id_version;  // an IMAP ID goes on to the next attempt
    for (int attempt = 1;; ++attempt) {
      Credentials credentials;
      credentials.client_name = std::move(id_name);
      credentials.client_version = std::move(id_version);
      PreauthEnd end = co_await Preauth(&credentials, greet);
      if (end != PreauthEnd::kCredentials) {
        end_text = PreauthEndName(end);
        write_failed_ = end == PreauthEnd::kStreamError || end == PreauthEnd::kTlsFailed;
        if (end == PreauthEnd::kTooManyErrors || end == PreauthEnd::kLineTooLong) {
          RP_LOG(kInfo, "{}: client {}: closed before login: {}", listener_->name, peer_.ToString(),
                 end_text);
        }
        break;
      }
      greet = false;
      id_name = credentials.client_name;
      id_version = credentials.client_version;
      AttemptEnd a = co_await Login(&credentials, attempt);
      if (a != AttemptEnd::kRetry || stopped_) break;
    }
  }
  if (stopped_ && !relayed_) metrics.sessions_stopped.Add();  // a relay counts itself
  // FIN first: a client that sent bytes we never read would otherwise see only the
  // RST that close() sends for unread data. A relay has already passed the end on.
  if (!relayed_) {
    // The last reply may still be partly queued (the client's socket was full), and a
    // TLS client expects close_notify: both go before the FIN, within one send timeout.
    bool shut = false;
    if (!stopped_ && !write_failed_ && !down_->aborted()) {
      shut = (co_await down_->ShutdownWrite(Deadline::AfterMs(listener_->send_timeout_ms))).ok();
    }
    if (!shut) shutdown(client_.fd(), SHUT_WR);
  }
  co_await down_->Quiesce();
  if (down_ != &client_) co_await client_.Quiesce();
  RP_LOG(kDebug, "{}: client {}: session ended ({}) after {} ms", listener_->name, peer_.ToString(),
         end_text, (TurnNowNs() - start_ns) / 1'000'000);
}

Task<AttemptEnd> MailSession::Login(Credentials* credentials, int attempt) {
  ShardMetrics& metrics = *services_->metrics;
  const int64_t start_ns = TurnNowNs();
  // The lookup and a refusal's hold may last long: what the client pipelined behind its
  // login must not pin the shard's receive buffers meanwhile.
  down_->Detach();
  RouteStack* routes = snapshot_->routes.get();
  AuditRecord audit;
  audit.user = credentials->user;
  audit.mechanism = MechanismName(credentials->mechanism);
  std::string user = credentials->user;
  std::string suffix = StripSuffix(&user);
  std::string authzid = credentials->authzid;
  if (!authzid.empty()) suffix = StripSuffix(&authzid);

  ResolveRequest request;
  request.login = authzid.empty() ? user : authzid;
  request.protocol = std::string(LookupProtocol());
  request.client_ip = client_ip_;
  request.local_ip = local_ip_;
  request.login_attempt = attempt;
  // The resolution runs as its own task so that Stop() need not wait for the lookup's
  // deadline: a stopped session leaves, the task finishes alone (holding the snapshot,
  // so the route stack stays open until then).
  auto pending = std::make_shared<PendingRoute>();
  waiting_ = &pending->done;
  Spawn(ResolveDetached(snapshot_, std::move(request), pending, snapshot_->retire_gate->Enter()));
  if (!stopped_) co_await pending->done.Wait();
  waiting_ = nullptr;
  if (stopped_) co_return AttemptEnd::kDone;
  ResolveResult route = std::move(pending->result);
  audit.route_source = RouteSourceName(route.source);
  audit.account = route.account;
  if (route.status == ResolveStatus::kLoginFailed) {
    metrics.mail_login_failures.Add();
    RP_LOG(kInfo, "{}: client {}: login of '{}' refused by the lookup service: {}", listener_->name,
           peer_.ToString(), credentials->user, route.reason);
    const int64_t wait_ms = route.wait_s >= 0 ? route.wait_s * 1000LL : settings_->auth_wait_ms;
    const bool held = co_await Hold(wait_ms);
    audit.result = "login_failed";
    co_await Audit(&audit, start_ns);
    if (!held) co_return AttemptEnd::kDone;
    const bool sent = co_await Reply(RefusedText(*credentials));
    co_return sent && settings_->login_retry ? AttemptEnd::kRetry : AttemptEnd::kDone;
  }
  if (route.status != ResolveStatus::kOk) {
    metrics.mail_internal_errors.Add();
    RP_LOG(kWarn, "{}: client {}: no route for '{}': {}", listener_->name, peer_.ToString(),
           credentials->user, route.reason.empty() ? "lookup service unavailable" : route.reason);
    audit.result =
        route.status == ResolveStatus::kInvalidRequest ? "invalid_login" : "lookup_unavailable";
    co_await Audit(&audit, start_ns);
    co_await Reply(InternalErrorText());
    co_return AttemptEnd::kDone;
  }
  if (routes->throttle() != nullptr) {
    std::optional<ThrottleDecision> d = co_await AskThrottle(
        snapshot_.get(), ThrottleAsk::kUser, route.account, "", &waiting_, &stopped_);
    if (!d.has_value()) co_return AttemptEnd::kDone;  // stopped
    if (!d->allowed()) {
      metrics.mail_throttled.Add();
      RP_LOG(kInfo, "{}: client {}: user '{}' throttled", listener_->name, peer_.ToString(),
             route.account);
      audit.result = "user_throttled";
      co_await Audit(&audit, start_ns);
      co_await Reply(UserThrottledText(d->message, *credentials));
      co_return AttemptEnd::kDone;
    }
  }
  std::string login = (authzid.empty() ? route.account : credentials->user);
  std::string authzid_login = authzid.empty() ? "" : route.account;
  if (imap()) {
    if (authzid.empty()) login += suffix;
    if (!authzid_login.empty()) authzid_login += suffix;
  }
  AttemptEnd end = co_await LoginUpstream(credentials, &route, std::move(login),
                                          std::move(authzid_login), &audit, start_ns);
  co_return end;
}

Task<AttemptEnd> MailSession::LoginUpstream(Credentials* credentials, const ResolveResult* route,
                                            std::string login, std::string authzid_login,
                                            AuditRecord* audit, int64_t start_ns) {
  ShardMetrics& metrics = *services_->metrics;
  RouteStack* routes = snapshot_->routes.get();
  std::vector<SocketAddress> addresses;
  audit->upstream = keys::RouteValue(route->server, route->port);  // [v6]:port
  if (std::optional<SocketAddress> a = SocketAddress::FromNumeric(route->server, route->port)) {
    addresses.push_back(*a);
  } else {
    HostAnswer answer =
        co_await services_->resolver->Resolve(route->server, route->port, &connect_);
    if (stopped_) co_return AttemptEnd::kDone;
    if (answer.addresses.empty()) {
      metrics.mail_internal_errors.Add();
      RP_LOG(kWarn, "{}: client {}: route host '{}' of '{}' does not resolve: {}", listener_->name,
             peer_.ToString(), route->server, route->account, answer.error);
      if (route->source != RouteSource::kLookup) routes->router().Forget(*route);
      audit->result = "upstream_unresolved";
      co_await Audit(audit, start_ns);
      co_await Reply(InternalErrorText());
      co_return AttemptEnd::kDone;
    }
    addresses = std::move(answer.addresses);
  }
  Result<UpstreamConnection> connected = co_await ConnectAddresses(
      std::move(addresses), settings_->connect_timeout_ms, listener_->name, peer_, &connect_);
  metrics.upstream_connect_failures.Add(connect_.failures);
  connect_.failures = 0;
  if (stopped_) co_return AttemptEnd::kDone;
  if (!connected.ok()) {
    metrics.sessions_no_upstream.Add();
    metrics.mail_internal_errors.Add();
    RP_LOG(kWarn, "{}: client {}: mailbox server {} of '{}' unreachable: {}", listener_->name,
           peer_.ToString(), audit->upstream, route->account, strerror(connected.error().code));
    // A cached route may be stale (a moved mailbox, a changed address): the next login
    // asks the lookup service rather than failing here until the entry's TTL.
    if (route->source != RouteSource::kLookup) routes->router().Forget(*route);
    audit->result = "upstream_unreachable";
    co_await Audit(audit, start_ns);
    co_await Reply(InternalErrorText());
    co_return AttemptEnd::kDone;
  }
  metrics.upstream_connects.Add();
  PlainStream up(std::move(connected->fd), services_->buffers);
  upstream_ = &up;
  if (stopped_) up.Abort();
  ByteStream* upward = &up;
  std::unique_ptr<TlsStream> up_tls;
  bool ready = true;
  if (const auto* tls = listener_->extensions.Get<TlsUpstreamConfig>(kUpstreamTlsTable)) {
    TlsClientShardContext* ctx =
        snapshot_->listener_upstream_tls[static_cast<size_t>(listener_->index)].get();
    ready = (co_await ConnectTls(services_, ctx, tls->handshake_timeout_ms, &up, listener_, peer_,
                                 audit->upstream, &stopped_, &up_tls))
                .ok();
    if (ready) upward = up_tls.get();
  }
  UpstreamLoginOutcome outcome;
  outcome.status = UpstreamLoginStatus::kStreamError;
  if (ready && !stopped_) {
    if (imap()) {
      imap::UpstreamLoginRequest request;
      request.credentials = credentials;
      request.login = std::move(login);
      request.authzid_login = std::move(authzid_login);
      request.client_ip = client_ip_;
      request.local_ip = local_ip_;
      outcome = co_await imap::LoginUpstream(upward, &settings_->imap_login, &request);
    } else {
      pop3::UpstreamLoginRequest request;
      request.credentials = credentials;
      request.login = std::move(login);
      request.authzid_login = std::move(authzid_login);
      request.client_ip = client_ip_;
      outcome = co_await pop3::LoginUpstream(upward, &settings_->pop3_login, &request);
    }
  }
  AttemptEnd end = AttemptEnd::kDone;
  if (stopped_) {
    // Nothing more to say to the client.
  } else if (outcome.status == UpstreamLoginStatus::kOk) {
    bool allowed = true;
    if (routes->throttle() != nullptr) {
      std::optional<ThrottleDecision> d = co_await AskThrottle(
          snapshot_.get(), ThrottleAsk::kUserLogin, route->account, "", &waiting_, &stopped_);
      if (d.has_value() && !d->allowed() && !stopped_) {
        allowed = false;
        metrics.mail_throttled.Add();
        RP_LOG(kInfo, "{}: client {}: user '{}' throttled after login ({} in the window)",
               listener_->name, peer_.ToString(), route->account, d->count);
        audit->result = "user_throttled";
        co_await Audit(audit, start_ns);
        co_await Reply(UserThrottledText(d->message, *credentials));
      }
    }
    if (allowed && !stopped_) {
      metrics.mail_logins.Add();
      audit->result = "ok";
      co_await Audit(audit, start_ns);
      bool sent = co_await Reply(outcome.alerts + outcome.reply_line);
      if (sent && !credentials->pipelined.empty()) {
        IoResult w = co_await WriteAll(upward, AsBytes(credentials->pipelined),
                                       Deadline::AfterMs(listener_->send_timeout_ms));
        sent = w.ok();
      }
      if (sent && !stopped_) {
        relayed_ = true;
        PumpOptions options;
        options.idle_timeout_ms = settings_->relay_idle_timeout_ms;
        options.send_timeout_ms = listener_->send_timeout_ms;
        options.mode = listener_->relay;
        Pump pump(down_, upward,
                  PumpResources{services_->pipes, services_->buffers, services_->sweeper}, options);
        pump_ = &pump;
        if (stopped_) pump.Stop();
        PumpResult result = co_await pump.Run();
        pump_ = nullptr;
        CountPumpEnd(metrics, result);
        if (snapshot_->config->log.access) {
          log::AccessLine(
              "access {} listener={} client={} user={} account={} upstream={} to_upstream={} "
              "to_client={} end={}{}",
              settings_->name(), listener_->name, peer_.ToString(), log::Word{credentials->user},
              log::Word{route->account}, audit->upstream, result.bytes_to_upstream,
              result.bytes_to_downstream, PumpEndName(result.end), TlsSummary(client_tls_.get()));
        }
      }
    }
  } else if (outcome.status == UpstreamLoginStatus::kRefused) {
    metrics.mail_login_failures.Add();
    RP_LOG(kInfo, "{}: client {}: mailbox server {} refused the login of '{}'", listener_->name,
           peer_.ToString(), audit->upstream, route->account);
    // The upstream connection is not kept for another attempt.
    shutdown(up.fd(), SHUT_RDWR);
    const bool held = co_await Hold(settings_->auth_wait_ms);
    routes->router().Forget(*route);
    audit->result = "login_failed";
    co_await Audit(audit, start_ns);
    if (held && !stopped_) {
      // The server's alerts go to the client either way (spec §4.2); its refusal text
      // only with pass_errors.
      std::string text = outcome.alerts +
                         (settings_->pass_errors ? outcome.reply_line : RefusedText(*credentials));
      const bool sent = co_await Reply(std::move(text));
      if (sent && settings_->login_retry) end = AttemptEnd::kRetry;
    }
  } else {
    metrics.mail_internal_errors.Add();
    RP_LOG(kWarn, "{}: client {}: login of '{}' on mailbox server {} failed: {}", listener_->name,
           peer_.ToString(), route->account, audit->upstream,
           ready ? UpstreamLoginStatusName(outcome.status) : std::string_view("TLS failed"));
    audit->result = "upstream_error";
    co_await Audit(audit, start_ns);
    co_await Reply(outcome.alerts + InternalErrorText());
  }
  upstream_ = nullptr;
  co_await upward->Quiesce();
  if (upward != &up) co_await up.Quiesce();
  co_return end;
}

// A mail connection as the shard's session list sees it. Between the greeting and the
// first byte of a plain listener's client it is all there is ("parked"): no session
// object, no dialogue, no buffer, one poll. An edge holds many such idle connections.
class MailConnection final : public SessionBase {
 public:
  explicit MailConnection(int fd) : fd_(fd) {}
  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    if (session_ != nullptr) {
      session_->Stop();
    } else if (waiting_ != nullptr) {
      waiting_->Set();  // the IP throttle's answer, before the greeting
    } else {
      Reactor::Current()->CancelFd(fd_);
    }
  }

  int fd_;
  bool stopped_ = false;
  MailSession* session_ = nullptr;
  Event* waiting_ = nullptr;
};

// A plain listener's admission and greeting (the slow path: a throttle to ask, or a
// greeting the socket did not take at once). Its own frame, gone before the
// connection parks. False: the connection has ended.
Task<bool> Greet(ShardServices* services, ShardSnapshot* snapshot, const ListenerConfig* listener,
                 int fd, const SocketAddress* peer, MailConnection* connection, size_t sent) {
  const bool* stopped = &connection->stopped_;
  const auto* settings =
      static_cast<const MailListenerSettings*>(listener->protocol_settings.get());
  std::string refusal;
  if (sent == 0) {
    refusal = co_await Refusal(services, snapshot, listener, peer, &connection->waiting_, stopped);
  }
  if (*stopped) co_return false;
  std::string_view text = refusal.empty() ? settings->greeting_line : refusal;
  IoResult w = co_await SendAll(fd, AsBytes(text.substr(refusal.empty() ? sent : 0)),
                                Deadline::AfterMs(listener->send_timeout_ms));
  co_return w.ok() && refusal.empty() && !*stopped;
}

// Sends the greeting now when nothing needs asking first (no IP throttle): a new
// socket's send buffer takes it whole, so the common case allocates nothing that
// would outlive the accept and fragment the heap between parked connections.
// Returns the bytes sent; 0 when the slow path must run from the start.
size_t GreetNow(ShardSnapshot* snapshot, const MailListenerSettings* settings, int fd) {
  if (snapshot->routes == nullptr || snapshot->routes->throttle() != nullptr) return 0;
  const std::string& line = settings->greeting_line;
  ssize_t n = send(fd, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  return n > 0 ? static_cast<size_t>(n) : 0;
}

// The pre-auth timeout of a parked connection: the dialogue's autologout line.
Task<void> Autologout(const ListenerConfig* listener, int fd) {
  std::string_view text = IsImap(listener) ? imap::AutologoutLine() : pop3::AutologoutLine();
  IoResult w = co_await SendAll(fd, AsBytes(text), Deadline::AfterMs(listener->send_timeout_ms));
  (void)w;
}

Task<void> MailSessionEntry(ShardServices* services, SnapshotRef snapshot,
                            const ListenerConfig* listener, int client_fd, SocketAddress peer,
                            Gate::Holder /*holder*/) {
  ShardMetrics& metrics = *services->metrics;
  metrics.connections_active.Add();
  MailConnection connection(client_fd);
  SessionRegistration registration(services, listener, &connection);
  const auto* settings =
      static_cast<const MailListenerSettings*>(listener->protocol_settings.get());
  bool parked = false;
  if (!settings->implicit_tls) {
    // Everything that lives across this wait is in this frame; keep it small.
    const int64_t start_ns = TurnNowNs();
    const size_t sent = GreetNow(snapshot.get(), settings, client_fd);
    bool greeted = sent == settings->greeting_line.size();
    if (!greeted) {
      greeted =
          co_await Greet(services, snapshot.get(), listener, client_fd, &peer, &connection, sent);
    }
    IoResult r{-ECANCELED};
    if (greeted) {
      const int64_t idle_ms =
          IsImap(listener) ? settings->imap.idle_timeout_ms : settings->pop3.idle_timeout_ms;
      r = co_await Poll(client_fd, POLLIN | POLLRDHUP, Deadline::AfterMs(idle_ms));
    }
    parked = greeted && r.ok() && (r.res & POLLIN) != 0;
    if (!parked) {
      if (greeted && r.timed_out()) co_await Autologout(listener, client_fd);
      if (connection.stopped_) metrics.sessions_stopped.Add();
      shutdown(client_fd, SHUT_WR);
      close(client_fd);
      metrics.connections_active.Sub();
      RP_LOG(kDebug, "{}: client {}: session ended ({}) after {} ms", listener->name,
             peer.ToString(),
             !greeted        ? "not greeted"
             : r.timed_out() ? "timeout"
             : r.cancelled() ? "stopped"
                             : "closed",
             (TurnNowNs() - start_ns) / 1'000'000);
      co_return;
    }
  }
  auto session = std::make_unique<MailSession>(services, std::move(snapshot), listener, client_fd,
                                               peer, parked);
  connection.session_ = session.get();
  if (connection.stopped_) session->Stop();
  co_await session->Run();
  connection.session_ = nullptr;
  metrics.connections_active.Sub();
}

}  // namespace

const ProtocolSpec kImapProtocol = {"imap", &ReadImapListener, &MailSessionEntry};
const ProtocolSpec kImapsProtocol = {"imaps", &ReadImapsListener, &MailSessionEntry};
const ProtocolSpec kPop3Protocol = {"pop3", &ReadPop3Listener, &MailSessionEntry};
const ProtocolSpec kPop3sProtocol = {"pop3s", &ReadPop3sListener, &MailSessionEntry};

}  // namespace ringproxy
