#include "proto/pop3/preauth.h"

#include <optional>

#include "core/ascii.h"
#include "core/bounded_reader.h"
#include "proto/pop3/command.h"
#include "proto/sasl/sasl.h"

namespace ringproxy::pop3 {

namespace {

using mail::Credentials;
using mail::Mechanism;
using mail::PreauthEnd;

class Dialogue {
 public:
  Dialogue(mail::SessionName who, ByteStream** stream, const PreauthSettings* settings, bool tls,
           mail::TlsUpgrader* upgrader, Credentials* credentials)
      : who_(who),
        stream_(stream),
        settings_(*settings),
        tls_(tls),
        upgrader_(upgrader),
        credentials_(credentials),
        reader_(*stream, settings->line_bytes_max, LineEnding::kLf) {}

  Task<PreauthEnd> Run(bool greet);

 private:
  // Replies collect in out_ and go out in one write per command (core/task.h rules:
  // named locals for awaited results and arguments, no `co_return co_await`).
  void Reply(std::string_view text) { out_.Add(text); }
  Task<bool> FlushOut();
  // kOk: *line holds the next line; otherwise *end says how the dialogue ends (and
  // what to send is in out_).
  Task<bool> NextLine(std::string* line, PreauthEnd* end);
  bool refuse_cleartext() const { return !tls_ && settings_.stls == StlsMode::kOnly; }
  bool stls_offered() const {
    return !tls_ && settings_.stls != StlsMode::kOff && upgrader_ != nullptr;
  }
  std::optional<PreauthEnd> Err(std::string_view text);  // a counted -ERR
  std::string Capabilities() const;
  Task<std::optional<PreauthEnd>> Dispatch(const Command& c);
  std::optional<PreauthEnd> Pass(std::string_view password);
  Task<std::optional<PreauthEnd>> Stls();
  Task<std::optional<PreauthEnd>> Auth(std::string mechanism, std::string initial,
                                       bool has_initial);
  // "+ prompt", then the client's line decoded: kOk, or "*", not base64, or the end.
  enum class ResponseStatus : uint8_t { kOk, kAborted, kNotBase64, kEnded };
  Task<ResponseStatus> Response(std::string prompt, std::string* decoded);
  std::optional<PreauthEnd> AuthFailed(ResponseStatus s);
  mail::LoginLimits limits() const {
    return {settings_.login_bytes_max, settings_.password_bytes_max};
  }
  bool LoginFits(std::string_view user, std::string_view password) const {
    return mail::LoginFits(user, password, limits());
  }

  const mail::SessionName who_;
  ByteStream** stream_;
  const PreauthSettings& settings_;
  bool tls_;
  mail::TlsUpgrader* upgrader_;
  Credentials* credentials_;
  BoundedReader reader_;
  mail::ReplyBuffer out_;
  PreauthEnd end_ = PreauthEnd::kStreamError;
  size_t bad_commands_ = 0;
  std::string user_;  // from USER, waiting for PASS
};

Task<bool> Dialogue::FlushOut() {
  IoResult w = co_await out_.Flush(*stream_, settings_.send_timeout_ms);
  if (w.ok()) co_return true;
  end_ = w.cancelled() ? PreauthEnd::kStopped : PreauthEnd::kStreamError;
  co_return false;
}

Task<bool> Dialogue::NextLine(std::string* line, PreauthEnd* end) {
  std::string_view view;
  const Deadline deadline = Deadline::AfterMs(settings_.idle_timeout_ms);
  ReadStatus s = co_await reader_.ReadLine(deadline, &view);
  switch (s) {
    case ReadStatus::kOk:
      line->assign(view);
      co_return true;
    case ReadStatus::kTooLong:
      Reply("-ERR line too long\r\n");
      *end = PreauthEnd::kLineTooLong;
      break;
    case ReadStatus::kEof:
      *end = PreauthEnd::kClientClosed;
      break;
    case ReadStatus::kTimeout:
      Reply(AutologoutLine());
      *end = PreauthEnd::kTimeout;
      break;
    case ReadStatus::kStopped:
      *end = PreauthEnd::kStopped;
      break;
    case ReadStatus::kBadLineEnding:
    case ReadStatus::kError:
      *end = PreauthEnd::kStreamError;
      break;
  }
  co_return false;
}

std::optional<PreauthEnd> Dialogue::Err(std::string_view text) {
  // A failed command ends a USER's turn (RFC 1939 §7: USER again only after a failed
  // USER or PASS), as nginx goes back to its start state: no PASS after it.
  user_.clear();
  mail::LogRefusedCommand(who_, "-ERR", text);
  Reply("-ERR ");
  Reply(text);
  Reply("\r\n");
  if (++bad_commands_ >= settings_.bad_commands_max) {
    Reply("-ERR too many invalid commands\r\n");
    return PreauthEnd::kTooManyErrors;
  }
  return std::nullopt;
}

std::string Dialogue::Capabilities() const {
  std::string out = "+OK Capability list follows\r\n";
  for (const std::string& c : settings_.capabilities) out += c + "\r\n";
  if (!refuse_cleartext()) {
    out += "USER\r\n";
    if (settings_.auth_plain || settings_.auth_login) {
      out += "SASL";
      if (settings_.auth_plain) out += " PLAIN";
      if (settings_.auth_login) out += " LOGIN";
      out += "\r\n";
    }
  }
  if (stls_offered()) out += "STLS\r\n";
  return out + ".\r\n";
}

Task<PreauthEnd> Dialogue::Run(bool greet) {
  if (greet) Reply(GreetingLine(settings_));
  for (;;) {
    const bool flushed = co_await FlushOut();
    if (!flushed) co_return end_;
    std::string line;
    PreauthEnd end = PreauthEnd::kStreamError;
    const bool got = co_await NextLine(&line, &end);
    if (!got) {
      (void)co_await FlushOut();
      co_return end;
    }
    Command c;
    std::optional<PreauthEnd> done;
    CommandError e = ParseCommand(line, &c);
    if (e != CommandError::kNone) {
      done = Err("invalid command");
    } else {
      std::optional<PreauthEnd> r = co_await Dispatch(c);
      done = r;
    }
    if (done.has_value()) {
      // What the client pipelined behind its login is for the mailbox server.
      if (*done == PreauthEnd::kCredentials) credentials_->pipelined = reader_.Release();
      const bool sent = co_await FlushOut();
      if (!sent && *done != PreauthEnd::kCredentials) co_return end_;
      co_return *done;
    }
  }
}

Task<std::optional<PreauthEnd>> Dialogue::Dispatch(const Command& c) {
  // After USER only PASS, QUIT and the harmless CAPA and NOOP: the name must not
  // outlive an AUTH, another USER or STLS and be logged in with by a later PASS.
  if (!user_.empty() && !c.KeywordIs("PASS") && !c.KeywordIs("QUIT") && !c.KeywordIs("CAPA") &&
      !c.KeywordIs("NOOP")) {
    co_return Err("invalid command");
  }
  if (c.KeywordIs("CAPA") || c.KeywordIs("NOOP") || c.KeywordIs("QUIT") || c.KeywordIs("STLS")) {
    if (c.arg_count != 0) co_return Err("no arguments expected");
    if (c.KeywordIs("CAPA")) Reply(Capabilities());
    if (c.KeywordIs("NOOP")) Reply("+OK\r\n");
    if (c.KeywordIs("QUIT")) {
      Reply("+OK bye\r\n");
      co_return PreauthEnd::kLogout;
    }
    if (c.KeywordIs("STLS")) {
      std::optional<PreauthEnd> r = co_await Stls();
      co_return r;
    }
    co_return std::nullopt;
  }
  if (c.KeywordIs("USER")) {
    if (c.arg_count == 0) co_return Err("USER takes a name");
    if (refuse_cleartext()) co_return Err("cleartext logins disabled");
    // The name is the rest of the line, spaces inside it included, as nginx and Zimbra
    // take it (a name may hold a space; the lookup escapes it).
    std::string_view name = c.rest;
    name.remove_prefix(name.find_first_not_of(' '));
    name.remove_suffix(name.size() - 1 - name.find_last_not_of(' '));
    if (!LoginFits(name, "")) {
      mail::LogRefusedLogin(who_, "USER: a name too long or with control bytes");
      Reply("-ERR invalid username/password\r\n");
      co_return std::nullopt;
    }
    user_ = name;
    Reply("+OK\r\n");
    co_return std::nullopt;
  }
  if (c.KeywordIs("PASS")) {
    if (user_.empty()) co_return Err("USER first");
    if (c.arg_count == 0) co_return Err("PASS takes a password");
    co_return Pass(c.rest);
  }
  if (c.KeywordIs("AUTH")) {
    if (c.arg_count == 0) {
      // The pre-RFC 5034 listing (nginx answers it too): the mechanisms CAPA's SASL
      // line offers, none while cleartext logins are refused.
      std::string out = "+OK methods supported:\r\n";
      if (!refuse_cleartext()) {
        if (settings_.auth_plain) out += "PLAIN\r\n";
        if (settings_.auth_login) out += "LOGIN\r\n";
      }
      Reply(out + ".\r\n");
      co_return std::nullopt;
    }
    if (c.more_args) co_return Err("AUTH takes a mechanism");
    std::string mechanism(c.args[0]);
    std::string initial(c.arg_count == 2 ? c.args[1] : std::string_view());
    std::optional<PreauthEnd> r = co_await Auth(mechanism, initial, c.arg_count == 2);
    co_return r;
  }
  co_return Err("invalid command");
}

std::optional<PreauthEnd> Dialogue::Pass(std::string_view password) {
  std::string user = std::move(user_);
  user_.clear();
  if (!LoginFits(user, password)) {
    mail::LogRefusedLogin(who_, "PASS: a password too long or with control bytes");
    Reply("-ERR invalid username/password\r\n");
    return std::nullopt;
  }
  *credentials_ = Credentials{};
  credentials_->mechanism = Mechanism::kLogin;
  credentials_->user = std::move(user);
  credentials_->password = password;
  return PreauthEnd::kCredentials;
}

Task<std::optional<PreauthEnd>> Dialogue::Stls() {
  if (tls_) co_return Err("TLS already active");
  if (!stls_offered()) co_return Err("STLS not available");
  // Plaintext pipelined behind STLS is dropped, never answered inside TLS.
  reader_.DiscardBuffered();
  Reply("+OK begin TLS negotiation\r\n");
  const bool sent = co_await FlushOut();
  if (!sent) co_return end_;
  ByteStream* plain = *stream_;
  ByteStream* secured = co_await upgrader_->Upgrade(plain);
  if (secured == nullptr) co_return PreauthEnd::kTlsFailed;
  *stream_ = secured;
  reader_.Reset(secured);
  tls_ = true;
  user_.clear();
  co_return std::nullopt;
}

Task<Dialogue::ResponseStatus> Dialogue::Response(std::string prompt, std::string* decoded) {
  Reply("+ " + prompt + "\r\n");
  const bool sent = co_await FlushOut();
  if (!sent) co_return ResponseStatus::kEnded;
  std::string line;
  const bool got = co_await NextLine(&line, &end_);
  if (!got) co_return ResponseStatus::kEnded;
  if (line == "*") co_return ResponseStatus::kAborted;
  decoded->clear();
  if (!sasl::Base64Decode(line, decoded)) co_return ResponseStatus::kNotBase64;
  co_return ResponseStatus::kOk;
}

std::optional<PreauthEnd> Dialogue::AuthFailed(ResponseStatus s) {
  switch (s) {
    case ResponseStatus::kAborted:
      return Err("authentication aborted");
    case ResponseStatus::kNotBase64:
      return Err("invalid base64");
    case ResponseStatus::kEnded:
    case ResponseStatus::kOk:
      break;
  }
  return end_;
}

Task<std::optional<PreauthEnd>> Dialogue::Auth(std::string mechanism, std::string initial,
                                               bool has_initial) {
  const bool plain = EqualsIgnoreCase(mechanism, "PLAIN") && settings_.auth_plain;
  const bool login = EqualsIgnoreCase(mechanism, "LOGIN") && settings_.auth_login;
  if (!plain && !login) co_return Err("mechanism not supported");
  if (refuse_cleartext()) co_return Err("cleartext logins disabled");
  std::string first;
  if (has_initial && initial != "=" && !sasl::Base64Decode(initial, &first)) {
    co_return Err("invalid base64");
  }
  Credentials c;
  if (plain) {
    std::string message = std::move(first);
    if (!has_initial) {
      std::string prompt;
      ResponseStatus r = co_await Response(prompt, &message);
      if (r != ResponseStatus::kOk) co_return AuthFailed(r);
    }
    if (!mail::AcceptPlain(message, limits(), settings_.allow_impersonation, &c)) {
      mail::LogRefusedLogin(who_, "AUTH PLAIN: a malformed or oversized message, or impersonation");
      Reply("-ERR authentication failed\r\n");
      co_return std::nullopt;
    }
  } else {
    std::string user = std::move(first);
    if (!has_initial) {
      std::string prompt(sasl::kLoginUserPrompt);
      ResponseStatus r = co_await Response(prompt, &user);
      if (r != ResponseStatus::kOk) co_return AuthFailed(r);
    }
    std::string password;
    std::string prompt(sasl::kLoginPasswordPrompt);
    ResponseStatus r = co_await Response(prompt, &password);
    if (r != ResponseStatus::kOk) co_return AuthFailed(r);
    if (!LoginFits(user, password)) {
      mail::LogRefusedLogin(who_, "AUTH LOGIN: a name or password too long or with control bytes");
      Reply("-ERR authentication failed\r\n");
      co_return std::nullopt;
    }
    c.mechanism = Mechanism::kAuthenticateLogin;
    c.user = std::move(user);
    c.password = std::move(password);
  }
  *credentials_ = std::move(c);
  co_return PreauthEnd::kCredentials;
}

}  // namespace

std::string GreetingLine(const PreauthSettings& settings) {
  return "+OK " + settings.greeting + "\r\n";
}

std::string_view AutologoutLine() { return "-ERR autologout; idle for too long\r\n"; }

Task<PreauthEnd> RunPreauth(ByteStream** stream, const PreauthSettings* settings, bool tls,
                            mail::TlsUpgrader* upgrader, Credentials* credentials, bool greet,
                            mail::SessionName who) {
  Dialogue d(who, stream, settings, tls, upgrader, credentials);
  PreauthEnd end = co_await d.Run(greet);
  co_return end;
}

}  // namespace ringproxy::pop3
