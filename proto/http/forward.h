// The heads a proxy sends on (RFC 9110 §7.6, RFC 9112 §6): written from the parsed
// heads of head.h, never copied from the wire, so what one hop accepted is what the
// next hop reads. Hop-by-hop fields are dropped (Connection and every field it names,
// Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Trailer, and Upgrade unless the
// connection becomes a tunnel); the framing is written from what the proxy will send;
// requests carry the client's identity (X-Forwarded-For, X-Real-IP, Forwarded,
// X-Forwarded-Proto, X-Request-ID), whose incoming values are kept only from a trusted
// peer. Expect is not sent on: the proxy answers it (100 Continue, 417). Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/http/head.h"

namespace ringproxy::http {

// A virtual server's header rules for one direction: fields removed by name (any
// case), and fields set (any received field of that name removed, then this one
// written after the end-to-end fields).
struct HeaderRules {
  std::vector<std::string> remove;
  std::vector<std::pair<std::string, std::string>> set;
  bool empty() const { return remove.empty() && set.empty(); }
};

// Fields a header rule may not name: the framing, the hop-by-hop fields and, on
// requests, Host and the identity fields the proxy writes itself.
bool ProxyOwnsField(std::string_view name, bool request);

// Whether the request's Upgrade is tunnelled: WebSocket (RFC 6455) on HTTP/1.1 only.
// Tunnelling any protocol would let h2c carry requests past every check of this proxy
// (h2c smuggling); RFC 9110 §7.8 has Upgrade ignored in HTTP/1.0. Otherwise the
// request stays HTTP and Upgrade is dropped.
bool TunnelsUpgrade(const RequestHead& in);

struct ForwardRequest {
  std::string_view target;          // origin-form, after any rewrite
  std::string_view host;            // the Host to send
  BodyKind body = BodyKind::kNone;  // kNone, kLength or kChunked, as the proxy sends it
  uint64_t content_length = 0;
  bool upgrade = false;              // asks for a tunnel: Upgrade kept, "Connection: upgrade"
  std::string_view client_ip;        // the TCP peer
  bool trusted_peer = false;         // a configured trusted proxy: its forwarding fields are kept
  std::string_view scheme = "http";  // the client's: "http" or "https"
  std::string_view request_id;       // "" for none
  const HeaderRules* rules = nullptr;
};

// The request head for the upstream: "<method> <target> HTTP/1.1", Host, the end-to-end
// fields in their order (not Expect), the rules' fields, the framing and the identity
// fields.
//  - X-Forwarded-For: the trusted peer's list (empty elements left out) with the peer
//    appended; else the peer.
//  - X-Real-IP: from a trusted peer with a list, the last address in it (the client as
//    that proxy saw it); else the peer.
//  - Forwarded: `for=<peer>;proto=<scheme>` appended to a trusted peer's, else alone.
//  - X-Forwarded-Proto: a trusted peer's (its first), else ours.
//  - X-Forwarded-Host, X-Forwarded-Port: a trusted peer's; dropped from any other.
//  - X-Request-ID: ours, replacing any incoming; without one (request_id off) the
//    incoming one goes on.
void WriteRequestHead(const RequestHead& in, const ForwardRequest& f, std::string* out);

// Request ids: 24 hex digits, a 64-bit prefix (random per shard) and a 32-bit count.
// When the count wraps, the prefix steps on through a full-period sequence, so that a
// shard's ids never repeat (at 50 000 requests a second the count wraps in a day).
class RequestIds {
 public:
  explicit RequestIds(uint64_t prefix, uint32_t count = 0) : prefix_(prefix), count_(count) {}
  // Written into `out`, which keeps its capacity from the connection's last request.
  void Next(std::string* out);

 private:
  uint64_t prefix_;
  uint32_t count_;
};

struct ForwardResponse {
  BodyKind body = BodyKind::kNone;  // as the proxy sends it to the client
  uint64_t content_length = 0;
  int client_version_minor = 1;  // an HTTP/1.0 client needs "Connection: keep-alive"
  bool keep_alive = true;        // the client connection stays open after this response
  bool upgrade = false;          // a 101 that makes the connection a tunnel
  // A 1xx before the final response: its fields minus hop-by-hop and removed ones; no
  // framing, no Connection, no added fields (they belong to the final response).
  bool interim = false;
  const HeaderRules* rules = nullptr;
  // HTTPS listeners (Zimbra, spec §5.2): a Location over http naming the client's Host,
  // or the upstream server (`upstream`, "host:port", or the Host's name with that port),
  // becomes https://<https_host>/... Empty: Locations pass as they are.
  std::string_view https_host;
  std::string_view upstream;
  // Sent as Date when the upstream's response has none (RFC 9110 §6.6.1); empty: none.
  std::string_view date;
};

// "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7) for a time in seconds since 1970.
std::string FormatHttpDate(int64_t unix_seconds);

// The Location to send for `location` under the rule above (unchanged when it does
// not apply).
std::string RewriteLocation(std::string_view location, std::string_view https_host,
                            std::string_view upstream);

// The response head for the client: "HTTP/1.1 <status> <reason>", the end-to-end
// fields in their order, the framing (a kNone response keeps the upstream's
// Content-Length, written once: a HEAD's or 304's describes the representation; a
// 204's is dropped), Connection, and f.date when the upstream sent no Date.
void WriteResponseHead(const ResponseHead& in, const ForwardResponse& f, std::string* out);

}  // namespace ringproxy::http
