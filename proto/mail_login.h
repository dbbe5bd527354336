// What the IMAP and POP3 dialogues before login share: the credentials a client gave,
// and the hook that turns a plain stream into TLS for STARTTLS / STLS.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/bounded_reader.h"
#include "core/byte_stream.h"
#include "core/socket.h"
#include "core/task.h"
#include "proto/sasl/sasl.h"

namespace ringproxy::mail {

enum class Mechanism : uint8_t {
  kLogin,              // IMAP LOGIN, POP3 USER + PASS
  kAuthenticatePlain,  // SASL PLAIN
  kAuthenticateLogin,  // SASL LOGIN
};

// What the client gave to log in. Holds a password: never logged.
struct Credentials {
  std::string tag;  // IMAP: the command's tag, reused upstream
  Mechanism mechanism = Mechanism::kLogin;
  std::string user;     // the authentication identity, as typed
  std::string authzid;  // PLAIN's authorisation identity when it differs ("" = user)
  std::string password;
  std::string client_name;  // IMAP ID, for the upstream's X-VIA
  std::string client_version;
  // Bytes the client sent after its login command that the dialogue had already read:
  // for the mailbox server once the login succeeded (POP3; IMAP leaves them in the stream).
  std::string pipelined;
};

// Turns the plain stream into a TLS one after the positive answer to STARTTLS / STLS;
// null when the handshake failed.
class TlsUpgrader {
 public:
  virtual ~TlsUpgrader() = default;
  virtual Task<ByteStream*> Upgrade(ByteStream* plain) = 0;
};

enum class PreauthEnd : uint8_t {
  kCredentials,  // *credentials is filled: resolve the route and log in upstream
  kLogout,
  kClientClosed,
  kTimeout,        // BYE / -ERR sent
  kTooManyErrors,  // BYE / -ERR sent
  kLineTooLong,    // BAD / -ERR sent
  kTlsFailed,      // the STARTTLS / STLS handshake failed
  kStreamError,
  kStopped,
};

std::string_view PreauthEndName(PreauthEnd e);

bool HasControl(std::string_view s);

// How a dialogue's log lines name its session; formatted only when a line is written.
struct SessionName {
  std::string_view listener;
  const SocketAddress* peer = nullptr;  // null: no lines (the dialogue tests)
};
// A command refused before login: `verb` ("BAD", "-ERR") and `text` are the proxy's
// own reply, never the client's bytes.
void LogRefusedCommand(const SessionName& who, std::string_view verb, std::string_view text);
// Credentials refused before any lookup (never the credentials themselves).
void LogRefusedLogin(const SessionName& who, std::string_view why);

// Zimbra's limits before any lookup (spec §4.1): longer is "login failed", unasked; so is
// a control character in the user name, or NUL, CR or LF in the password.
struct LoginLimits {
  size_t login_bytes_max = 256;
  size_t password_bytes_max = 1024;
};
bool LoginFits(std::string_view user, std::string_view password, const LoginLimits& limits);

// A decoded SASL PLAIN message into *out (mechanism, user, authzid when it differs from
// the user, password); false when it must be refused: malformed, over the limits, a
// control character in a name, NUL, CR or LF in the password, or another authorisation
// identity without permission.
bool AcceptPlain(std::string_view message, const LoginLimits& limits, bool allow_impersonation,
                 Credentials* out);

// How logging in on the mailbox server went (IMAP and POP3).
enum class UpstreamLoginStatus : uint8_t {
  kOk,             // reply_line (IMAP tagged OK, POP3 +OK) goes to the client, then relay
  kRefused,        // the login refused: reply_line is the upstream's text
  kBadGreeting,    // not "* OK" / "+OK"
  kIdFailed,       // IMAP ID or POP3 XOIP refused
  kLoginDisabled,  // IMAP LOGINDISABLED: the server takes no password on this link
  kProtocolError,
  kTimeout,
  kClosed,
  kStreamError,
  kStopped,
};

std::string_view UpstreamLoginStatusName(UpstreamLoginStatus s);

struct UpstreamLoginOutcome {
  UpstreamLoginStatus status = UpstreamLoginStatus::kStreamError;
  std::string reply_line;  // the final reply, with its CRLF
  std::string alerts;      // IMAP: untagged "* OK [ALERT] ..." lines, with CRLF, in order
};

// Why no line came from the upstream, as a login status (never kOk).
UpstreamLoginStatus UpstreamStatusOf(ReadStatus s);

// The base64 PLAIN response for the upstream: with another authorisation identity, its
// canonical account as authzid and the client's authcid (as Zimbra does); otherwise an
// empty authzid and the canonical account.
std::string UpstreamPlainResponse(const Credentials& c, std::string_view login,
                                  std::string_view authzid_login);

// Replies collected during one command and written at once (one write per command).
class ReplyBuffer {
 public:
  void Add(std::string_view text) { out_.append(text); }
  // Writes and empties the buffer; what the write returned.
  Task<IoResult> Flush(ByteStream* stream, int64_t timeout_ms);

 private:
  std::string out_;
};

}  // namespace ringproxy::mail
