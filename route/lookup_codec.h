// The route lookup protocol (Zimbra's variant of nginx auth_http) as a pure codec:
// request writer and reader, response writer and reader. HTTP/1.x heads with a fixed
// number of headers, views into the input, no I/O, no allocation while parsing.
//
// Request (proxy -> lookup service, `GET /service/extension/nginx-lookup`):
//   Auth-Method, Auth-User (mail logins %-escaped), Auth-Pass (always "_password_"),
//   Auth-Protocol (imap|imapssl|pop3|pop3ssl|http|httpssl; "ssl" = TLS to the
//   upstream), Auth-Login-Attempt, X-Proxy-IP (the proxy's local address), Client-IP,
//   X-Proxy-Host (web), Auth-Zimbra-Admin / Auth-Zimbra-Zx, Auth-ID and
//   Auth-Admin-User/-Pass (gssapi, certauth).
// Response: always HTTP 200; `Auth-Status: OK` with Auth-Server, Auth-Port,
//   Auth-User, Auth-Cache-Alias (and Auth-ID/Auth-Pass for gssapi/certauth), or a
//   failure text in Auth-Status with Auth-Wait. See ../shared/spec/zimbra-proxy.md §1.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringproxy::lookup {

inline constexpr std::string_view kDefaultPath = "/service/extension/nginx-lookup";
// The literal Zimbra's proxies send as Auth-Pass: the lookup service routes, it never
// sees a password (spec §1.2); the mailbox server authenticates.
inline constexpr std::string_view kPasswordPlaceholder = "_password_";

struct Request {
  std::string_view method = "username";  // username | gssapi | zimbraId | certauth
  std::string_view user;                 // raw; escaped on the wire when escape_user
  bool escape_user = true;               // mail logins are %-escaped
  std::string_view protocol;             // imap | imapssl | pop3 | pop3ssl | http | httpssl
  int login_attempt = 1;
  std::string_view client_ip;
  std::string_view proxy_ip;
  std::string_view proxy_host;  // web: the Host header
  bool zimbra_admin = false;
  bool zimbra_zx = false;
  std::string_view auth_id;     // gssapi
  std::string_view admin_user;  // gssapi, certauth
  std::string_view admin_pass;
};

// Why WriteRequest refused: the value named holds a control character (0x00-0x1f or
// 0x7f). CR and LF would end its line and start a header of the sender's choosing (a
// web login, say, carrying "\r\nAuth-Zimbra-Admin: True"); NUL and the other controls
// are no header text either. An escaped user (mail logins) never holds one.
enum class RequestError : uint8_t {
  kNone,
  kBadPath,
  kBadHost,
  kBadMethod,
  kBadUser,
  kBadProtocol,
  kBadClientIp,
  kBadProxyIp,
  kBadProxyHost,
  kBadAuthId,
  kBadAdminUser,
  kBadAdminPass,
};

std::string_view RequestErrorName(RequestError e);  // "control character in Auth-User"
// The value behind `e` as the caller gave it (raw: escape it before logging), "" for kNone.
std::string_view RefusedValue(const Request& r, std::string_view host, std::string_view path,
                              RequestError e);

// Appends the request head. keep_alive=false writes HTTP/1.0 as Zimbra's nginx does.
// Checks every value first (the admin password and optional fields too, written or not);
// on a refusal appends nothing.
[[nodiscard]] RequestError WriteRequest(const Request& r, std::string_view host,
                                        std::string_view path, bool keep_alive, std::string* out);

// Space, '%' and control characters become %XX (nginx's NGX_ESCAPE_MAIL_AUTH).
std::string EscapeMailAuth(std::string_view s);
// Reverses it; false on a malformed escape.
bool UnescapeMailAuth(std::string_view s, std::string* out);

struct Header {
  std::string_view name;
  std::string_view value;
};

inline constexpr size_t kMaxHeaders = 32;
inline constexpr size_t kMaxHead = 8192;

enum class Error : uint8_t {
  kNone,
  kNeedMore,      // no complete head (and body) yet
  kHeadTooLong,   // no blank line within kMaxHead bytes
  kBadStartLine,  // not an HTTP/1.x status line or request line
  kBadHeader,     // a header line without a colon, or a bad Content-Length
  kTooManyHeaders,
  kBadStatus,  // a status other than 200 (the service always answers 200)
  kBodyTooLarge,
};

std::string_view ErrorName(Error e);

struct ParsedHead {
  Error error = Error::kNone;
  size_t consumed = 0;  // head plus body (when framed by Content-Length)
  std::array<Header, kMaxHeaders> headers{};
  size_t header_count = 0;
  bool keep_alive = true;
  bool http10 = false;
  std::string_view body;

  std::string_view Find(std::string_view name) const;      // case-insensitive, "" if absent
  std::string_view FindLast(std::string_view name) const;  // the last of repeats, as nginx
  bool Has(std::string_view name) const;
};

struct ParsedRequest : ParsedHead {
  std::string_view method;
  std::string_view target;
};

struct ParsedResponse : ParsedHead {
  int status = 0;
};

ParsedRequest ParseRequest(std::string_view data);
ParsedResponse ParseResponse(std::string_view data);

// What a response means for a lookup (spec §1.3).
enum class Outcome : uint8_t {
  kOk,            // Auth-Status: OK with a usable Auth-Server and Auth-Port
  kLoginFailed,   // any other Auth-Status: the text, Auth-Wait
  kInvalidRoute,  // OK but no usable server or port
  kInvalid,       // no Auth-Status at all
};

// The longest Auth-Wait honoured (the config's auth_wait_ms allows an hour too).
inline constexpr int kMaxAuthWaitS = 3600;

struct Answer {
  Outcome outcome = Outcome::kInvalid;
  std::string_view status;  // Auth-Status text
  std::string_view server;  // Auth-Server (IP or host name)
  uint16_t port = 0;
  std::string_view user;  // Auth-User, still escaped
  bool cache_alias = false;
  int wait_s = -1;  // Auth-Wait, -1 when absent; kMaxAuthWaitS at most
  std::string_view auth_id;
  std::string_view auth_pass;
};

Answer Interpret(const ParsedResponse& r);

// For the reference lookup service: writes a whole response. Control bytes in any value
// are written as %XX, so no value can end its header line.
struct Reply {
  bool ok = false;
  std::string_view status;  // failure text when !ok
  std::string_view server;
  uint16_t port = 0;
  std::string_view user;  // written escaped
  bool cache_alias = false;
  int wait_s = 10;
  std::string_view auth_id;
  std::string_view auth_pass;
};
void WriteReply(const Reply& r, bool keep_alive, std::string* out);

}  // namespace ringproxy::lookup
