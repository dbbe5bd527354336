// A session's route resolution and throttle checks that a stop does not wait for. Each
// runs as its own task holding the generation (its route stack stays open until the
// task ends); the session waits on an event that the task, or the session's Stop(),
// sets. At shutdown the shard aborts lookups still in flight; a memcached request ends
// by its own deadline.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/sync.h"
#include "core/task.h"
#include "proto/session.h"
#include "route/router.h"
#include "route/throttle.h"

namespace ringproxy {

struct PendingRoute {
  ResolveResult result;
  Event done;  // set by the task, or by Stop() to wake the session
};

// Usage: pending = make_shared; Spawn(ResolveDetached(snapshot, request, pending,
// snapshot->retire_gate->Enter())); then co_await pending->done.Wait() unless stopped.
Task<void> ResolveDetached(SnapshotRef snapshot, ResolveRequest request,
                           std::shared_ptr<PendingRoute> pending, Gate::Holder holder);

enum class ThrottleAsk : uint8_t {
  kIp,         // Throttle::CheckIp(protocol, key = client IP)
  kUser,       // Throttle::CheckUser(key = account)
  kUserLogin,  // Throttle::CountUserLogin(key = account)
};

// Asks the snapshot's throttle (which must exist) in a task of its own. While it runs,
// *waiting is the event a Stop() must set; nullopt when *stopped was or became true.
Task<std::optional<ThrottleDecision>> AskThrottle(ShardSnapshot* snapshot, ThrottleAsk ask,
                                                  std::string key, std::string protocol,
                                                  Event** waiting, const bool* stopped);

}  // namespace ringproxy
