// The POP3 session before login (RFC 1939 AUTHORIZATION state, RFC 2449 CAPA, RFC 5034
// AUTH, RFC 2595 STLS; spec §4.3): greeting, CAPA, USER/PASS, AUTH PLAIN and LOGIN,
// NOOP, QUIT and STLS, until the client has given credentials (or left). Lines are cut
// by a BoundedReader; the STLS handshake is the caller's, through the upgrader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/byte_stream.h"
#include "core/task.h"
#include "proto/mail_login.h"

namespace ringproxy::pop3 {

enum class StlsMode : uint8_t { kOff, kOn, kOnly };

struct PreauthSettings {
  std::string greeting = "POP3 ready";  // after "+OK "
  // zimbraReverseProxyPop3EnabledCapability's default; SASL, STLS and USER by state.
  std::vector<std::string> capabilities = {"TOP", "UIDL", "EXPIRE 31 USER", "XOIP"};
  StlsMode stls = StlsMode::kOnly;
  bool auth_plain = true;
  bool auth_login = true;
  bool allow_impersonation = false;
  size_t line_bytes_max = 16384;  // Zimbra's pop3/imap_client_buffer: 4 pages
  size_t login_bytes_max = 256;
  size_t password_bytes_max = 1024;
  size_t bad_commands_max = 10;
  int64_t idle_timeout_ms = 60'000;
  int64_t send_timeout_ms = 60'000;
};

// The greeting line, and the line that ends a session idle past the pre-auth timeout
// (see imap::GreetingLine).
std::string GreetingLine(const PreauthSettings& settings);
std::string_view AutologoutLine();

// `who` names the session in the log's line for each refused command and login.
Task<mail::PreauthEnd> RunPreauth(ByteStream** stream, const PreauthSettings* settings, bool tls,
                                  mail::TlsUpgrader* upgrader, mail::Credentials* credentials,
                                  bool greet = true, mail::SessionName who = {});

}  // namespace ringproxy::pop3
