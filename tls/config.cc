#include "tls/config.h"

#include "core/log.h"
#include "core/status_util.h"
#include "fmt/format.h"
#include "tls/ticket_keys.h"

namespace ringproxy {
namespace {

ExtensionPtr ReadGlobal(ConfigTable& t, const Config& /*so_far*/) {
  auto c = std::make_shared<TlsGlobalConfig>();
  t.Int("ticket_key_rotation_s", &c->settings.ticket_key_rotation_s, 60, 7 * 86400);
  t.String("ticket_key_file", &c->settings.ticket_key_file);
  return c;
}

// The process-wide ticket keys come from the first config read; changing them takes a
// restart (a reload must not invalidate every ticket out there by surprise).
bool EnsureTicketKeys(ConfigTable& t, const Config& so_far) {
  TlsGlobalSettings settings;
  if (const auto* g = so_far.sections.Get<TlsGlobalConfig>(kTlsTable)) settings = g->settings;
  std::shared_ptr<const TicketKeys> keys = ProcessTicketKeys();
  absl::Status s = InitTicketKeys(settings);  // the same settings again: nothing to do
  if (keys != nullptr) {
    if (!s.ok()) {
      RP_LOG(kWarn, "tls: {}; keeping the keys of the start ({} s rotation)", MessageOf(s),
             keys->rotation_s());
    }
    return true;
  }
  if (!s.ok()) {
    t.Fail(fmt::format("session ticket keys (tls.ticket_key_file, tls.ticket_key_rotation_s): {}",
                       MessageOf(s)));
    return false;
  }
  return true;
}

// The ALPN list a listener offers unless `alpn` says otherwise: its own protocol's IANA
// name. A listener that agreed to http/1.1 without speaking it would tell a browser sent
// to it (the ALPACA attack) that it does; a `tcp` listener relays whatever its upstream
// speaks, so it names nothing, as nginx's stream module.
std::vector<std::string> DefaultAlpn(std::string_view protocol) {
  if (protocol == "imap" || protocol == "imaps") return {"imap"};
  if (protocol == "pop3" || protocol == "pop3s") return {"pop3"};
  if (protocol == "http" || protocol == "https") return {"http/1.1"};
  return {};
}

// An HTTP listener speaks HTTP/1.x only: offering "h2" would have every browser pick
// it, and every request fail.
bool HttpAlpnOk(ConfigTable& t, std::string_view protocol, const std::vector<std::string>& alpn) {
  if (protocol != "http" && protocol != "https") return true;
  for (const std::string& name : alpn) {
    if (!IsHttp1Alpn(name)) {
      t.Error("alpn", fmt::format("'{}': an {} listener speaks only http/1.1 and http/1.0", name,
                                  protocol));
      return false;
    }
  }
  return true;
}

ExtensionPtr ReadListenerTls(ConfigTable& t, const Config& so_far) {
  TlsServerSettings s;
  // The listener this table belongs to is the last one read so far (its protocol is
  // read before its tables).
  const std::string_view protocol =
      so_far.listeners.empty() ? std::string_view() : so_far.listeners.back().protocol;
  if (!so_far.listeners.empty()) s.alpn = DefaultAlpn(protocol);
  t.String("certificate", &s.certificate);
  t.String("key", &s.key);
  t.String("certificate_rsa", &s.certificate_rsa);
  t.String("key_rsa", &s.key_rsa);
  t.String("certificate_dir", &s.certificate_dir);
  t.Bool("strict_sni", &s.strict_sni);
  t.StringList("alpn", &s.alpn);
  t.Bool("alpn_strict", &s.alpn_strict);
  t.Int("handshake_timeout_ms", &s.handshake_timeout_ms, 1, 3'600'000);
  t.Bool("session_tickets", &s.session_tickets);
  t.Int("ctx_cache_size", &s.ctx_cache_size, 1, 1'000'000);
  if (!HttpAlpnOk(t, protocol, s.alpn)) return nullptr;  // after every key is read
  if (s.session_tickets && !EnsureTicketKeys(t, so_far)) return nullptr;
  absl::StatusOr<std::shared_ptr<const TlsServerContext>> context = TlsServerContext::Create(s);
  if (!context.ok()) {
    t.Fail(MessageOf(context.status()));
    return nullptr;
  }
  auto c = std::make_shared<TlsListenerConfig>();
  c->context = std::move(*context);
  c->handshake_timeout_ms = s.handshake_timeout_ms;
  return c;
}

ExtensionPtr ReadUpstreamTls(ConfigTable& t, const Config& /*so_far*/) {
  TlsClientSettings s;
  t.Bool("verify", &s.verify);
  t.String("ca_file", &s.ca_file);
  t.String("server_name", &s.server_name);
  t.StringList("alpn", &s.alpn);
  t.Int("handshake_timeout_ms", &s.handshake_timeout_ms, 1, 3'600'000);
  absl::StatusOr<std::shared_ptr<const TlsClientContext>> context = TlsClientContext::Create(s);
  if (!context.ok()) {
    t.Fail(MessageOf(context.status()));
    return nullptr;
  }
  auto c = std::make_shared<TlsUpstreamConfig>();
  c->context = std::move(*context);
  c->handshake_timeout_ms = s.handshake_timeout_ms;
  return c;
}

}  // namespace

void RegisterTlsConfig(ConfigSchema* schema) {
  schema->AddSection(std::string(kTlsTable), &ReadGlobal);
  schema->AddListenerTable(std::string(kTlsTable), &ReadListenerTls);
  schema->AddUpstreamTable(std::string(kTlsTable), &ReadUpstreamTls);
  schema->AddListenerTable(std::string(kUpstreamTlsTable), &ReadUpstreamTls);
}

}  // namespace ringproxy
