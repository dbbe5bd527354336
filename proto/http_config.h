// The HTTP listeners' settings: `protocol = "http"` (plain) and `"https"` (TLS from
// the first byte, with [listener.tls]), read by proto/http_config.cc into
// HttpListenerSettings. docs/configuration.md lists every key.
#pragma once

#include <cstdint>
#include <vector>

#include "core/config.h"
#include "proto/http/forward.h"
#include "proto/http/head.h"
#include "proto/http/location.h"
#include "proto/http/mail_mode.h"
#include "proto/http/rewrite.h"
#include "proto/http/virtual_host.h"
#include "route/throttle.h"

namespace ringproxy {

// [[listener.server.location]] (or [[listener.location]]): what differs for requests
// whose path it matches. -1: as the server / listener says.
struct HttpLocation {
  std::string name;  // "prefix /service/", for logs
  int upstream_index = -1;
  int64_t upstream_timeout_ms = -1;
  int route_by_user = -1;
  int redirect_status = 0;  // 301, 302, 307, 308: answered by the proxy
  std::string redirect_to;  // with $scheme, $host and $request_uri expanded
  // "prefix /docs/" with node_from_path: the path segment after the prefix names the
  // group's server (its id=) that must take the request.
  std::string prefix;
  bool node_from_path = false;
  // Zimbra's /zx/ upstream (zmauth_zx): routed by the user's token, its lookup a zx one
  // (the mailbox's zx port).
  bool zx = false;
};

// [[listener.server]]: a virtual server, chosen by Host. Its rewrites run before the
// location is chosen; its header rules apply to what is proxied (not to the proxy's
// own answers).
struct HttpVirtualServer {
  std::vector<std::string> names;
  int upstream_index = -1;  // -1: the listener's group
  http::RewriteRules rewrites;
  http::HeaderRules request_headers;
  http::HeaderRules response_headers;
  std::vector<HttpLocation> locations;
  http::LocationMatcher matcher;
};

struct HttpListenerSettings : ConfigExtension {
  bool https = false;
  http::Limits limits;                        // request heads: 414 / 431 beyond
  int64_t header_timeout_ms = 60'000;         // a request head, from its first byte (408)
  int64_t keepalive_timeout_ms = 75'000;      // an idle client connection between requests
  int64_t body_timeout_ms = 60'000;           // between two reads of a request body (408)
  int64_t upstream_timeout_ms = 60'000;       // the response head, and between body reads (504)
  int max_requests = 1000;                    // per client connection, then Connection: close
  uint64_t max_body_bytes = 0;                // a request body beyond: 413 (0: no limit)
  int upstream_keepalive = 32;                // idle connections kept per upstream server and shard
  int64_t upstream_idle_timeout_ms = 60'000;  // an idle pooled upstream connection is closed
  std::vector<Cidr> trusted_proxies;          // peers whose X-Forwarded-For / Forwarded are kept
  bool request_id = true;                     // X-Request-ID sent upstream and logged
  // Per-user routing through [lookup] (spec §5.1): the user's mailbox server when it is
  // a member of the group, else the balancer. `admin_console`: by the admin token only.
  bool route_by_user = false;
  bool admin_console = false;
  // Virtual servers (none: every request is the listener's); with servers, a Host no
  // server names goes to the default one, or gets 400 with strict_hosts.
  std::vector<HttpVirtualServer> servers;
  http::VirtualHostIndex hosts;
  bool strict_hosts = false;
  // Zimbra's web mail mode: requests sent to the other scheme's listener, at this port.
  http::MailMode mail_mode = http::MailMode::kBoth;
  int mail_mode_port = 0;  // 0: 443 from http, 80 from https
  // The proxy's own 502, 503 and 504: a configured page (HTML) instead of the short
  // text, or a redirect to error_handler_url?err=<status>&up=<upstream> (Zimbra's).
  std::string error_pages[3];
  std::string error_handler_url;
  // The configured page for `status`, or nullptr.
  const std::string* ErrorPage(int status) const {
    return status >= 502 && status <= 504 && !error_pages[status - 502].empty()
               ? &error_pages[status - 502]
               : nullptr;
  }
};

// protocol = "http" and "https": require `upstream`.
ExtensionPtr ReadHttpListener(ConfigTable& t, const Config& so_far, bool https);

}  // namespace ringproxy
