#include "proto/http_config.h"

#include <memory>
#include <string>

#include "core/status_util.h"
#include "route/config.h"
#include "tls/config.h"

namespace ringproxy {

ExtensionPtr ReadHttpListener(ConfigTable& t, const Config& so_far, bool https) {
  auto s = std::make_shared<HttpListenerSettings>();
  s->https = https;
  if (!t.Has("upstream")) t.Error("upstream", "required key is missing");
  if (https && !t.Has(kTlsTable)) {
    t.Fail("an https listener needs a [listener.tls] table (its certificates)");
  }
  if (!https && t.Has(kTlsTable)) {
    t.Error(kTlsTable, "TLS on an HTTP listener is protocol = \"https\"");
  }
  if (t.Has(kUpstreamTlsTable)) {
    t.Error(kUpstreamTlsTable, "an http listener takes TLS to its upstream from [upstream.tls]");
  }
  int64_t n = static_cast<int64_t>(s->limits.head_bytes_max);
  t.Int("header_max_bytes", &n, 256, 1 << 20);
  s->limits.head_bytes_max = static_cast<size_t>(n);
  n = static_cast<int64_t>(s->limits.line_bytes_max);
  t.Int("line_max_bytes", &n, 64, 1 << 20);
  s->limits.line_bytes_max = static_cast<size_t>(n);
  n = static_cast<int64_t>(s->limits.fields_max);
  t.Int("header_max_fields", &n, 1, 10'000);
  s->limits.fields_max = static_cast<size_t>(n);
  t.Int("header_timeout_ms", &s->header_timeout_ms, 1, 3'600'000);
  t.Int("keepalive_timeout_ms", &s->keepalive_timeout_ms, 1, 3'600'000);
  t.Int("body_timeout_ms", &s->body_timeout_ms, 1, 3'600'000);
  t.Int("upstream_timeout_ms", &s->upstream_timeout_ms, 1, 86'400'000);
  t.Int("max_requests", &s->max_requests, 1, 1'000'000'000);
  n = static_cast<int64_t>(s->max_body_bytes);
  t.Int("max_body_bytes", &n, 0, INT64_MAX);
  s->max_body_bytes = static_cast<uint64_t>(n);
  t.Int("upstream_keepalive", &s->upstream_keepalive, 0, 100'000);
  t.Int("upstream_idle_timeout_ms", &s->upstream_idle_timeout_ms, 1, 3'600'000);
  t.Bool("request_id", &s->request_id);
  t.Bool("route_by_user", &s->route_by_user);
  t.Bool("admin_console", &s->admin_console);
  if (s->admin_console && !s->route_by_user) {
    t.Error("admin_console", "routes by the admin token: needs route_by_user = true");
  }
  if (s->route_by_user && so_far.sections.Find(kLookupTable) == nullptr) {
    t.Error("route_by_user", "needs a [lookup] section (the route lookup service)");
  }
  std::vector<std::string> trusted;
  t.StringList("trusted_proxies", &trusted);
  for (const std::string& text : trusted) {
    absl::StatusOr<Cidr> cidr = Cidr::Parse(text);
    if (!cidr.ok()) {
      t.Error("trusted_proxies", MessageOf(cidr.status()));
      continue;
    }
    s->trusted_proxies.push_back(*cidr);
  }
  return s;
}

}  // namespace ringproxy
