#include "route/router.h"

#include <array>

#include "core/log.h"
#include "core/ops.h"
#include "route/keys.h"
#include "route/lookup_codec.h"

namespace ringproxy {

std::string_view RouteSourceName(RouteSource s) {
  switch (s) {
    case RouteSource::kLocalCache:
      return "local";
    case RouteSource::kMemcache:
      return "memcached";
    case RouteSource::kLookup:
      return "lookup";
  }
  return "?";
}

namespace {

constexpr std::array<std::string_view, 6> kProtocols = {"imap",    "imapssl", "pop3",
                                                        "pop3ssl", "http",    "httpssl"};

// Keys carry names verbatim; a name with spaces or control bytes (which the text
// protocol cannot carry) is %-escaped, as Zimbra escapes its throttle keys.
std::string KeyName(std::string_view name) { return lookup::EscapeMailAuth(name); }

std::string AliasKeyFor(const ResolveRequest& r, std::string_view key_name) {
  return r.web ? keys::WebAlias(key_name, r.vhost) : keys::MailAlias(key_name, r.local_ip);
}

// A refusal is kept per client address: the lookup service may refuse because of the
// address (a domain's allowed IPs), and one client's refusal must not lock the account
// out for the others.
std::string RefusedKey(const ResolveRequest& r, std::string_view route_key_login) {
  std::string key = "refused\n";
  key += r.client_ip;
  key += '\n';
  key += route_key_login;
  return key;
}

std::string_view LocalPart(std::string_view account) {
  size_t at = account.find('@');
  return at == std::string_view::npos ? account : account.substr(0, at);
}

bool SetRoute(std::string_view value, ResolveResult* out) {
  return keys::ParseRouteValue(value, &out->server, &out->port);
}

Task<void> StoreGet(Task<McReply> get, McReply* out, Gate::Holder) {
  *out = co_await std::move(get);
}

// A template because Router::Flight is private.
template <typename Waiters>
class JoinAwaiter {
 public:
  JoinAwaiter(Waiters* waiters, ResolveResult* out) : waiters_(waiters), out_(out) {}
  bool await_ready() const { return false; }
  void await_suspend(std::coroutine_handle<> h) { waiters_->push_back({out_, h}); }
  void await_resume() const {}

 private:
  Waiters* waiters_;
  ResolveResult* out_;
};

}  // namespace

Router::Router(RouterOptions options, MemcacheClient* memcache, LookupClient* lookup)
    : options_(options), memcache_(memcache), lookup_(lookup), local_(options.local_cache_size) {}

std::string Router::RouteKeyFor(const ResolveRequest& r, std::string_view name) const {
  if (r.method == AuthMethod::kZimbraId) return keys::RouteById(r.protocol, name, r.admin, r.zx);
  return RouteKeyForKeyName(r, KeyName(name));
}

// Escaping leaves '@' alone, so the unqualified test reads the escaped name as well.
// An unqualified name's key carries what the lookup service completes it from (spec
// §1.4): the Host (X-Proxy-Host) for proto http, else the proxy's address.
std::string Router::RouteKeyForKeyName(const ResolveRequest& r, std::string_view key_name) const {
  if (key_name.find('@') == std::string_view::npos && !options_.allow_unqualified) {
    const bool by_host = r.web && r.protocol == "http";
    return keys::RouteUnqualified(r.protocol, key_name, by_host ? r.vhost : r.local_ip);
  }
  return keys::RouteByUser(r.protocol, key_name);
}

void Router::NoteMemcacheState(bool ok) {
  if (ok == memcache_ok_) return;
  memcache_ok_ = ok;
  if (ok) {
    RP_LOG(kInfo, "route cache: memcached answers again");
  } else {
    RP_LOG(kWarn, "route cache: memcached unavailable; resolving as cache misses");
  }
}

Task<McReply> Router::CacheGet(std::string key) {
  McReply r = co_await memcache_->Get(std::move(key));
  if (!r.ok()) ++stats_.memcache_errors;
  NoteMemcacheState(r.ok());
  co_return r;
}

Task<void> Router::AddDetached(std::string key, std::string value, Gate::Holder) {
  McReply r = co_await memcache_->Add(std::move(key), std::move(value), options_.memcache_ttl_s);
  NoteMemcacheState(r.ok());
}

Task<void> Router::DeleteDetached(std::string key, Gate::Holder /*holder*/) {
  McReply r = co_await memcache_->Delete(std::move(key));
  NoteMemcacheState(r.ok());
}

void Router::CacheAdd(std::string key, std::string value) {
  if (memcache_ == nullptr || !options_.caching) return;
  // `add`, never `set`: an entry another proxy wrote first stays (Zimbra's rule).
  Spawn(AddDetached(std::move(key), std::move(value), writes_.Enter()));
}

Task<void> Router::Drain() { co_await writes_.Wait(); }

Task<ResolveResult> Router::Resolve(ResolveRequest r) {
  ++stats_.resolutions;
  const int64_t now = MonotonicNowNs();
  const bool cacheable = r.method == AuthMethod::kUsername || r.method == AuthMethod::kZimbraId;
  std::string alias_key;
  std::string route_key_login;
  if (r.method == AuthMethod::kUsername) {
    const std::string login_key_name = KeyName(r.login);  // escaped once for both keys
    alias_key = AliasKeyFor(r, login_key_name);
    route_key_login = RouteKeyForKeyName(r, login_key_name);
  } else {
    route_key_login = RouteKeyFor(r, r.login);
  }
  if (cacheable) {
    std::string account;
    if (!alias_key.empty()) {
      const LocalEntry* a = local_.Get(alias_key, now);
      if (a != nullptr && a->kind == LocalEntry::Kind::kAlias) account = a->value;
    }
    const std::string route_key = account.empty() ? route_key_login : RouteKeyFor(r, account);
    if (const LocalEntry* e = local_.Get(route_key, now)) {
      ResolveResult out;
      if (e->kind == LocalEntry::Kind::kRoute && SetRoute(e->value, &out)) {
        ++stats_.local_hits;
        out.status = ResolveStatus::kOk;
        out.source = RouteSource::kLocalCache;
        out.account = e->account;
        out.alias_key = alias_key;
        out.route_key = route_key;
        if (route_key == route_key_login && r.method == AuthMethod::kUsername &&
            !e->account.empty()) {
          // Found under the name as typed: the account's own key goes too on Forget.
          out.route_key = RouteKeyFor(r, e->account);
        }
        if (out.route_key != route_key_login) out.login_key = route_key_login;
        co_return out;
      }
    }
    if (const LocalEntry* e = local_.Get(RefusedKey(r, route_key_login), now)) {
      ++stats_.local_hits;
      ResolveResult out;
      out.status = ResolveStatus::kLoginFailed;
      out.reason = e->value;
      out.wait_s = e->wait_s;
      out.source = RouteSource::kLocalCache;
      co_return out;
    }
  }
  // Single flight: one resolution per key per shard; the others wait for its answer.
  // The client's address is part of the question: the service may answer by it.
  const std::string flight_key =
      route_key_login + "\n" + alias_key + "\n" + r.auth_id + "\n" + r.client_ip;
  Flight flight;
  Flight* const running = flights_.try_emplace(flight_key, &flight).first->second;
  if (running != &flight) {
    ++stats_.joined;
    ResolveResult out;
    co_await JoinAwaiter<std::vector<Flight::Waiter>>(&running->waiters, &out);
    co_return out;
  }
  ResolveResult result = co_await ResolveUncached(&r, &alias_key, &route_key_login);
  flights_.erase(flight_key);
  for (Flight::Waiter& w : flight.waiters) {
    *w.out = result;
    Reactor::Current()->Post(w.handle);
  }
  co_return result;
}

Task<ResolveResult> Router::ResolveUncached(const ResolveRequest* request,
                                            const std::string* alias_key_in,
                                            const std::string* route_key_login_in) {
  const ResolveRequest& r = *request;
  const std::string& alias_key = *alias_key_in;
  const std::string& route_key_login = *route_key_login_in;
  const bool cacheable = r.method == AuthMethod::kUsername || r.method == AuthMethod::kZimbraId;
  ResolveResult out;
  out.alias_key = alias_key;
  out.route_key = route_key_login;
  bool alias_cached = false;
  if (cacheable && memcache_ != nullptr && options_.caching) {
    // The alias and the route under the typed name in one round trip; a second one
    // only when the alias names another account. An unqualified name is never an
    // account, and a route under it ("IP:port", spec §2.2) cannot say whose it is: without
    // its alias only the lookup service can name the account, so it is not asked for.
    const bool login_may_be_account =
        r.method != AuthMethod::kUsername || r.login.find('@') != std::string::npos;
    McReply alias, route;
    {
      Gate both;
      if (!alias_key.empty()) Spawn(StoreGet(CacheGet(alias_key), &alias, both.Enter()));
      if (login_may_be_account) Spawn(StoreGet(CacheGet(route_key_login), &route, both.Enter()));
      co_await both.Wait();
    }
    // Alias values are kept as the lookup service wrote Auth-User, %-escaped, as
    // Zimbra's proxies keep them (spec §1.3): one pool, one spelling.
    std::string account;
    if (alias.hit() && !lookup::UnescapeMailAuth(alias.value, &account)) account.clear();
    alias_cached = alias.hit();
    if (!account.empty() && account != r.login) {
      out.route_key = RouteKeyFor(r, account);
      route = co_await CacheGet(out.route_key);
    }
    if (route.hit() && SetRoute(route.value, &out)) {
      ++stats_.memcache_hits;
      out.status = ResolveStatus::kOk;
      out.source = RouteSource::kMemcache;
      // No alias: the route is the qualified name's own, which names the account (routes
      // are written under accounts only, never under an alias).
      out.account = account.empty() ? r.login : account;
      const int64_t now = MonotonicNowNs();
      const int64_t ttl = options_.local_ttl_ms * 1'000'000;
      local_.Put(out.route_key, LocalEntry{LocalEntry::Kind::kRoute, route.value, -1, out.account},
                 ttl, now);
      if (!account.empty()) {
        local_.Put(alias_key, LocalEntry{LocalEntry::Kind::kAlias, account, -1, {}}, ttl, now);
      }
      co_return out;
    }
  }
  ++stats_.lookups;
  LookupQuery q;
  q.method = r.method == AuthMethod::kUsername   ? "username"
             : r.method == AuthMethod::kZimbraId ? "zimbraId"
             : r.method == AuthMethod::kGssapi   ? "gssapi"
                                                 : "certauth";
  q.user = r.login;
  q.escape_user = !r.web && r.method == AuthMethod::kUsername;
  q.protocol = r.protocol;
  q.login_attempt = r.login_attempt;
  q.client_ip = r.client_ip;
  q.proxy_ip = r.local_ip;
  q.proxy_host = r.web ? r.vhost : std::string();
  q.zimbra_admin = r.admin;
  q.zimbra_zx = r.zx;
  q.auth_id = r.auth_id;
  q.admin_user = r.admin_user;
  q.admin_pass = r.admin_pass;
  LookupResult lr = co_await lookup_->Lookup(std::move(q));
  out.source = RouteSource::kLookup;
  const int64_t now = MonotonicNowNs();
  switch (lr.status) {
    case LookupStatus::kOk: {
      out.status = ResolveStatus::kOk;
      out.server = lr.server;
      out.port = lr.port;
      out.account = lr.user.empty() ? r.login : lr.user;
      out.auth_id = lr.auth_id;
      out.auth_pass = lr.auth_pass;
      if (!cacheable) co_return out;  // GSSAPI and certauth: never cached
      const std::string value = keys::RouteValue(out.server, out.port);
      const int64_t ttl = options_.local_ttl_ms * 1'000'000;
      out.route_key =
          r.method == AuthMethod::kZimbraId ? route_key_login : RouteKeyFor(r, out.account);
      const LocalEntry route{LocalEntry::Kind::kRoute, value, -1, out.account};
      local_.Put(out.route_key, route, ttl, now);
      CacheAdd(out.route_key, value);
      if (route_key_login != out.route_key) out.login_key = route_key_login;
      if (route_key_login != out.route_key && !lr.cache_alias) {
        // An unqualified or aliased name whose alias may not be cached: keep the route
        // under the name as typed, with its account, so the next login here finds both.
        // Not in memcached: its value is only "IP:port" (spec §2.2), and without the
        // alias nothing there could name the account, so another proxy would answer
        // with the name as typed and split the account (and its user throttle).
        local_.Put(route_key_login, route, ttl, now);
      }
      if (r.method == AuthMethod::kUsername && lr.cache_alias && !alias_cached) {
        const LocalEntry alias{LocalEntry::Kind::kAlias, out.account, -1, {}};
        local_.Put(alias_key, alias, ttl, now);
        // Zimbra also caches a login that is the account under its local part ("john" ->
        // "john@default.domain", spec §2.2); not done: on a virtual IP of another domain
        // the lookup service completes "john" with that domain instead.
        if (r.login != out.account) CacheAdd(alias_key, lookup::EscapeMailAuth(out.account));
      }
      co_return out;
    }
    case LookupStatus::kLoginFailed:
      out.status = ResolveStatus::kLoginFailed;
      out.reason = lr.reason;
      out.wait_s = lr.wait_s;
      if (cacheable) {
        local_.Put(RefusedKey(r, route_key_login),
                   LocalEntry{LocalEntry::Kind::kRefused, lr.reason, lr.wait_s, {}},
                   options_.negative_ttl_ms * 1'000'000, now);
      }
      co_return out;
    case LookupStatus::kInvalidRoute:
    case LookupStatus::kUnavailable:
      out.status = ResolveStatus::kUnavailable;
      out.reason = lr.reason;
      co_return out;
    case LookupStatus::kInvalidRequest:
      out.status = ResolveStatus::kInvalidRequest;  // never cached: not the service's answer
      out.reason = lr.reason;
      co_return out;
  }
  co_return out;
}

void Router::Forget(const ResolveResult& result) {
  std::vector<std::string> keys;
  std::vector<std::string> shared_keys;                             // also in memcached
  if (!result.login_key.empty()) keys.push_back(result.login_key);  // never in memcached
  for (const std::string* k : {&result.alias_key, &result.route_key}) {
    if (k->empty()) continue;
    keys.push_back(*k);
    shared_keys.push_back(*k);
  }
  ForgetHere(keys);
  // Now, before the refusal reaches the client: a retry that lands on another core must
  // not find the route there however long memcached takes to delete it.
  if (memcache_ == nullptr || shared_keys.empty()) {
    TellPeers(std::move(keys));
    return;
  }
  TellPeers(keys);
  Spawn(DeleteThenTellPeers(std::move(shared_keys), std::move(keys), writes_.Enter()));
}

Task<void> Router::DeleteThenTellPeers(std::vector<std::string> shared_keys,
                                       std::vector<std::string> keys, Gate::Holder /*holder*/) {
  // Sent together: a stalled server of one key must not hold back the other's delete.
  Gate deletes;
  for (std::string& k : shared_keys) Spawn(DeleteDetached(std::move(k), deletes.Enter()));
  co_await deletes.Wait();
  // Again: a core told at once could have fetched the old route from memcached before
  // the delete landed, and kept it for local_ttl_ms.
  TellPeers(std::move(keys));
}

void Router::TellPeers(std::vector<std::string> keys) {
  // Every core's caches hold the same stale route (a moved mailbox): each would fail
  // one more login before its entry expired.
  if (peer_forget_ && !keys.empty()) peer_forget_(std::move(keys));
}

void Router::ForgetHere(const std::vector<std::string>& keys) {
  for (const std::string& k : keys) local_.Erase(k);
}

Task<void> Router::Invalidate(std::string account, std::vector<std::string> local_ips) {
  std::vector<std::string> keys_to_drop;
  const std::string name = KeyName(account);
  for (std::string_view proto : kProtocols) keys_to_drop.push_back(keys::RouteByUser(proto, name));
  for (const std::string& ip : local_ips) {
    keys_to_drop.push_back(keys::MailAlias(name, ip));
    keys_to_drop.push_back(keys::MailAlias(KeyName(LocalPart(account)), ip));
    for (std::string_view proto : kProtocols) {
      keys_to_drop.push_back(keys::RouteUnqualified(proto, KeyName(LocalPart(account)), ip));
    }
  }
  for (const std::string& k : keys_to_drop) local_.Erase(k);
  // Per-core entries under other names: routes kept under an alias typed by a client
  // (never in memcached) and aliases of any local IP, found by the account they name.
  local_.EraseIf([&account](const LocalEntry& e) {
    return (e.kind == LocalEntry::Kind::kRoute && e.account == account) ||
           (e.kind == LocalEntry::Kind::kAlias && e.value == account);
  });
  if (memcache_ == nullptr) co_return;
  for (std::string& k : keys_to_drop) co_await DeleteDetached(std::move(k), writes_.Enter());
}

}  // namespace ringproxy
