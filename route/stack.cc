#include "route/stack.h"

#include "core/check.h"

namespace ringproxy {

std::unique_ptr<RouteStack> RouteStack::Build(const Config& config) {
  const auto* lookup = config.sections.Get<LookupSection>(kLookupTable);
  if (lookup == nullptr) return nullptr;
  std::unique_ptr<RouteStack> s(new RouteStack());
  s->lookup_config_ = lookup;
  RouterOptions router = lookup->router;
  if (const auto* mc = config.sections.Get<MemcacheSection>(kMemcacheTable)) {
    s->memcache_ = std::make_unique<MemcacheClient>(mc->client);
    router.memcache_ttl_s = mc->ttl_s;
  } else {
    router.caching = false;
  }
  s->lookup_ = std::make_unique<LookupClient>(lookup->client);
  s->router_ = std::make_unique<Router>(router, s->memcache_.get(), s->lookup_.get());
  if (const auto* t = config.sections.Get<ThrottleSection>(kThrottleTable)) {
    const ThrottleOptions& o = t->options;
    if ((o.ip_max > 0 || o.imap_max > 0 || o.pop3_max > 0 || o.user_max > 0) &&
        s->memcache_ != nullptr) {
      s->throttle_ = std::make_unique<Throttle>(o, s->memcache_.get());
    }
  }
  return s;
}

RouteStack::~RouteStack() {
  // Memcached's and the lookup pool's connections are ring operations: they must have
  // been closed on the shard's reactor first.
  RP_CHECK(closed_ || (memcache_ == nullptr && lookup_ == nullptr));
}

Task<void> RouteStack::Close() {
  if (closed_) co_return;
  closed_ = true;
  co_await router_->Drain();
  if (memcache_ != nullptr) co_await memcache_->Close();
  lookup_->Close();
}

}  // namespace ringproxy
