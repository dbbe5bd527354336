// The route stack's configuration: the top-level [lookup], [memcache] and [throttle]
// sections, read by this module (core/ knows nothing of them) into immutable
// extensions of the config snapshot. docs/configuration.md lists each key with the
// zimbraReverseProxy* attribute it stands for.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cache/memcache_client.h"
#include "core/config.h"
#include "route/lookup_client.h"
#include "route/router.h"
#include "route/throttle.h"

namespace ringproxy {

inline constexpr std::string_view kLookupTable = "lookup";
inline constexpr std::string_view kMemcacheTable = "memcache";
inline constexpr std::string_view kThrottleTable = "throttle";

struct LookupSection : ConfigExtension {
  LookupOptions client;
  RouterOptions router;     // memcache_ttl_s comes from [memcache]
  std::string master_user;  // Auth-Admin-User for GSSAPI lookups
  std::string master_password;
};

struct MemcacheSection : ConfigExtension {
  MemcacheOptions client;
  uint32_t ttl_s = 3600;
};

struct ThrottleSection : ConfigExtension {
  ThrottleOptions options;
};

// "http://10.0.0.5:7072/service/extension/nginx-lookup", "http://[::1]:7072",
// "10.0.0.5:7072" or "10.0.0.5" (port 7072, Zimbra's default path); a name is resolved
// here, a handler per address. https is refused (the lookup client speaks plain HTTP).
absl::StatusOr<std::vector<LookupHandler>> ParseLookupHandlers(std::string_view text);

void RegisterRouteConfig(ConfigSchema* schema);

}  // namespace ringproxy
