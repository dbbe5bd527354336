// One shard's route stack built from a config snapshot: its memcached client, lookup
// client, router and throttle, each owned here and used by this shard only. Built when
// the config has a [lookup] section; closed in order (the router's cache writes, then
// memcached, then the lookup connections) when the generation it belongs to ends.
#pragma once

#include <memory>

#include "core/config.h"
#include "core/task.h"
#include "route/config.h"

namespace ringproxy {

class RouteStack {
 public:
  // Null when the config has no [lookup] section (no mail or web routing configured).
  static std::unique_ptr<RouteStack> Build(const Config& config);
  ~RouteStack();
  RouteStack(const RouteStack&) = delete;
  RouteStack& operator=(const RouteStack&) = delete;

  Router& router() { return *router_; }
  // Null when no throttle counts anything.
  Throttle* throttle() { return throttle_.get(); }
  // Null without [memcache].
  MemcacheClient* memcache() { return memcache_.get(); }
  const LookupSection& lookup_config() const { return *lookup_config_; }

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
  RouteStack() = default;

  const LookupSection* lookup_config_ = nullptr;
  std::unique_ptr<MemcacheClient> memcache_;
  std::unique_ptr<LookupClient> lookup_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<Throttle> throttle_;
  bool closed_ = false;
};

}  // namespace ringproxy
