// One shard's route stack built from a config snapshot: its memcached client, lookup
// client, router and throttle, each owned here and used by this shard only. Built when
// the config has a [lookup] section; a reload whose [lookup], [memcache] and [throttle]
// settings are the same keeps it (Serves()), with its connections and cache; closed in
// order (the router's cache writes, then memcached, then the lookup connections) when
// the last generation that holds it ends.
#pragma once

#include <memory>
#include <optional>

#include "cache/memcache_client.h"
#include "core/config.h"
#include "core/task.h"
#include "route/config.h"
#include "route/lookup_client.h"
#include "route/router.h"
#include "route/throttle.h"

namespace ringproxy {

class RouteStack {
 public:
  // Null when the config has no [lookup] section (no mail or web routing configured).
  static std::unique_ptr<RouteStack> Build(const Config& config);
  ~RouteStack();
  RouteStack(const RouteStack&) = delete;
  RouteStack& operator=(const RouteStack&) = delete;

  // Whether a stack built from `config` would be this one: same settings throughout.
  bool Serves(const Config& config) const;

  Router& router() { return *router_; }
  // Null when no throttle counts anything.
  Throttle* throttle() { return throttle_.get(); }
  // Null without [memcache].
  MemcacheClient* memcache() { return memcache_.get(); }

  // Shutdown: ends the lookups and memcached requests in flight at once (they resolve
  // as unavailable).
  void Abort() {
    lookup_->Abort();
    if (memcache_ != nullptr) memcache_->Abort();
  }
  // Waits for the router's cache writes, then closes memcached and the lookup pool.
  // Call once no session uses the stack.
  Task<void> Close();

 private:
  // What a config asks of the stack (nullopt: no [lookup]).
  struct Settings {
    LookupOptions lookup;
    RouterOptions router;
    std::optional<MemcacheOptions> memcache;
    std::optional<ThrottleOptions> throttle;  // only when it counts something
    bool operator==(const Settings&) const = default;
  };
  static std::optional<Settings> SettingsOf(const Config& config);

  RouteStack() = default;

  Settings settings_;
  std::unique_ptr<MemcacheClient> memcache_;
  std::unique_ptr<LookupClient> lookup_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<Throttle> throttle_;
  bool closed_ = false;
};

}  // namespace ringproxy
