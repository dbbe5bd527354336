#include "route/lookup_codec.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <initializer_list>

#include "core/ascii.h"

namespace ringproxy::lookup {
namespace {

void Append(std::string* out, std::initializer_list<std::string_view> parts) {
  for (std::string_view p : parts) out->append(p);
}

void AppendNumber(std::string* out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, static_cast<size_t>(end - buf));
}

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7f; }

bool NeedsEscape(unsigned char c) { return c == ' ' || c == '%' || IsControl(c); }

void AppendHexEscape(std::string* out, unsigned char c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  *out += '%';
  *out += kHex[c >> 4];
  *out += kHex[c & 15];
}

// A reply header's value: a control byte (a reason may quote a login, which decodes to
// anything) would end the line and start a header of the client's choosing.
void AppendValue(std::string* out, std::string_view v) {
  for (char ch : v) {
    auto c = static_cast<unsigned char>(ch);
    if (IsControl(c)) {
      AppendHexEscape(out, c);
    } else {
      *out += ch;
    }
  }
}

bool HasControl(std::string_view s) {
  for (char c : s) {
    if (IsControl(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

struct CheckedValue {
  RequestError error;
  std::string_view value;
};

// Every value WriteRequest copies, with the error that names it. The user only when it
// is written as given: escaping turns controls into %XX.
std::array<CheckedValue, 11> CheckedValues(const Request& r, std::string_view host,
                                           std::string_view path) {
  return {{{RequestError::kBadPath, path},
           {RequestError::kBadHost, host},
           {RequestError::kBadMethod, r.method},
           {RequestError::kBadUser, r.escape_user ? std::string_view() : r.user},
           {RequestError::kBadProtocol, r.protocol},
           {RequestError::kBadClientIp, r.client_ip},
           {RequestError::kBadProxyIp, r.proxy_ip},
           {RequestError::kBadProxyHost, r.proxy_host},
           {RequestError::kBadAuthId, r.auth_id},
           {RequestError::kBadAdminUser, r.admin_user},
           {RequestError::kBadAdminPass, r.admin_pass}}};
}

// Splits the head into its start line and headers; fills `h`. Returns the start line.
std::string_view ParseHeadLines(std::string_view data, ParsedHead* h) {
  size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    h->error = data.size() > kMaxHead ? Error::kHeadTooLong : Error::kNeedMore;
    return {};
  }
  if (end + 4 > kMaxHead) {
    h->error = Error::kHeadTooLong;
    return {};
  }
  std::string_view head = data.substr(0, end);
  size_t eol = head.find("\r\n");
  std::string_view start = head.substr(0, eol);
  size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t next = head.find("\r\n", pos);
    if (next == std::string_view::npos) next = head.size();
    std::string_view line = head.substr(pos, next - pos);
    pos = next + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      h->error = Error::kBadHeader;
      return {};
    }
    if (h->header_count == kMaxHeaders) {
      h->error = Error::kTooManyHeaders;
      return {};
    }
    h->headers[h->header_count++] = {TrimOws(line.substr(0, colon)),
                                     TrimOws(line.substr(colon + 1))};
  }
  h->consumed = end + 4;
  return start;
}

// Body framing for keep-alive reuse: Content-Length only (the service sends none or 0).
void FrameBody(std::string_view data, ParsedHead* h) {
  std::string_view cl = h->Find("Content-Length");
  // Repeats that differ leave the body's end unknown (RFC 9112 §6.3).
  for (size_t i = 0; i < h->header_count; ++i) {
    if (EqualsIgnoreCase(h->headers[i].name, "Content-Length") && h->headers[i].value != cl) {
      h->error = Error::kBadHeader;
      return;
    }
  }
  if (cl.empty()) {
    // No length: reusable only if the message cannot have a body (a request), which
    // the caller decides; a response without a length ends at close.
    return;
  }
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), n);
  if (ec != std::errc() || p != cl.data() + cl.size()) {
    h->error = Error::kBadHeader;
    return;
  }
  if (n > kMaxHead) {
    h->error = Error::kBodyTooLarge;
    return;
  }
  if (data.size() < h->consumed + n) {
    h->error = Error::kNeedMore;
    return;
  }
  h->body = data.substr(h->consumed, static_cast<size_t>(n));
  h->consumed += static_cast<size_t>(n);
}

void ApplyConnectionHeader(ParsedHead* h) {
  std::string_view c = h->Find("Connection");
  if (EqualsIgnoreCase(c, "close")) h->keep_alive = false;
  if (EqualsIgnoreCase(c, "keep-alive")) h->keep_alive = true;
}

}  // namespace

std::string_view ErrorName(Error e) {
  switch (e) {
    case Error::kNone:
      return "none";
    case Error::kNeedMore:
      return "incomplete";
    case Error::kHeadTooLong:
      return "head too long";
    case Error::kBadStartLine:
      return "bad start line";
    case Error::kBadHeader:
      return "bad header";
    case Error::kTooManyHeaders:
      return "too many headers";
    case Error::kBadStatus:
      return "status other than 200";
    case Error::kBodyTooLarge:
      return "body too large";
  }
  return "?";
}

std::string_view ParsedHead::Find(std::string_view name) const {
  for (size_t i = 0; i < header_count; ++i) {
    if (EqualsIgnoreCase(headers[i].name, name)) return headers[i].value;
  }
  return {};
}

std::string_view ParsedHead::FindLast(std::string_view name) const {
  for (size_t i = header_count; i-- > 0;) {
    if (EqualsIgnoreCase(headers[i].name, name)) return headers[i].value;
  }
  return {};
}

bool ParsedHead::Has(std::string_view name) const {
  for (size_t i = 0; i < header_count; ++i) {
    if (EqualsIgnoreCase(headers[i].name, name)) return true;
  }
  return false;
}

std::string EscapeMailAuth(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (NeedsEscape(c)) {
      AppendHexEscape(&out, c);
    } else {
      out += ch;
    }
  }
  return out;
}

bool UnescapeMailAuth(std::string_view s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      *out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return false;
    int hi = HexDigitValue(s[i + 1]), lo = HexDigitValue(s[i + 2]);
    if (hi < 0 || lo < 0) return false;
    *out += static_cast<char>(hi << 4 | lo);
    i += 2;
  }
  return true;
}

std::string_view RequestErrorName(RequestError e) {
  switch (e) {
    case RequestError::kNone:
      return "none";
    case RequestError::kBadPath:
      return "control character in the path";
    case RequestError::kBadHost:
      return "control character in Host";
    case RequestError::kBadMethod:
      return "control character in Auth-Method";
    case RequestError::kBadUser:
      return "control character in Auth-User";
    case RequestError::kBadProtocol:
      return "control character in Auth-Protocol";
    case RequestError::kBadClientIp:
      return "control character in Client-IP";
    case RequestError::kBadProxyIp:
      return "control character in X-Proxy-IP";
    case RequestError::kBadProxyHost:
      return "control character in X-Proxy-Host";
    case RequestError::kBadAuthId:
      return "control character in Auth-ID";
    case RequestError::kBadAdminUser:
      return "control character in Auth-Admin-User";
    case RequestError::kBadAdminPass:
      return "control character in Auth-Admin-Pass";
  }
  return "?";
}

std::string_view RefusedValue(const Request& r, std::string_view host, std::string_view path,
                              RequestError e) {
  for (const CheckedValue& v : CheckedValues(r, host, path)) {
    if (v.error == e) return v.value;
  }
  return {};
}

RequestError WriteRequest(const Request& r, std::string_view host, std::string_view path,
                          bool keep_alive, std::string* out) {
  for (const CheckedValue& v : CheckedValues(r, host, path)) {
    if (HasControl(v.value)) return v.error;
  }
  const std::string user = r.escape_user ? EscapeMailAuth(r.user) : std::string(r.user);
  Append(out,
         {"GET ", path, keep_alive ? " HTTP/1.1\r\nHost: " : " HTTP/1.0\r\nHost: ", host, "\r\n"});
  if (!keep_alive) out->append("Connection: close\r\n");
  Append(out, {"Auth-Method: ", r.method, "\r\nAuth-User: ", user,
               "\r\nAuth-Pass: ", kPasswordPlaceholder, "\r\nAuth-Protocol: ", r.protocol,
               "\r\nAuth-Login-Attempt: "});
  AppendNumber(out, r.login_attempt);
  Append(out, {"\r\nX-Proxy-IP: ", r.proxy_ip, "\r\nClient-IP: ", r.client_ip, "\r\n"});
  if (r.zimbra_admin) out->append("Auth-Zimbra-Admin: True\r\n");
  if (r.zimbra_zx) out->append("Auth-Zimbra-Zx: True\r\n");
  if (!r.proxy_host.empty()) Append(out, {"X-Proxy-Host: ", r.proxy_host, "\r\n"});
  if (!r.admin_user.empty()) {
    Append(out, {"Auth-Admin-User: ", r.admin_user, "\r\nAuth-Admin-Pass: ", r.admin_pass, "\r\n"});
  }
  if (!r.auth_id.empty()) Append(out, {"Auth-ID: ", r.auth_id, "\r\n"});
  out->append("\r\n");
  return RequestError::kNone;
}

ParsedRequest ParseRequest(std::string_view data) {
  ParsedRequest r;
  std::string_view start = ParseHeadLines(data, &r);
  if (r.error != Error::kNone) return r;
  // "GET /path HTTP/1.x"
  size_t sp1 = start.find(' ');
  size_t sp2 = start.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1 || start.substr(sp2 + 1).size() != 8 ||
      start.substr(sp2 + 1, 7) != "HTTP/1." || (start.back() != '0' && start.back() != '1')) {
    r.error = Error::kBadStartLine;
    return r;
  }
  r.method = start.substr(0, sp1);
  r.target = start.substr(sp1 + 1, sp2 - sp1 - 1);
  r.http10 = start.back() == '0';
  r.keep_alive = !r.http10;
  ApplyConnectionHeader(&r);
  FrameBody(data, &r);
  return r;
}

ParsedResponse ParseResponse(std::string_view data) {
  ParsedResponse r;
  std::string_view start = ParseHeadLines(data, &r);
  if (r.error != Error::kNone) return r;
  if (start.size() < 12 || start.substr(0, 7) != "HTTP/1." ||
      (start[7] != '0' && start[7] != '1') || start[8] != ' ') {
    r.error = Error::kBadStartLine;
    return r;
  }
  auto [p, ec] = std::from_chars(start.data() + 9, start.data() + 12, r.status);
  if (ec != std::errc() || p != start.data() + 12) {
    r.error = Error::kBadStartLine;
    return r;
  }
  r.http10 = start[7] == '0';
  r.keep_alive = !r.http10;
  ApplyConnectionHeader(&r);
  // Without a length, or with a Transfer-Encoding (which overrides it, RFC 9112 §6.3),
  // the body is not framed here: it runs to the close, so the connection is not kept.
  if (!r.Has("Content-Length") || r.Has("Transfer-Encoding")) {
    r.keep_alive = false;
  } else {
    FrameBody(data, &r);
  }
  if (r.error == Error::kNone && r.status != 200) r.error = Error::kBadStatus;
  return r;
}

// Auth-Server as a host to connect to: an IPv6 literal (brackets dropped), or an IPv4
// address or host name (labels of 1..63 letters, digits, '-' not at either end, or '_';
// 253 bytes at most; one trailing dot). Anything else is empty: not a route.
namespace {

std::string_view UsableServer(std::string_view s) {
  if (s.size() > 2 && s.front() == '[' && s.back() == ']') {
    s = s.substr(1, s.size() - 2);
    if (s.find(':') == std::string_view::npos) return {};
  }
  if (s.find(':') != std::string_view::npos) {
    in6_addr v6;
    const std::string text(s);
    return inet_pton(AF_INET6, text.c_str(), &v6) == 1 ? s : std::string_view();
  }
  std::string_view name = s;
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return {};
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    const std::string_view label = name.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return {};
    }
    for (char c : label) {
      const char l = AsciiLower(c);
      if (!((l >= 'a' && l <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return {};
    }
    start = end + 1;
  }
  return s;
}

}  // namespace

// Repeated fields: the last one counts, as in Zimbra's proxy, except that any
// Auth-Status other than OK fails the login (spec §1.3), wherever it stands.
Answer Interpret(const ParsedResponse& r) {
  Answer a;
  if (!r.Has("Auth-Status")) return a;
  a.status = r.FindLast("Auth-Status");
  for (size_t i = 0; i < r.header_count; ++i) {
    if (EqualsIgnoreCase(r.headers[i].name, "Auth-Status") && r.headers[i].value != "OK") {
      a.status = r.headers[i].value;
      break;
    }
  }
  std::string_view wait = r.FindLast("Auth-Wait");
  if (!wait.empty()) {
    int w = 0;
    auto [p, ec] = std::from_chars(wait.data(), wait.data() + wait.size(), w);
    // Held no longer than the config's own auth_wait_ms may say (an hour): a client
    // parked for a day by one answer is a lookup service's bug, not a policy.
    if (ec == std::errc() && p == wait.data() + wait.size() && w >= 0) {
      a.wait_s = std::min(w, kMaxAuthWaitS);
    } else if (ec == std::errc::result_out_of_range && wait.front() != '-') {
      a.wait_s = kMaxAuthWaitS;
    }
  }
  a.user = r.FindLast("Auth-User");
  a.auth_id = r.FindLast("Auth-ID");
  a.auth_pass = r.FindLast("Auth-Pass");
  a.cache_alias = EqualsIgnoreCase(r.FindLast("Auth-Cache-Alias"), "TRUE");
  if (a.status != "OK") {
    a.outcome = Outcome::kLoginFailed;
    return a;
  }
  a.server = UsableServer(r.FindLast("Auth-Server"));
  std::string_view port = r.FindLast("Auth-Port");
  uint32_t n = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  if (a.server.empty() || port.empty() || ec != std::errc() || p != port.data() + port.size() ||
      n == 0 || n > 65535) {
    a.outcome = Outcome::kInvalidRoute;
    return a;
  }
  a.port = static_cast<uint16_t>(n);
  a.outcome = Outcome::kOk;
  return a;
}

void WriteReply(const Reply& r, bool keep_alive, std::string* out) {
  out->append("HTTP/1.1 200 OK\r\n");
  auto header = [out](std::string_view name, std::string_view value) {
    Append(out, {name, ": "});
    AppendValue(out, value);
    out->append("\r\n");
  };
  if (r.ok) {
    out->append("Auth-Status: OK\r\n");
    header("Auth-Server", r.server);
    out->append("Auth-Port: ");
    AppendNumber(out, r.port);
    Append(out, {"\r\nAuth-Cache-Alias: ", r.cache_alias ? "TRUE" : "FALSE", "\r\n"});
    if (!r.user.empty()) header("Auth-User", EscapeMailAuth(r.user));
    if (!r.auth_id.empty()) header("Auth-ID", r.auth_id);
    if (!r.auth_pass.empty()) header("Auth-Pass", r.auth_pass);
  } else {
    header("Auth-Status", r.status);
    out->append("Auth-Wait: ");
    AppendNumber(out, r.wait_s);
    out->append("\r\n");
  }
  out->append(keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
  out->append("Content-Length: 0\r\n\r\n");
}

}  // namespace ringproxy::lookup
