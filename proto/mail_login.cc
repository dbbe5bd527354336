#include "proto/mail_login.h"

#include "core/log.h"

namespace ringproxy::mail {

std::string_view PreauthEndName(PreauthEnd e) {
  switch (e) {
    case PreauthEnd::kCredentials:
      return "credentials";
    case PreauthEnd::kLogout:
      return "logout";
    case PreauthEnd::kClientClosed:
      return "client closed";
    case PreauthEnd::kTimeout:
      return "timeout";
    case PreauthEnd::kTooManyErrors:
      return "too many invalid commands";
    case PreauthEnd::kLineTooLong:
      return "line too long";
    case PreauthEnd::kTlsFailed:
      return "STARTTLS handshake failed";
    case PreauthEnd::kStreamError:
      return "stream error";
    case PreauthEnd::kStopped:
      return "stopped";
  }
  return "unknown";
}

std::string_view UpstreamLoginStatusName(UpstreamLoginStatus s) {
  switch (s) {
    case UpstreamLoginStatus::kOk:
      return "ok";
    case UpstreamLoginStatus::kRefused:
      return "refused";
    case UpstreamLoginStatus::kBadGreeting:
      return "bad greeting";
    case UpstreamLoginStatus::kIdFailed:
      return "ID refused";
    case UpstreamLoginStatus::kLoginDisabled:
      return "the server takes no password without TLS (LOGINDISABLED)";
    case UpstreamLoginStatus::kProtocolError:
      return "protocol error";
    case UpstreamLoginStatus::kTimeout:
      return "timeout";
    case UpstreamLoginStatus::kClosed:
      return "closed";
    case UpstreamLoginStatus::kStreamError:
      return "stream error";
    case UpstreamLoginStatus::kStopped:
      return "stopped";
  }
  return "unknown";
}

bool HasControl(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

void LogRefusedCommand(const SessionName& who, std::string_view verb, std::string_view text) {
  if (who.peer != nullptr) {
    RP_LOG(kInfo, "{}: client {}: {} {}", who.listener, who.peer->ToString(), verb, text);
  }
}

void LogRefusedLogin(const SessionName& who, std::string_view why) {
  if (who.peer != nullptr) {
    RP_LOG(kInfo, "{}: client {}: login refused: {}", who.listener, who.peer->ToString(), why);
  }
}

namespace {

// NUL, CR and LF cannot reach a mailbox server as typed: an IMAP literal holds no NUL,
// a POP3 line ends at CR LF.
bool PasswordFits(std::string_view password, const LoginLimits& limits) {
  return password.size() <= limits.password_bytes_max &&
         password.find_first_of(std::string_view("\0\r\n", 3)) == std::string_view::npos;
}

}  // namespace

bool LoginFits(std::string_view user, std::string_view password, const LoginLimits& limits) {
  return !user.empty() && user.size() <= limits.login_bytes_max && !HasControl(user) &&
         PasswordFits(password, limits);
}

bool AcceptPlain(std::string_view message, const LoginLimits& limits, bool allow_impersonation,
                 Credentials* out) {
  sasl::PlainCredentials pc;
  sasl::PlainLimits plain_limits{limits.login_bytes_max, limits.password_bytes_max};
  if (sasl::ParsePlainMessage(message, plain_limits, &pc) != sasl::PlainError::kNone) return false;
  const bool impersonates = !pc.authzid.empty() && pc.authzid != pc.authcid;
  if (HasControl(pc.authcid) || HasControl(pc.authzid) || !PasswordFits(pc.password, limits) ||
      (impersonates && !allow_impersonation)) {
    return false;
  }
  out->mechanism = Mechanism::kAuthenticatePlain;
  out->user = std::move(pc.authcid);
  out->authzid = impersonates ? std::move(pc.authzid) : std::string();
  out->password = std::move(pc.password);
  return true;
}

UpstreamLoginStatus UpstreamStatusOf(ReadStatus s) {
  switch (s) {
    case ReadStatus::kEof:
      return UpstreamLoginStatus::kClosed;
    case ReadStatus::kTimeout:
      return UpstreamLoginStatus::kTimeout;
    case ReadStatus::kStopped:
      return UpstreamLoginStatus::kStopped;
    case ReadStatus::kTooLong:
    case ReadStatus::kBadLineEnding:
      return UpstreamLoginStatus::kProtocolError;
    case ReadStatus::kOk:
    case ReadStatus::kError:
      break;
  }
  return UpstreamLoginStatus::kStreamError;
}

std::string UpstreamPlainResponse(const Credentials& c, std::string_view login,
                                  std::string_view authzid_login) {
  std::string response;
  if (!authzid_login.empty()) {
    sasl::WritePlain(authzid_login, c.user, c.password, &response);
  } else {
    sasl::WritePlain("", login, c.password, &response);
  }
  return response;
}

Task<IoResult> ReplyBuffer::Flush(ByteStream* stream, int64_t timeout_ms) {
  if (out_.empty()) co_return IoResult{0};
  std::string data;
  data.swap(out_);
  const Deadline deadline = Deadline::AfterMs(timeout_ms);
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data.data()), data.size());
  IoResult w = co_await WriteAll(stream, bytes, deadline);
  co_return w;
}

}  // namespace ringproxy::mail
