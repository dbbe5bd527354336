// The IMAP session before login (RFC 9051 not-authenticated state, spec §4.2): greeting,
// CAPABILITY, NOOP, LOGOUT, ID, STARTTLS, LOGIN and AUTHENTICATE PLAIN / LOGIN, until
// the client has given credentials (or left). It talks to a ByteStream only; the
// STARTTLS handshake is the caller's (an upgrader turns the plain stream into a TLS one)
// and so are the route lookup and the upstream login that follow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/byte_stream.h"
#include "core/task.h"
#include "proto/imap/command_parser.h"
#include "proto/mail_login.h"

namespace ringproxy::imap {

enum class StartTlsMode : uint8_t {
  kOff,   // no STARTTLS
  kOn,    // offered; cleartext logins allowed
  kOnly,  // offered; cleartext logins refused until TLS (Zimbra's default)
};

struct PreauthSettings {
  std::string greeting = "IMAP4rev1 proxy server ready";  // after "* OK "
  // zimbraReverseProxyImapEnabledCapability's default; AUTH=, STARTTLS and
  // LOGINDISABLED are added by state.
  std::vector<std::string> capabilities = {
      "IMAP4rev1",     "ACL",         "BINARY",   "CATENATE",
      "CHILDREN",      "CONDSTORE",   "ENABLE",   "ESEARCH",
      "ESORT",         "I18NLEVEL=1", "ID",       "IDLE",
      "LIST-EXTENDED", "LIST-STATUS", "LITERAL+", "MULTIAPPEND",
      "NAMESPACE",     "QRESYNC",     "QUOTA",    "RIGHTS=ektx",
      "SASL-IR",       "SEARCHRES",   "SORT",     "THREAD=ORDEREDSUBJECT",
      "UIDPLUS",       "UNSELECT",    "WITHIN",   "XLIST"};
  StartTlsMode starttls = StartTlsMode::kOnly;
  bool auth_plain = true;
  bool auth_login = true;
  bool allow_impersonation = false;  // an authzid other than the authcid
  // What "* ID" answers (pairs); empty: "* ID NIL".
  std::vector<std::pair<std::string, std::string>> id_reply = {{"NAME", "ringproxy"}};
  CommandLimits limits;
  size_t login_bytes_max = 256;
  size_t password_bytes_max = 1024;
  size_t bad_commands_max = 10;  // then BYE and close
  int64_t idle_timeout_ms = 60'000;
  int64_t send_timeout_ms = 60'000;
};

using mail::Credentials;
using mail::Mechanism;
using mail::TlsUpgrader;

using mail::PreauthEnd;

// The greeting line, and the line that ends a session idle past the pre-auth timeout:
// a parked connection (greeted, waiting for its first command) says them without a
// dialogue.
std::string GreetingLine(const PreauthSettings& settings);
std::string_view AutologoutLine();

// Runs the dialogue on *stream (without the greeting when `greet` is false: the
// connection was greeted while parked, or its first login failed) (replaced by the TLS stream after
// STARTTLS). `tls` says whether the stream is already TLS (an IMAPS listener); `upgrader` may be
// null when STARTTLS cannot be offered.
// `who` names the session in the log's line for each refused command and login.
Task<PreauthEnd> RunPreauth(ByteStream** stream, const PreauthSettings* settings, bool tls,
                            TlsUpgrader* upgrader, Credentials* credentials, bool greet = true,
                            mail::SessionName who = {});

}  // namespace ringproxy::imap
