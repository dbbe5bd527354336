#include "proto/imap/upstream_login.h"

#include <algorithm>

#include "core/ascii.h"
#include "core/bounded_reader.h"
#include "proto/imap/string_writer.h"

namespace ringproxy::imap {

namespace {

using Status = UpstreamLoginStatus;

// The exchange has one deadline (timeout_ms from the connect): a server that sends an
// untagged line now and then never holds a login past it. The count bounds the alerts.
constexpr int kMaxLines = 64;
constexpr size_t kMaxAlertBytes = 8 * 1024;  // [ALERT] lines kept for the client

class Exchange {
 public:
  Exchange(ByteStream* upstream, const UpstreamLoginSettings* settings,
           const UpstreamLoginRequest* request)
      : upstream_(upstream),
        settings_(*settings),
        request_(*request),
        reader_(upstream, settings->line_bytes_max, LineEnding::kLf),
        deadline_(Deadline::AfterMs(settings->timeout_ms)) {}

  Task<UpstreamLoginOutcome> Run();

 private:
  Task<bool> Send(std::string text);
  // The next line; false with outcome_.status set when there is none.
  Task<bool> Line(std::string* line);
  // Reads to the command's tagged reply (collecting alerts); false on a stream end.
  Task<bool> Tagged(std::string* line);
  // Waits for "+" (a continuation); false, with the tagged refusal or a stream end.
  Task<bool> Continuation();
  // Reads to both tagged replies of a pipelined ID and login, in either order.
  Task<bool> BothTagged(std::string* id_line, std::string* login_line);
  std::string IdCommand(std::string_view tag) const;
  // The whole login command when the mechanism and the server's capabilities let it
  // go in one write; "" when it takes continuations.
  std::string OneWriteLogin(std::string_view capabilities) const;
  // An untagged line: an [ALERT] must reach the user (RFC 9051 §7.1); the rest is dropped.
  void Untagged(const std::string& line);

  ByteStream* upstream_;
  const UpstreamLoginSettings& settings_;
  const UpstreamLoginRequest& request_;
  BoundedReader reader_;
  const Deadline deadline_;
  UpstreamLoginOutcome outcome_;
  int lines_ = 0;
};

void Exchange::Untagged(const std::string& line) {
  if (StartsWithIgnoreCase(line, "* OK [ALERT]") &&
      outcome_.alerts.size() + line.size() + 2 <= kMaxAlertBytes) {
    outcome_.alerts += line + "\r\n";
  }
}

Task<bool> Exchange::Send(std::string text) {
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(text.data()), text.size());
  IoResult w = co_await WriteAll(upstream_, bytes, deadline_);
  if (w.ok()) co_return true;
  outcome_.status = w.cancelled() ? Status::kStopped : Status::kStreamError;
  co_return false;
}

Task<bool> Exchange::Line(std::string* line) {
  if (++lines_ > kMaxLines) {
    outcome_.status = Status::kProtocolError;
    co_return false;
  }
  std::string_view view;
  ReadStatus s = co_await reader_.ReadLine(deadline_, &view);
  if (s == ReadStatus::kOk) {
    line->assign(view);
    co_return true;
  }
  outcome_.status = mail::UpstreamStatusOf(s);
  co_return false;
}

Task<bool> Exchange::Tagged(std::string* line) {
  const std::string prefix = request_.credentials->tag + " ";
  for (;;) {
    const bool got = co_await Line(line);
    if (!got) co_return false;
    if (line->starts_with(prefix)) co_return true;
    Untagged(*line);
  }
}

Task<bool> Exchange::Continuation() {
  const std::string prefix = request_.credentials->tag + " ";
  for (;;) {
    std::string line;
    const bool got = co_await Line(&line);
    if (!got) co_return false;
    if (line.starts_with("+")) co_return true;
    if (line.starts_with(prefix)) {
      outcome_.status = Status::kRefused;
      outcome_.reply_line = line + "\r\n";
      co_return false;
    }
    Untagged(line);
  }
}

Task<bool> Exchange::BothTagged(std::string* id_line, std::string* login_line) {
  const std::string id_prefix = request_.credentials->tag + ".ID ";
  const std::string prefix = request_.credentials->tag + " ";
  id_line->clear();
  login_line->clear();
  while (id_line->empty() || login_line->empty()) {
    std::string line;
    const bool got = co_await Line(&line);
    if (!got) co_return false;
    if (line.starts_with(id_prefix)) {
      *id_line = std::move(line);
    } else if (line.starts_with(prefix)) {
      *login_line = std::move(line);
    } else {
      Untagged(line);
    }
  }
  co_return true;
}

// The capability list of a greeting's response code ("* OK [CAPABILITY a b] text").
std::string_view GreetingCapabilities(std::string_view greeting) {
  constexpr std::string_view kCode = "[CAPABILITY ";
  std::string_view rest = greeting.substr(std::min<size_t>(greeting.size(), 5));  // "* OK "
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (!StartsWithIgnoreCase(rest, kCode)) return {};
  rest.remove_prefix(kCode.size());
  const size_t end = rest.find(']');
  return end == std::string_view::npos ? std::string_view() : rest.substr(0, end);
}

bool HasCapability(std::string_view list, std::string_view name) {
  while (!list.empty()) {
    const size_t space = list.find(' ');
    if (EqualsIgnoreCase(list.substr(0, space), name)) return true;
    if (space == std::string_view::npos) break;
    list.remove_prefix(space + 1);
  }
  return false;
}

std::string Exchange::OneWriteLogin(std::string_view capabilities) const {
  const mail::Credentials& c = *request_.credentials;
  if (c.mechanism == mail::Mechanism::kAuthenticatePlain) {
    if (!HasCapability(capabilities, "SASL-IR")) return "";
    return c.tag + " AUTHENTICATE PLAIN " +
           mail::UpstreamPlainResponse(c, request_.login, request_.authzid_login) + "\r\n";
  }
  // Quoted strings as configured, unless a value cannot be one (8-bit text): then the
  // literals any IMAP server takes, rather than no login at all.
  if (!settings_.literal_login && CanQuote(request_.login) && CanQuote(c.password)) {
    std::string command = c.tag + " LOGIN ";
    AppendQuoted(request_.login, &command);
    command += " ";
    AppendQuoted(c.password, &command);
    return command + "\r\n";
  }
  constexpr size_t kLiteralMinusMax = 4096;  // RFC 7888
  const bool plus =
      HasCapability(capabilities, "LITERAL+") ||
      (HasCapability(capabilities, "LITERAL-") && request_.login.size() <= kLiteralMinusMax &&
       c.password.size() <= kLiteralMinusMax);
  if (!plus) return "";
  std::string command = c.tag + " LOGIN ";
  AppendLiteralHeader(request_.login.size(), true, &command);
  command += request_.login + " ";
  AppendLiteralHeader(c.password.size(), true, &command);
  return command + c.password + "\r\n";
}

std::string Exchange::IdCommand(std::string_view tag) const {
  const mail::Credentials& c = *request_.credentials;
  std::string out = std::string(tag) + " ID (";
  if (settings_.flavour == Flavour::kDovecot) {
    AppendQuoted("x-originating-ip", &out);
    out += " ";
    AppendQuoted(request_.client_ip, &out);
    return out + ")\r\n";
  }
  // Zimbra: the mailbox logs these once per session (X-VIA names the proxy hop).
  std::string via;
  // The client's part only when it can be quoted: X-VIA keeps the hop either way.
  if (!c.client_name.empty() && CanQuote(c.client_name) && CanQuote(c.client_version)) {
    via = c.client_name;
    if (!c.client_version.empty()) via += "/" + c.client_version;
    via += ",";
  }
  via += request_.local_ip + "(" + settings_.via_name + ")";
  const std::pair<std::string_view, std::string_view> pairs[] = {
      {"X-ORIGINATING-IP", request_.client_ip},
      {"name", settings_.ua_name},
      {"version", settings_.ua_version},
      {"X-VIA", via}};
  bool first = true;
  for (const auto& [field, value] : pairs) {
    if (!first) out += " ";
    first = false;
    AppendQuoted(field, &out);
    out += " ";
    // ID values are quoted strings; one that cannot be (never from our own ID parser)
    // is sent as NIL rather than as a literal the mailbox would not expect here.
    if (CanQuote(value)) {
      AppendQuoted(value, &out);
    } else {
      out += "NIL";
    }
  }
  return out + ")\r\n";
}

Task<UpstreamLoginOutcome> Exchange::Run() {
  const mail::Credentials& c = *request_.credentials;
  std::string greeting;
  const bool got = co_await Line(&greeting);
  if (!got) co_return outcome_;
  if (!StartsWithIgnoreCase(greeting, "* OK")) {
    outcome_.status = Status::kBadGreeting;
    co_return outcome_;
  }
  const std::string_view capabilities = GreetingCapabilities(greeting);
  if (HasCapability(capabilities, "LOGINDISABLED")) {
    // Neither LOGIN nor AUTHENTICATE PLAIN would be taken (RFC 9051 §6.2.3): the
    // password is not sent in the clear to be refused.
    outcome_.status = Status::kLoginDisabled;
    co_return outcome_;
  }
  const std::string one_write = OneWriteLogin(capabilities);
  const bool with_id = settings_.flavour != Flavour::kPlain;
  const bool pipelined = with_id && settings_.pipeline && !one_write.empty();
  std::string line;
  if (pipelined) {
    const bool sent = co_await Send(IdCommand(c.tag + ".ID") + one_write);
    if (!sent) co_return outcome_;
    std::string id_line;
    const bool both = co_await BothTagged(&id_line, &line);
    if (!both) co_return outcome_;
    if (!StartsWithIgnoreCase(std::string_view(id_line).substr(c.tag.size() + 4), "OK")) {
      outcome_.status = Status::kIdFailed;
      outcome_.reply_line = id_line + "\r\n";
      co_return outcome_;
    }
  } else {
    if (with_id) {
      const bool sent = co_await Send(IdCommand(c.tag));
      if (!sent) co_return outcome_;
      const bool tagged = co_await Tagged(&line);
      if (!tagged) co_return outcome_;
      if (!StartsWithIgnoreCase(std::string_view(line).substr(c.tag.size() + 1), "OK")) {
        outcome_.status = Status::kIdFailed;
        outcome_.reply_line = line + "\r\n";
        co_return outcome_;
      }
    }
    if (!one_write.empty()) {
      const bool sent = co_await Send(one_write);
      if (!sent) co_return outcome_;
    } else if (c.mechanism == mail::Mechanism::kAuthenticatePlain) {
      const bool sent = co_await Send(c.tag + " AUTHENTICATE PLAIN\r\n");
      if (!sent) co_return outcome_;
      const bool go_on = co_await Continuation();
      if (!go_on) co_return outcome_;
      std::string response = mail::UpstreamPlainResponse(c, request_.login, request_.authzid_login);
      const bool sent_response = co_await Send(response + "\r\n");
      if (!sent_response) co_return outcome_;
    } else {
      // Synchronising literals: the server has not said it takes LITERAL+.
      std::string first = c.tag + " LOGIN ";
      AppendLiteralHeader(request_.login.size(), false, &first);
      const bool sent = co_await Send(first);
      if (!sent) co_return outcome_;
      const bool go_on = co_await Continuation();
      if (!go_on) co_return outcome_;
      std::string second = request_.login + " ";
      AppendLiteralHeader(c.password.size(), false, &second);
      const bool sent_login = co_await Send(second);
      if (!sent_login) co_return outcome_;
      const bool go_on_again = co_await Continuation();
      if (!go_on_again) co_return outcome_;
      const bool sent_password = co_await Send(c.password + "\r\n");
      if (!sent_password) co_return outcome_;
    }
    const bool tagged = co_await Tagged(&line);
    if (!tagged) co_return outcome_;
  }
  outcome_.reply_line = line + "\r\n";
  outcome_.status = StartsWithIgnoreCase(std::string_view(line).substr(c.tag.size() + 1), "OK")
                        ? Status::kOk
                        : Status::kRefused;
  // Anything the server sent behind its reply follows it to the client, in order.
  outcome_.reply_line += reader_.Release();
  co_return outcome_;
}

}  // namespace

Task<UpstreamLoginOutcome> LoginUpstream(ByteStream* upstream,
                                         const UpstreamLoginSettings* settings,
                                         const UpstreamLoginRequest* request) {
  Exchange e(upstream, settings, request);
  UpstreamLoginOutcome outcome = co_await e.Run();
  co_return outcome;
}

}  // namespace ringproxy::imap
