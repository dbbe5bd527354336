// Route resolution: where does this user's mailbox live? Per shard:
//   per-core cache -> memcached (Zimbra's keys and values) -> the lookup service,
// with single-flight: concurrent resolutions of one key on a shard share one
// memcached round and at most one lookup. Zimbra's rules (spec §2.2): entries are
// written with `add` (never overwrite); the mail alias is keyed by the proxy's local
// (virtual) IP; GSSAPI and certauth results are never cached; after the upstream
// refused a login, Forget() deletes the alias and route keys of that resolution.
// memcached being down reads as misses (logged once per change).
#pragma once

#include <coroutine>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "cache/lru_cache.h"
#include "cache/memcache_client.h"
#include "core/sync.h"
#include "core/task.h"
#include "route/lookup_client.h"

namespace ringproxy {

enum class AuthMethod : uint8_t { kUsername, kZimbraId, kGssapi, kCertauth };

struct RouterOptions {
  bool caching = true;             // use memcached (zm_lookup_caching)
  bool allow_unqualified = false;  // zm_lookup_allow_unqualified
  uint32_t memcache_ttl_s = 3600;  // zimbraReverseProxyCacheEntryTTL
  size_t local_cache_size = 100000;
  // Short: what zmproxypurge deletes from memcached must stop being used here too.
  int64_t local_ttl_ms = 60'000;
  int64_t negative_ttl_ms = 10'000;  // "user not found" and other refusals
  bool operator==(const RouterOptions&) const = default;
};

struct ResolveRequest {
  AuthMethod method = AuthMethod::kUsername;
  std::string login;     // as the client typed it (unescaped), or a zimbraId
  std::string protocol;  // imap | imapssl | pop3 | pop3ssl | http | httpssl
  std::string client_ip;
  std::string local_ip;  // the proxy's address on the client's connection
  bool web = false;      // web requests key aliases by virtual host
  std::string vhost;     // web: the Host header
  bool admin = false;    // web id routes: admin console
  bool zx = false;       // web id routes: /zx/
  int login_attempt = 1;
  std::string auth_id;  // gssapi
  std::string admin_user;
  std::string admin_pass;
};

enum class ResolveStatus : uint8_t {
  kOk,
  kLoginFailed,  // the lookup service refused: protocol's "login failed" after wait_s
  kUnavailable,  // no route could be had now: protocol's internal/temporary error
  // The login (or another value of the request) holds a control character the lookup
  // protocol cannot carry (LookupStatus::kInvalidRequest): the service was not asked and
  // nothing was cached. Fails this request only, answered as kUnavailable is (the
  // protocol's internal error); it differs in what is at fault: the client's input.
  kInvalidRequest,
};

enum class RouteSource : uint8_t { kLocalCache, kMemcache, kLookup };

std::string_view RouteSourceName(RouteSource s);

struct ResolveResult {
  ResolveStatus status = ResolveStatus::kUnavailable;
  std::string reason;
  int wait_s = -1;
  std::string server;  // IP (or host name, as the service returned it)
  uint16_t port = 0;
  std::string account;  // canonical account: the upstream login name
  std::string auth_id;
  std::string auth_pass;
  RouteSource source = RouteSource::kLookup;
  // The keys behind this route, for Forget().
  std::string alias_key;
  std::string route_key;
  std::string login_key;  // the route under the name as typed (per-core cache only)
};

struct RouterStats {
  uint64_t resolutions = 0;
  uint64_t local_hits = 0;
  uint64_t memcache_hits = 0;
  uint64_t lookups = 0;
  uint64_t joined = 0;  // waited for another resolution of the same key
  uint64_t memcache_errors = 0;
};

class Router {
 public:
  // `memcache` may be null (no memcached configured).
  Router(RouterOptions options, MemcacheClient* memcache, LookupClient* lookup);
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  Task<ResolveResult> Resolve(ResolveRequest request);
  // The upstream refused the login: drop the alias and route keys, here at once and in
  // memcached in the background (Drain() waits for that), so that no caller waits on
  // memcached; a later Get of those keys queues behind the deletes.
  void Forget(const ResolveResult& result);
  // Drops these per-core entries (what another shard's Forget dropped there).
  void ForgetHere(const std::vector<std::string>& keys);
  // Forget also sends the keys it dropped to every shard, this one included (its other
  // generations' stacks): at once, and again once memcached has deleted them (set by
  // the server).
  using PeerForget = std::function<void(std::vector<std::string> keys)>;
  void set_peer_forget(PeerForget f) { peer_forget_ = std::move(f); }
  // Drop every cached route and alias of `account`: its memcached keys for the given proxy
  // IPs, and every per-core entry that names it. For an admin API; not wired yet.
  Task<void> Invalidate(std::string account, std::vector<std::string> local_ips);
  // Waits for the cache writes still in flight (they never delay a resolution).
  Task<void> Drain();

  const RouterStats& stats() const { return stats_; }
  size_t local_cache_size() const { return local_.size(); }

 private:
  struct LocalEntry {
    enum class Kind : uint8_t { kAlias, kRoute, kRefused } kind = Kind::kRoute;
    std::string value;  // alias: account; route: "IP:port"; refused: reason
    int wait_s = -1;
    // route: the canonical account it belongs to, also when kept under the name as typed
    // (an alias the service said not to cache), so every hit answers with the account.
    std::string account;
  };
  struct Flight {
    struct Waiter {
      ResolveResult* out;
      std::coroutine_handle<> handle;
    };
    std::vector<Waiter> waiters;
  };

  // Pointers, not references: coroutine parameters (core/task.h); the caller's frame
  // owns them across the waits.
  Task<ResolveResult> ResolveUncached(const ResolveRequest* request,
                                      const std::string* alias_key_in,
                                      const std::string* route_key_login_in);
  Task<McReply> CacheGet(std::string key);
  void CacheAdd(std::string key, std::string value);
  void NoteMemcacheState(bool ok);
  std::string RouteKeyFor(const ResolveRequest& r, std::string_view name) const;
  std::string RouteKeyForKeyName(const ResolveRequest& r, std::string_view key_name) const;
  Task<void> AddDetached(std::string key, std::string value, Gate::Holder holder);
  Task<void> DeleteDetached(std::string key, Gate::Holder holder);
  Task<void> DeleteThenTellPeers(std::vector<std::string> shared_keys,
                                 std::vector<std::string> keys, Gate::Holder holder);
  void TellPeers(std::vector<std::string> keys);

  RouterOptions options_;
  MemcacheClient* memcache_;
  LookupClient* lookup_;
  LruCache<LocalEntry> local_;
  absl::flat_hash_map<std::string, Flight*> flights_;
  Gate writes_;
  bool memcache_ok_ = true;
  RouterStats stats_;
  PeerForget peer_forget_;
};

}  // namespace ringproxy
