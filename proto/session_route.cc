#include "proto/session_route.h"

#include <utility>

namespace ringproxy {

Task<void> ResolveDetached(SnapshotRef snapshot, ResolveRequest request,
                           std::shared_ptr<PendingRoute> pending, Gate::Holder /*holder*/) {
  ResolveResult r = co_await snapshot->routes->router().Resolve(std::move(request));
  pending->result = std::move(r);
  pending->done.Set();
}

namespace {

struct PendingThrottle {
  ThrottleDecision result;
  Event done;
};

Task<void> ThrottleDetached(SnapshotRef snapshot, ThrottleAsk ask, std::string key,
                            std::string protocol, std::shared_ptr<PendingThrottle> pending,
                            Gate::Holder /*holder*/) {
  Throttle* throttle = snapshot->routes->throttle();
  ThrottleDecision d;
  if (ask == ThrottleAsk::kIp) {
    d = co_await throttle->CheckIp(std::move(protocol), std::move(key));
  } else if (ask == ThrottleAsk::kUser) {
    d = co_await throttle->CheckUser(std::move(key));
  } else {
    d = co_await throttle->CountUserLogin(std::move(key));
  }
  pending->result = std::move(d);
  pending->done.Set();
}

}  // namespace

Task<std::optional<ThrottleDecision>> AskThrottle(ShardSnapshot* snapshot, ThrottleAsk ask,
                                                  std::string key, std::string protocol,
                                                  Event** waiting, const bool* stopped) {
  if (*stopped) co_return std::nullopt;
  auto pending = std::make_shared<PendingThrottle>();
  *waiting = &pending->done;
  Spawn(ThrottleDetached(SnapshotRef(snapshot), ask, std::move(key), std::move(protocol), pending,
                         snapshot->retire_gate->Enter()));
  if (!*stopped) co_await pending->done.Wait();
  *waiting = nullptr;
  if (*stopped) co_return std::nullopt;
  co_return std::move(pending->result);
}

}  // namespace ringproxy
