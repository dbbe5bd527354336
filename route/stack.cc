#include "route/stack.h"

#include "core/check.h"

namespace ringproxy {

std::optional<RouteStack::Settings> RouteStack::SettingsOf(const Config& config) {
  const auto* lookup = config.sections.Get<LookupSection>(kLookupTable);
  if (lookup == nullptr) return std::nullopt;
  Settings s;
  s.lookup = lookup->client;
  s.router = lookup->router;
  if (const auto* mc = config.sections.Get<MemcacheSection>(kMemcacheTable)) {
    s.memcache = mc->client;
    s.router.memcache_ttl_s = mc->ttl_s;
  } else {
    s.router.caching = false;
  }
  if (const auto* t = config.sections.Get<ThrottleSection>(kThrottleTable)) {
    const ThrottleOptions& o = t->options;
    if ((o.ip_max > 0 || o.imap_max > 0 || o.pop3_max > 0 || o.user_max > 0) &&
        s.memcache.has_value()) {
      s.throttle = o;
    }
  }
  return s;
}

std::unique_ptr<RouteStack> RouteStack::Build(const Config& config) {
  std::optional<Settings> settings = SettingsOf(config);
  if (!settings.has_value()) return nullptr;
  std::unique_ptr<RouteStack> s(new RouteStack());
  s->settings_ = std::move(*settings);
  const Settings& o = s->settings_;
  if (o.memcache.has_value()) s->memcache_ = std::make_unique<MemcacheClient>(*o.memcache);
  s->lookup_ = std::make_unique<LookupClient>(o.lookup);
  s->router_ = std::make_unique<Router>(o.router, s->memcache_.get(), s->lookup_.get());
  if (o.throttle.has_value())
    s->throttle_ = std::make_unique<Throttle>(*o.throttle, s->memcache_.get());
  return s;
}

bool RouteStack::Serves(const Config& config) const {
  std::optional<Settings> settings = SettingsOf(config);
  return settings.has_value() && *settings == settings_;
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
