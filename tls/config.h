// The TLS settings of the config file, read by the TLS module itself (core/ knows
// nothing of TLS): the [tls] section (ticket keys), [listener.tls] on any listener
// (termination: certificates, SNI, ALPN) and [upstream.tls] on an upstream group (TLS
// to the upstream). Reading a table builds the immutable context it describes, so a
// missing or broken certificate is a config error with the file and line of the table.
// Every key is in docs/configuration.md.
#pragma once

#include <memory>

#include "core/config.h"
#include "tls/client_context.h"
#include "tls/server_context.h"
#include "tls/settings.h"

namespace ringproxy {

inline constexpr std::string_view kTlsTable = "tls";
// [listener.upstream_tls]: TLS to the upstreams of a listener that picks its upstream per
// session (mail: the route of each login), with the keys of [upstream.tls].
inline constexpr std::string_view kUpstreamTlsTable = "upstream_tls";

// The ALPN names of the HTTP the proxy speaks (HTTP/1.x): all that an HTTP listener, or
// a group it sends requests to, may offer.
inline bool IsHttp1Alpn(std::string_view name) { return name == "http/1.1" || name == "http/1.0"; }

struct TlsGlobalConfig : ConfigExtension {
  TlsGlobalSettings settings;
};

struct TlsListenerConfig : ConfigExtension {
  std::shared_ptr<const TlsServerContext> context;
  uint32_t handshake_timeout_ms = 10000;
};

struct TlsUpstreamConfig : ConfigExtension {
  std::shared_ptr<const TlsClientContext> context;
  uint32_t handshake_timeout_ms = 10000;
};

void RegisterTlsConfig(ConfigSchema* schema);

}  // namespace ringproxy
