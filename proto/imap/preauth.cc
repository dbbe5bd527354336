#include "proto/imap/preauth.h"

#include <optional>

#include "core/ascii.h"
#include "proto/imap/string_writer.h"
#include "proto/sasl/sasl.h"

namespace ringproxy::imap {

namespace {

constexpr std::string_view kBye = "* BYE Zimbra IMAP server terminating connection\r\n";
constexpr std::string_view kCleartextRefused = "[PRIVACYREQUIRED] cleartext logins disabled";

bool IsString(const Arg& a) { return a.kind == ArgKind::kQuoted || a.kind == ArgKind::kLiteral; }
bool IsAstring(const Arg& a) { return IsString(a) || a.kind == ArgKind::kAtom; }
bool IsNil(const Arg& a) { return a.kind == ArgKind::kAtom && EqualsIgnoreCase(a.value, "NIL"); }

enum class LineStatus : uint8_t { kOk, kTooLong, kClosed, kTimeout, kError, kStopped };

class Dialogue {
 public:
  Dialogue(mail::SessionName who, ByteStream** stream, const PreauthSettings* settings, bool tls,
           TlsUpgrader* upgrader, Credentials* credentials)
      : who_(who),
        stream_(stream),
        settings_(*settings),
        tls_(tls),
        upgrader_(upgrader),
        credentials_(credentials),
        parser_(settings->limits),
        // What an ID said before an earlier attempt on this connection (login_retry).
        client_name_(credentials->client_name),
        client_version_(credentials->client_version) {}

  Task<PreauthEnd> Run(bool greet);

 private:
  // Replies collect in out_ and go out in one write per command (or before a wait for
  // the client, or a TLS handshake). Coroutine rules of core/task.h: named locals for
  // awaited results and arguments, no `co_return co_await`.
  void Reply(std::string_view text) { out_.Add(text); }
  // false: the stream failed (end_ says how).
  Task<bool> FlushOut();
  Task<LineStatus> ReadLine(std::string* line);
  std::string Capabilities() const;
  mail::LoginLimits limits() const {
    return {settings_.login_bytes_max, settings_.password_bytes_max};
  }
  bool refuse_cleartext() const { return !tls_ && settings_.starttls == StartTlsMode::kOnly; }
  bool starttls_offered() const {
    return !tls_ && settings_.starttls != StartTlsMode::kOff && upgrader_ != nullptr;
  }
  // Each command: nullopt to go on, or how the dialogue ends.
  Task<std::optional<PreauthEnd>> Dispatch();
  // A refused command: logged, answered, counted toward bad_commands_max.
  std::optional<PreauthEnd> Refuse(std::string_view tag, std::string_view verb,
                                   std::string_view text);
  std::optional<PreauthEnd> Bad(std::string_view tag, std::string_view text) {
    return Refuse(tag, "BAD", text);
  }
  std::optional<PreauthEnd> Id(const std::string& tag);
  std::optional<PreauthEnd> Login(const std::string& tag);
  Task<std::optional<PreauthEnd>> StartTls(std::string tag);
  Task<std::optional<PreauthEnd>> Authenticate(std::string tag);
  // Sends "+ prompt" and reads the client's response. kOk: *decoded holds it. The
  // others: "*" (aborted), not base64, or the dialogue ends (*end).
  enum class ResponseStatus : uint8_t { kOk, kAborted, kNotBase64, kEnded };
  // A client's line in an AUTHENTICATE exchange for the command `tag`.
  Task<ResponseStatus> Response(std::string_view tag, std::string prompt, std::string* decoded);
  std::optional<PreauthEnd> AuthenticateFailed(ResponseStatus s, std::string_view tag);

  const mail::SessionName who_;
  ByteStream** stream_;
  const PreauthSettings& settings_;
  bool tls_;
  TlsUpgrader* upgrader_;
  Credentials* credentials_;
  CommandParser parser_;
  mail::ReplyBuffer out_;
  PreauthEnd end_ = PreauthEnd::kStreamError;
  size_t bad_commands_ = 0;
  std::string client_name_;
  std::string client_version_;
};

Task<bool> Dialogue::FlushOut() {
  IoResult w = co_await out_.Flush(*stream_, settings_.send_timeout_ms);
  if (w.ok()) co_return true;
  end_ = w.cancelled() ? PreauthEnd::kStopped : PreauthEnd::kStreamError;
  co_return false;
}

// A raw line (an AUTHENTICATE response is not a command), CR LF or LF, bounded by the
// command line limit. Not the BoundedReader: the command parser reads this stream with
// Peek/Consume, and the reader defers its Consume to its next call.
Task<LineStatus> Dialogue::ReadLine(std::string* line) {
  line->clear();
  const Deadline deadline = Deadline::AfterMs(settings_.idle_timeout_ms);
  for (;;) {
    ByteStream* s = *stream_;
    std::span<const std::byte> view = s->Peek();
    if (view.empty()) {
      IoResult r = co_await s->Fill(deadline);
      if (r.res == 0) co_return LineStatus::kClosed;
      if (r.timed_out()) co_return LineStatus::kTimeout;
      if (r.cancelled()) co_return LineStatus::kStopped;
      if (!r.ok()) co_return LineStatus::kError;
      continue;
    }
    std::string_view text(reinterpret_cast<const char*>(view.data()), view.size());
    const size_t lf = text.find('\n');
    const size_t take = lf == std::string_view::npos ? text.size() : lf;
    if (line->size() + take > settings_.limits.line_bytes_max) co_return LineStatus::kTooLong;
    line->append(text.substr(0, take));
    s->Consume(lf == std::string_view::npos ? take : lf + 1);
    if (lf != std::string_view::npos) {
      // The limit counts the line's CR LF, as the command parser's does.
      if (line->size() + 1 > settings_.limits.line_bytes_max) co_return LineStatus::kTooLong;
      if (!line->empty() && line->back() == '\r') line->pop_back();
      co_return LineStatus::kOk;
    }
  }
}

std::string Dialogue::Capabilities() const {
  std::string out = "* CAPABILITY";
  for (const std::string& c : settings_.capabilities) out += " " + c;
  if (refuse_cleartext()) {
    if (starttls_offered()) out += " STARTTLS";
    out += " LOGINDISABLED";
  } else {
    if (settings_.auth_login) out += " AUTH=LOGIN";
    if (settings_.auth_plain) out += " AUTH=PLAIN";
    if (starttls_offered()) out += " STARTTLS";
  }
  return out + "\r\n";
}

std::optional<PreauthEnd> Dialogue::Refuse(std::string_view tag, std::string_view verb,
                                           std::string_view text) {
  mail::LogRefusedCommand(who_, verb, text);
  Reply(tag);
  Reply(" ");
  Reply(verb);
  Reply(" ");
  Reply(text);
  Reply("\r\n");
  if (++bad_commands_ >= settings_.bad_commands_max) {
    Reply("* BYE too many invalid commands\r\n");
    return PreauthEnd::kTooManyErrors;
  }
  return std::nullopt;
}

Task<PreauthEnd> Dialogue::Run(bool greet) {
  if (greet) Reply(GreetingLine(settings_));
  for (;;) {
    const bool flushed = co_await FlushOut();
    if (!flushed) co_return end_;
    ByteStream* s = *stream_;
    std::span<const std::byte> view = s->Peek();
    if (view.empty()) {
      const Deadline deadline = Deadline::AfterMs(settings_.idle_timeout_ms);
      IoResult r = co_await s->Fill(deadline);
      if (r.res == 0) co_return PreauthEnd::kClientClosed;
      if (r.timed_out()) {
        Reply(kBye);
        (void)co_await FlushOut();
        co_return PreauthEnd::kTimeout;
      }
      if (r.cancelled()) co_return PreauthEnd::kStopped;
      if (!r.ok()) co_return PreauthEnd::kStreamError;
      continue;
    }
    ParseResult pr =
        parser_.Parse(std::string_view(reinterpret_cast<const char*>(view.data()), view.size()));
    s->Consume(pr.consumed);
    std::optional<PreauthEnd> end;
    if (pr.event == Event::kContinue) {
      Reply("+ \r\n");  // Zimbra's continuation: plus, space
    } else if (pr.event == Event::kError) {
      const std::string tag = parser_.tag().empty() ? "*" : std::string(parser_.tag());
      if (pr.error == Error::kLineTooLong || pr.error == Error::kCommandTooLong) {
        // The spec's "client sent too long command": refused, and the session ends.
        Reply(tag + " BAD " + std::string(ErrorName(pr.error)) + "\r\n");
        end = PreauthEnd::kLineTooLong;
      } else {
        end = Bad(tag, ErrorName(pr.error));
      }
    } else if (pr.event == Event::kCommand) {
      std::optional<PreauthEnd> done = co_await Dispatch();
      end = done;
    }
    if (end.has_value()) {
      const bool sent = co_await FlushOut();
      if (!sent && *end != PreauthEnd::kCredentials) co_return end_;
      co_return *end;
    }
  }
}

Task<std::optional<PreauthEnd>> Dialogue::Dispatch() {
  std::string tag(parser_.tag());
  std::string_view name = parser_.name();
  const size_t argc = parser_.args().size();
  if (EqualsIgnoreCase(name, "CAPABILITY") || EqualsIgnoreCase(name, "NOOP") ||
      EqualsIgnoreCase(name, "LOGOUT")) {
    if (argc != 0) co_return Bad(tag, "no arguments expected");
    if (EqualsIgnoreCase(name, "CAPABILITY")) Reply(Capabilities());
    if (EqualsIgnoreCase(name, "LOGOUT")) Reply(kBye);
    Reply(tag + " OK completed\r\n");
    if (EqualsIgnoreCase(name, "LOGOUT")) co_return PreauthEnd::kLogout;
    co_return std::nullopt;
  }
  if (EqualsIgnoreCase(name, "ID")) co_return Id(tag);
  if (EqualsIgnoreCase(name, "LOGIN")) co_return Login(tag);
  if (EqualsIgnoreCase(name, "STARTTLS")) {
    std::optional<PreauthEnd> r = co_await StartTls(tag);
    co_return r;
  }
  if (EqualsIgnoreCase(name, "AUTHENTICATE")) {
    std::optional<PreauthEnd> r = co_await Authenticate(tag);
    co_return r;
  }
  co_return Bad(tag, "invalid command");
}

// RFC 2971: ID NIL, or up to 30 field/value pairs, fields up to 30 octets, values up to
// 1024 octets (or NIL).
std::optional<PreauthEnd> Dialogue::Id(const std::string& tag) {
  std::span<const Arg> a = parser_.args();
  std::string name, version;
  bool ok = a.size() == 1 && IsNil(a[0]);
  if (!ok && a.size() >= 2 && a.front().kind == ArgKind::kListBegin &&
      a.back().kind == ArgKind::kListEnd && (a.size() - 2) % 2 == 0 && (a.size() - 2) / 2 <= 30) {
    ok = true;
    for (size_t i = 1; i + 1 < a.size(); i += 2) {
      const Arg& field = a[i];
      const Arg& value = a[i + 1];
      if (!IsString(field) || field.value.size() > 30 || !(IsString(value) || IsNil(value)) ||
          value.value.size() > 1024) {
        ok = false;
        break;
      }
      if (EqualsIgnoreCase(field.value, "NAME") && IsString(value)) name = value.value;
      if (EqualsIgnoreCase(field.value, "VERSION") && IsString(value)) version = value.value;
    }
  }
  if (!ok) return Bad(tag, "invalid ID arguments");
  // Kept for the upstream's X-VIA (a list replaces what an earlier ID said; NIL says
  // nothing); control characters would break that line.
  if (a.size() > 1) {
    client_name_ = mail::HasControl(name) ? std::string() : std::move(name);
    client_version_ = mail::HasControl(version) ? std::string() : std::move(version);
  }
  std::string reply = "* ID ";
  if (settings_.id_reply.empty()) {
    reply += "NIL";
  } else {
    reply += "(";
    for (size_t i = 0; i < settings_.id_reply.size(); ++i) {
      if (i > 0) reply += " ";
      AppendQuoted(settings_.id_reply[i].first, &reply);
      reply += " ";
      AppendQuoted(settings_.id_reply[i].second, &reply);
    }
    reply += ")";
  }
  Reply(reply + "\r\n" + tag + " OK completed\r\n");
  return std::nullopt;
}

Task<std::optional<PreauthEnd>> Dialogue::StartTls(std::string tag) {
  if (!parser_.args().empty()) co_return Bad(tag, "no arguments expected");
  if (tls_) co_return Bad(tag, "TLS already active");
  if (!starttls_offered()) co_return Bad(tag, "STARTTLS not available");
  // RFC 2595 / the 2021 STARTTLS study: plaintext pipelined behind the command must not
  // be answered inside TLS.
  parser_.Reset();
  (*stream_)->DiscardBuffered();
  // And what the plaintext said is forgotten: an ID slipped in ahead of STARTTLS would
  // reach the mailbox server as the client's name and via (RFC 3501 §6.2.1).
  client_name_.clear();
  client_version_.clear();
  Reply(tag + " OK completed\r\n");  // Zimbra's text (spec/zimbra-proxy.md)
  const bool sent = co_await FlushOut();
  if (!sent) co_return end_;
  ByteStream* plain = *stream_;
  ByteStream* secured = co_await upgrader_->Upgrade(plain);
  if (secured == nullptr) co_return PreauthEnd::kTlsFailed;
  *stream_ = secured;
  tls_ = true;
  co_return std::nullopt;
}

std::optional<PreauthEnd> Dialogue::Login(const std::string& tag) {
  std::span<const Arg> a = parser_.args();
  if (a.size() != 2 || !IsAstring(a[0]) || !IsAstring(a[1])) {
    return Bad(tag, "LOGIN takes a user name and a password");
  }
  if (refuse_cleartext()) return Refuse(tag, "NO", kCleartextRefused);
  std::string_view user = a[0].value;
  std::string_view password = a[1].value;
  if (!mail::LoginFits(user, password, limits())) {
    mail::LogRefusedLogin(who_, "LOGIN: a name or password too long or with control bytes");
    Reply(tag + " NO LOGIN failed\r\n");
    return std::nullopt;
  }
  *credentials_ = Credentials{};
  credentials_->tag = tag;
  credentials_->mechanism = Mechanism::kLogin;
  credentials_->user = user;
  credentials_->password = password;
  credentials_->client_name = client_name_;
  credentials_->client_version = client_version_;
  return PreauthEnd::kCredentials;
}

Task<Dialogue::ResponseStatus> Dialogue::Response(std::string_view tag, std::string prompt,
                                                  std::string* decoded) {
  Reply("+ " + prompt + "\r\n");
  const bool sent = co_await FlushOut();
  if (!sent) co_return ResponseStatus::kEnded;
  std::string line;
  LineStatus s = co_await ReadLine(&line);
  switch (s) {
    case LineStatus::kOk:
      break;
    case LineStatus::kTooLong:
      Reply(std::string(tag) + " BAD line too long\r\n");  // the command's completion
      end_ = PreauthEnd::kLineTooLong;
      co_return ResponseStatus::kEnded;
    case LineStatus::kClosed:
      end_ = PreauthEnd::kClientClosed;
      co_return ResponseStatus::kEnded;
    case LineStatus::kTimeout:
      Reply(kBye);
      end_ = PreauthEnd::kTimeout;
      co_return ResponseStatus::kEnded;
    case LineStatus::kStopped:
      end_ = PreauthEnd::kStopped;
      co_return ResponseStatus::kEnded;
    case LineStatus::kError:
      end_ = PreauthEnd::kStreamError;
      co_return ResponseStatus::kEnded;
  }
  if (line == "*") co_return ResponseStatus::kAborted;
  decoded->clear();
  if (!sasl::Base64Decode(line, decoded)) co_return ResponseStatus::kNotBase64;
  co_return ResponseStatus::kOk;
}

std::optional<PreauthEnd> Dialogue::AuthenticateFailed(ResponseStatus s, std::string_view tag) {
  switch (s) {
    case ResponseStatus::kAborted:
      return Bad(tag, "AUTHENTICATE aborted");
    case ResponseStatus::kNotBase64:
      return Bad(tag, "invalid base64");
    case ResponseStatus::kEnded:
    case ResponseStatus::kOk:
      break;
  }
  return end_;
}

Task<std::optional<PreauthEnd>> Dialogue::Authenticate(std::string tag) {
  std::span<const Arg> a = parser_.args();
  if (a.empty() || a.size() > 2 || a[0].kind != ArgKind::kAtom ||
      (a.size() == 2 && a[1].kind != ArgKind::kAtom)) {
    co_return Bad(tag, "AUTHENTICATE takes a mechanism and an initial response");
  }
  const bool plain = EqualsIgnoreCase(a[0].value, "PLAIN") && settings_.auth_plain;
  const bool login = EqualsIgnoreCase(a[0].value, "LOGIN") && settings_.auth_login;
  if (!plain && !login) co_return Refuse(tag, "NO", "mechanism not supported");
  if (refuse_cleartext()) co_return Refuse(tag, "NO", kCleartextRefused);
  // SASL-IR (RFC 4959): "=" is an empty initial response.
  bool has_initial = a.size() == 2;
  std::string initial;
  if (has_initial && a[1].value != "=" && !sasl::Base64Decode(a[1].value, &initial)) {
    co_return Bad(tag, "invalid base64");
  }
  const std::string failed = tag + " NO AUTHENTICATE failed\r\n";
  Credentials c;
  c.tag = tag;
  if (plain) {
    std::string message = std::move(initial);
    if (!has_initial) {
      std::string prompt;
      ResponseStatus r = co_await Response(tag, prompt, &message);
      if (r != ResponseStatus::kOk) co_return AuthenticateFailed(r, tag);
    }
    if (!mail::AcceptPlain(message, limits(), settings_.allow_impersonation, &c)) {
      mail::LogRefusedLogin(
          who_, "AUTHENTICATE PLAIN: a malformed or oversized message, or impersonation");
      Reply(failed);
      co_return std::nullopt;
    }
  } else {
    std::string user = std::move(initial);
    if (!has_initial) {
      std::string prompt(sasl::kLoginUserPrompt);
      ResponseStatus r = co_await Response(tag, prompt, &user);
      if (r != ResponseStatus::kOk) co_return AuthenticateFailed(r, tag);
    }
    std::string password;
    std::string prompt(sasl::kLoginPasswordPrompt);
    ResponseStatus r = co_await Response(tag, prompt, &password);
    if (r != ResponseStatus::kOk) co_return AuthenticateFailed(r, tag);
    if (!mail::LoginFits(user, password, limits())) {
      mail::LogRefusedLogin(
          who_, "AUTHENTICATE LOGIN: a name or password too long or with control bytes");
      Reply(failed);
      co_return std::nullopt;
    }
    c.mechanism = Mechanism::kAuthenticateLogin;
    c.user = std::move(user);
    c.password = std::move(password);
  }
  c.client_name = client_name_;
  c.client_version = client_version_;
  *credentials_ = std::move(c);
  co_return PreauthEnd::kCredentials;
}

}  // namespace

std::string GreetingLine(const PreauthSettings& settings) {
  return "* OK " + settings.greeting + "\r\n";
}

std::string_view AutologoutLine() { return kBye; }

Task<PreauthEnd> RunPreauth(ByteStream** stream, const PreauthSettings* settings, bool tls,
                            TlsUpgrader* upgrader, Credentials* credentials, bool greet,
                            mail::SessionName who) {
  Dialogue d(who, stream, settings, tls, upgrader, credentials);
  PreauthEnd end = co_await d.Run(greet);
  co_return end;
}

}  // namespace ringproxy::imap
