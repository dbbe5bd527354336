// What the TLS layer is told by the config: plain structs, no wolfSSL types, so the
// config reader (core/, proto/) can fill them without wolfSSL's headers and macros.
// The config reader maps TOML keys onto these; the Create functions in
// tls/server_context.h, tls/client_context.h and tls/ticket_keys.h validate them and
// return absl::Status errors that name the file and what is wrong with it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ringproxy {

// One TLS listener (downstream side).
struct TlsServerSettings {
  // The default pair: PEM certificate chain (leaf first) and its private key. Any key
  // type. Required unless strict_sni is on. Read, parsed and checked at Create.
  std::string certificate;
  std::string key;
  // Optional second default pair with an RSA key, served to clients that cannot use the
  // first one (which must then be ECDSA). See tls/client_hello.h for how we choose.
  std::string certificate_rsa;
  std::string key_rsa;
  // Optional directory of per-name pairs (naming rules in tls/cert_dir.h). Indexed by
  // file name at Create; each pair is read and parsed on first use, per shard.
  std::string certificate_dir;
  // Refuse a name that matches nothing, and a ClientHello without a name, with the
  // fatal unrecognized_name alert. No default pair is needed then.
  bool strict_sni = false;
  // ALPN protocols we select from, in our order of preference. Empty: no ALPN.
  std::vector<std::string> alpn = {"http/1.1"};
  // Fail the handshake (no_application_protocol) when a client offers ALPN and none of
  // its protocols is ours. Off by default: the handshake goes on without ALPN, as
  // nginx and OpenSSL do, so a client with an unusual list still gets through.
  bool alpn_strict = false;
  // For the TLS stream; the context layer only carries it.
  uint32_t handshake_timeout_ms = 10000;
  // Stateless session tickets (TLS 1.2 and 1.3) with the process-wide keys.
  bool session_tickets = true;
  // A name whose pair failed to load is served the default (or refused, strict) and
  // tried again after this long: not on every handshake, nor only at the next reload.
  int64_t retry_failed_name_ms = 10'000;
  // Per-shard bound on cached per-name contexts (LRU). At least 1.
  uint32_t ctx_cache_size = 1000;
};

// One upstream group with TLS (upstream side).
struct TlsClientSettings {
  // Verify the upstream's certificate chain and its name. Needs server_name.
  bool verify = true;
  // PEM file of trusted CAs; empty: the system's store.
  std::string ca_file;
  // Sent as SNI (unless it is an IP address) and checked against the certificate.
  std::string server_name;
  // ALPN protocols offered, in order; empty: none.
  std::vector<std::string> alpn;
  uint32_t handshake_timeout_ms = 10000;
};

// Process-wide TLS settings (InitTicketKeys in tls/ticket_keys.h).
struct TlsGlobalSettings {
  // Ticket keys change every this many seconds; a ticket stays usable for the epoch it
  // was issued in and the next one.
  uint32_t ticket_key_rotation_s = 3600;
  // Optional file with the master secret (48 raw bytes or 96 hex digits), so several
  // processes resume each other's tickets. Empty: a random secret per process.
  std::string ticket_key_file;
};

}  // namespace ringproxy
