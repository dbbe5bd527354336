#include "route/config.h"

#include <algorithm>

#include "core/status_util.h"

namespace ringproxy {
namespace {

constexpr std::string_view kDefaultLookupPort = "7072";

ExtensionPtr ReadLookup(ConfigTable& t, const Config& /*so_far*/) {
  auto s = std::make_shared<LookupSection>();
  std::vector<std::string> servers;
  // A bad list is an error of its own; the other keys are still read (and checked).
  if (t.StringList("servers", &servers, /*required=*/true) && servers.empty()) {
    t.Error("servers", "needs at least one lookup server");
  }
  for (const std::string& text : servers) {
    absl::StatusOr<std::vector<LookupHandler>> h = ParseLookupHandlers(text);
    if (!h.ok()) {
      t.Error("servers", MessageOf(h.status()));
      continue;
    }
    for (LookupHandler& one : *h) s->client.handlers.push_back(std::move(one));
  }
  t.Int("connect_timeout_ms", &s->client.connect_timeout_ms, 1, 600'000);
  t.Int("timeout_ms", &s->client.timeout_ms, 1, 600'000);
  t.Int("retry_interval_ms", &s->client.retry_interval_ms, 0, 86'400'000);
  t.Bool("keepalive", &s->client.keepalive);
  int64_t idle = static_cast<int64_t>(s->client.max_idle_per_handler);
  t.Int("max_idle_per_server", &idle, 0, 10'000);
  s->client.max_idle_per_handler = static_cast<size_t>(idle);
  t.Bool("caching", &s->router.caching);
  t.Bool("allow_unqualified", &s->router.allow_unqualified);
  int64_t local_size = static_cast<int64_t>(s->router.local_cache_size);
  t.Int("local_cache_size", &local_size, 0, 100'000'000);
  s->router.local_cache_size = static_cast<size_t>(local_size);
  t.Int("local_ttl_ms", &s->router.local_ttl_ms, 0, 86'400'000);
  t.Int("negative_ttl_ms", &s->router.negative_ttl_ms, 0, 86'400'000);
  t.String("master_user", &s->master_user);
  t.String("master_password", &s->master_password);
  return s;
}

ExtensionPtr ReadMemcache(ConfigTable& t, const Config& /*so_far*/) {
  auto s = std::make_shared<MemcacheSection>();
  std::vector<std::string> servers;
  if (t.StringList("servers", &servers, /*required=*/true) && servers.empty()) {
    t.Error("servers", "needs at least one memcached server");
  }
  for (const std::string& text : servers) {
    absl::StatusOr<CacheServer> server = ParseCacheServer(text);
    if (!server.ok()) {
      t.Error("servers", MessageOf(server.status()));
      continue;
    }
    s->client.servers.push_back(*std::move(server));
  }
  std::string distribution = "ketama";
  t.String("distribution", &distribution);
  if (distribution == "ketama") {
    s->client.distribution = Distribution::kKetama;
  } else if (distribution == "zimbra") {
    s->client.distribution = Distribution::kZimbra;
  } else {
    t.Error("distribution", "must be \"ketama\" or \"zimbra\"");
  }
  t.Int("timeout_ms", &s->client.timeout_ms, 1, 600'000);
  t.Int("reconnect_ms", &s->client.reconnect_ms, 0, 86'400'000);
  int64_t pending = static_cast<int64_t>(s->client.max_pending);
  t.Int("max_pending", &pending, 1, 1'000'000);
  s->client.max_pending = static_cast<size_t>(pending);
  // memcached's exptime: above 30 days it reads as a Unix time.
  t.Int("ttl_s", &s->ttl_s, 0, 30 * 86'400);
  return s;
}

ExtensionPtr ReadThrottle(ConfigTable& t, const Config& so_far) {
  auto s = std::make_shared<ThrottleSection>();
  ThrottleOptions& o = s->options;
  constexpr uint32_t kWindowMax = 30 * 86'400;
  t.Int("ip_max", &o.ip_max, 0, 100'000'000);
  t.Int("ip_ttl_s", &o.ip_ttl_s, 1, kWindowMax);
  t.Int("imap_max", &o.imap_max, 0, 100'000'000);
  t.Int("imap_ttl_s", &o.imap_ttl_s, 1, kWindowMax);
  t.Int("pop3_max", &o.pop3_max, 0, 100'000'000);
  t.Int("pop3_ttl_s", &o.pop3_ttl_s, 1, kWindowMax);
  t.String("ip_reject_message", &o.ip_reject_message);
  std::vector<std::string> whitelist;
  t.StringList("whitelist", &whitelist);
  for (const std::string& text : whitelist) {
    absl::StatusOr<Cidr> cidr = Cidr::Parse(text);
    if (!cidr.ok()) {
      t.Error("whitelist", MessageOf(cidr.status()));
      continue;
    }
    o.whitelist.push_back(*cidr);
  }
  t.Int("whitelist_ttl_s", &o.whitelist_ttl_s, 1, kWindowMax);
  t.Int("user_max", &o.user_max, 0, 100'000'000);
  t.Int("user_ttl_s", &o.user_ttl_s, 1, kWindowMax);
  t.String("user_reject_message", &o.user_reject_message);
  t.Bool("fail_open", &o.fail_open);
  for (const std::string* m : {&o.ip_reject_message, &o.user_reject_message}) {
    for (char c : *m) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        t.Fail("reject messages are sent on one protocol line: no control characters");
        break;
      }
    }
  }
  const bool counts = o.ip_max > 0 || o.imap_max > 0 || o.pop3_max > 0 || o.user_max > 0;
  if (counts && so_far.sections.Find(kMemcacheTable) == nullptr) {
    t.Fail("throttle counters live in memcached: add a [memcache] section");
  }
  return s;
}

}  // namespace

absl::StatusOr<std::vector<LookupHandler>> ParseLookupHandlers(std::string_view text) {
  const std::string quoted = "lookup server '" + std::string(text) + "': ";
  std::string_view rest = text;
  if (rest.starts_with("https://")) {
    return absl::InvalidArgumentError(quoted +
                                      "https is not supported (the lookup client speaks HTTP)");
  }
  if (rest.starts_with("http://")) rest.remove_prefix(7);
  LookupHandler h;
  h.text = std::string(text);
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    h.path = std::string(rest.substr(slash));
    rest = rest.substr(0, slash);
  }
  if (rest.empty()) return absl::InvalidArgumentError(quoted + "no address");
  std::string hostport(rest);
  // "[v6]:port" and "v4:port" carry a port; a bare v4 or v6 address gets 7072.
  const bool bracketed = hostport.front() == '[';
  const size_t colons = static_cast<size_t>(std::count(hostport.begin(), hostport.end(), ':'));
  const bool has_port = bracketed ? hostport.find("]:") != std::string::npos : colons == 1;
  if (!has_port) {
    if (!bracketed && colons > 1) hostport = "[" + hostport + "]";
    hostport += ":" + std::string(kDefaultLookupPort);
  }
  // A name with several addresses is a handler per address; the client fails over.
  absl::StatusOr<std::vector<SocketAddress>> addresses = SocketAddress::ParseAll(hostport, 1);
  if (!addresses.ok())
    return absl::InvalidArgumentError(quoted + std::string(MessageOf(addresses.status())));
  for (char c : h.path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(quoted + "the path has a space or control character");
    }
  }
  std::vector<LookupHandler> out;
  for (const SocketAddress& a : *addresses) {
    out.push_back(h);
    out.back().address = a;
  }
  return out;
}

void RegisterRouteConfig(ConfigSchema* schema) {
  // [memcache] first: [throttle] checks that it exists.
  schema->AddSection(std::string(kMemcacheTable), &ReadMemcache);
  schema->AddSection(std::string(kLookupTable), &ReadLookup);
  schema->AddSection(std::string(kThrottleTable), &ReadThrottle);
}

}  // namespace ringproxy
