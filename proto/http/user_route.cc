#include "proto/http/user_route.h"

#include <algorithm>
#include <string>

#include "core/ascii.h"
#include "proto/sasl/sasl.h"

namespace ringproxy::http {

namespace {

// %XX decoding; false on a bad escape or a decoded control character.
bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = HexDigitValue(in[i + 1]);
      const int lo = HexDigitValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
    out->push_back(c);
  }
  return true;
}

std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

// The first Authorization field only: the one the mailbox server reads (a second one
// must not route the request by credentials the server never sees).
bool Authorization(const RequestHead& head, std::string_view scheme,
                   std::string_view* credentials) {
  for (const Field& f : head.fields) {
    if (!EqualsIgnoreCase(f.name, "authorization")) continue;
    if (f.value.size() > scheme.size() && StartsWithIgnoreCase(f.value, scheme) &&
        f.value[scheme.size()] == ' ') {
      *credentials = TrimOws(f.value.substr(scheme.size() + 1));
      return true;
    }
    return false;
  }
  return false;
}

// The user segment after `prefix` in the path ("/home/" + "~john/x" -> "john"); ""
// when there is none, or "~" alone (which Zimbra routes by token instead).
bool PathUser(std::string_view path, std::string_view prefix, bool tilde_allowed,
              std::string* user) {
  if (!path.starts_with(prefix)) return false;
  std::string_view segment = path.substr(prefix.size());
  segment = segment.substr(0, segment.find('/'));
  // Decoded first, as nginx's URI is: "%7Ejohn" is "~john".
  if (!PercentDecode(segment, user)) return false;
  if (tilde_allowed && user->starts_with('~')) user->erase(0, 1);
  return !user->empty();
}

// ActiveSync and EWS: the Basic user (DOMAIN\user -> user@DOMAIN), else User=.
bool BasicUser(const RequestHead& head, std::string_view target, std::string* user) {
  std::string_view credentials;
  if (Authorization(head, "Basic", &credentials)) {
    std::string decoded;
    if (sasl::Base64Decode(credentials, &decoded)) {
      std::string_view name = std::string_view(decoded).substr(0, decoded.find(':'));
      const size_t backslash = name.find('\\');
      if (backslash != std::string_view::npos) {
        *user =
            std::string(name.substr(backslash + 1)) + "@" + std::string(name.substr(0, backslash));
      } else {
        *user = std::string(name);
      }
      bool clean = !name.empty() && backslash != 0 && backslash + 1 != name.size();
      for (char c : *user) clean = clean && static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
      if (clean) return true;
    }
  }
  std::string_view arg;
  return QueryArgument(target, "User", &arg) && PercentDecode(arg, user) && !user->empty();
}

bool Base64UrlDecode(std::string_view in, std::string* out) {
  std::string standard(in);
  for (char& c : standard) {
    if (c == '+' || c == '/' || c == '=') return false;  // not base64url
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (standard.size() % 4 != 0) standard.push_back('=');
  return sasl::Base64Decode(standard, out);
}

// A JSON string at `*pos` (on its opening quote); escapes decoded, \u only for ASCII.
bool JsonString(std::string_view json, size_t* pos, std::string* out) {
  out->clear();
  size_t i = *pos + 1;
  for (; i < json.size(); ++i) {
    const char c = json[i];
    if (c == '"') {
      *pos = i + 1;
      return true;
    }
    if (static_cast<unsigned char>(c) < 0x20) return false;
    if (c != '\\') {
      out->push_back(c);
      continue;
    }
    if (++i >= json.size()) return false;
    switch (json[i]) {
      case '"':
      case '\\':
      case '/':
        out->push_back(json[i]);
        break;
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'u': {
        if (i + 4 >= json.size()) return false;
        int v = 0;
        for (int k = 1; k <= 4; ++k) {
          const int d = HexDigitValue(json[i + static_cast<size_t>(k)]);
          if (d < 0) return false;
          v = v * 16 + d;
        }
        if (v >= 0x80) return false;  // not in an account id
        out->push_back(static_cast<char>(v));
        i += 4;
        break;
      }
      default:
        return false;
    }
  }
  return false;
}

void SkipSpace(std::string_view json, size_t* pos) {
  while (*pos < json.size() &&
         (json[*pos] == ' ' || json[*pos] == '\t' || json[*pos] == '\n' || json[*pos] == '\r')) {
    ++*pos;
  }
}

// Skips one JSON value (nested objects and arrays by depth, strings by their quotes).
bool SkipValue(std::string_view json, size_t* pos) {
  int depth = 0;
  std::string scratch;
  while (*pos < json.size()) {
    const char c = json[*pos];
    if (c == '"') {
      if (!JsonString(json, pos, &scratch)) return false;
    } else if (c == '{' || c == '[') {
      ++depth;
      ++*pos;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return true;  // the end of the enclosing object
      --depth;
      ++*pos;
    } else if (c == ',' && depth == 0) {
      return true;
    } else {
      ++*pos;
    }
    if (depth == 0 && *pos < json.size()) {
      SkipSpace(json, pos);
      if (*pos >= json.size() || json[*pos] == ',' || json[*pos] == '}') return true;
    }
  }
  return depth == 0;
}

// The string member `key` of a top-level JSON object.
bool JsonMember(std::string_view json, std::string_view key, std::string* value) {
  size_t pos = 0;
  SkipSpace(json, &pos);
  if (pos >= json.size() || json[pos] != '{') return false;
  ++pos;
  std::string name;
  for (;;) {
    SkipSpace(json, &pos);
    if (pos >= json.size() || json[pos] != '"' || !JsonString(json, &pos, &name)) return false;
    SkipSpace(json, &pos);
    if (pos >= json.size() || json[pos] != ':') return false;
    ++pos;
    SkipSpace(json, &pos);
    if (pos >= json.size()) return false;
    if (name == key) return json[pos] == '"' && JsonString(json, &pos, value);
    if (!SkipValue(json, &pos)) return false;
    SkipSpace(json, &pos);
    if (pos >= json.size() || json[pos] != ',') return false;
    ++pos;
  }
}

}  // namespace

bool QueryArgument(std::string_view target, std::string_view name, std::string_view* value) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return false;
  std::string_view query = target.substr(q + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && EqualsIgnoreCase(pair.substr(0, eq), name)) {
      *value = pair.substr(eq + 1);
      return true;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

namespace {

// A query argument's name that carries a bearer token, compared decoded as the
// mailbox's servlet reads names ("zauth%74oken").
bool IsTokenName(std::string_view name) {
  std::string decoded;
  if (name.find('%') != std::string_view::npos && PercentDecode(name, &decoded)) name = decoded;
  return EqualsIgnoreCase(name, "zauthtoken") || EqualsIgnoreCase(name, "zjwt");
}

}  // namespace

bool WithoutTokens(std::string_view target, std::string* out) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return false;
  // Built only once a token is found: most targets are logged as they are.
  std::string result;
  bool redacted = false;
  size_t copied = 0;  // target[0, copied) is in result
  for (size_t at = q + 1; at <= target.size();) {
    const size_t amp = std::min(target.find('&', at), target.size());
    const std::string_view pair = target.substr(at, amp - at);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && IsTokenName(pair.substr(0, eq))) {
      result.append(target.substr(copied, at + eq + 1 - copied)).append("redacted");
      copied = amp;
      redacted = true;
    }
    at = amp + 1;
  }
  if (!redacted) return false;
  result.append(target.substr(copied));
  *out = std::move(result);
  return true;
}

bool CookieValue(const RequestHead& head, std::string_view name, std::string_view* value) {
  for (const Field& f : head.fields) {
    if (!EqualsIgnoreCase(f.name, "cookie")) continue;
    std::string_view rest = f.value;
    while (!rest.empty()) {
      const size_t semi = rest.find(';');
      std::string_view pair = TrimOws(rest.substr(0, semi));
      const size_t eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
        *value = pair.substr(eq + 1);
        return true;
      }
      if (semi == std::string_view::npos) break;
      rest.remove_prefix(semi + 1);
    }
  }
  return false;
}

std::string_view UserSourceName(UserSource s) {
  switch (s) {
    case UserSource::kNone:
      return "none";
    case UserSource::kRestPath:
      return "rest-path";
    case UserSource::kActiveSync:
      return "activesync";
    case UserSource::kEws:
      return "ews";
    case UserSource::kCalDav:
      return "caldav";
    case UserSource::kAuthTokenCookie:
      return "auth-token";
    case UserSource::kAuthTokenArgument:
      return "auth-token-argument";
    case UserSource::kJwt:
      return "jwt";
    case UserSource::kAdminTokenCookie:
      return "admin-token";
  }
  return "?";
}

std::string AuthTokenId(std::string_view token) {
  const size_t first = token.find('_');
  if (first == std::string_view::npos) return "";
  const size_t second = token.find('_', first + 1);
  if (second == std::string_view::npos) return "";
  const std::string_view hex = token.substr(second + 1);
  if (hex.empty() || hex.size() % 2 != 0) return "";
  std::string data;
  data.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = HexDigitValue(hex[i]);
    const int lo = HexDigitValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return "";
    data.push_back(static_cast<char>(hi * 16 + lo));
  }
  // key=len:value; pairs, the value exactly len bytes.
  std::string_view rest = data;
  while (!rest.empty()) {
    const size_t eq = rest.find('=');
    const size_t colon = rest.find(':');
    if (eq == std::string_view::npos || colon == std::string_view::npos || colon < eq) return "";
    size_t len = 0;
    const std::string_view digits = rest.substr(eq + 1, colon - eq - 1);
    if (digits.empty() || digits.size() > 6) return "";
    for (char c : digits) {
      if (c < '0' || c > '9') return "";
      len = len * 10 + static_cast<size_t>(c - '0');
    }
    if (colon + 1 + len > rest.size()) return "";
    const std::string_view key = rest.substr(0, eq);
    const std::string_view value = rest.substr(colon + 1, len);
    rest.remove_prefix(colon + 1 + len);
    if (!rest.empty()) {
      if (rest.front() != ';') return "";
      rest.remove_prefix(1);
    }
    if (key == "id") {
      // A control byte disqualifies it, as a user from any other source.
      for (char c : value) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return "";
      }
      return std::string(value);
    }
  }
  return "";
}

std::string JwtSubject(std::string_view jwt) {
  const size_t first = jwt.find('.');
  if (first == std::string_view::npos) return "";
  const size_t second = jwt.find('.', first + 1);
  if (second == std::string_view::npos) return "";
  std::string payload;
  if (!Base64UrlDecode(jwt.substr(first + 1, second - first - 1), &payload)) return "";
  std::string sub;
  if (!JsonMember(payload, "sub", &sub)) return "";
  for (char c : sub) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return "";
  }
  return sub;
}

bool HasEncodedCrLf(std::string_view target) {
  for (size_t i = 0; i + 2 < target.size(); ++i) {
    if (target[i] == '%' && target[i + 1] == '0' &&
        (AsciiLower(target[i + 2]) == 'a' || AsciiLower(target[i + 2]) == 'd')) {
      return true;
    }
  }
  return false;
}

UserRoute FindUserRoute(const RequestHead& head, std::string_view target, bool admin) {
  UserRoute r;
  std::string_view value;
  if (admin) {
    if (CookieValue(head, "ZM_ADMIN_AUTH_TOKEN", &value)) {
      r.user = AuthTokenId(value);
      if (!r.user.empty()) {
        r.by = RouteBy::kZimbraId;
        r.source = UserSource::kAdminTokenCookie;
      }
    }
    return r;
  }
  const std::string_view path = PathOf(target);
  auto found = [&r](RouteBy by, UserSource source) {
    r.by = by;
    r.source = source;
    return r;
  };
  if (PathUser(path, "/home/", true, &r.user) || PathUser(path, "/service/home/", true, &r.user)) {
    return found(RouteBy::kUsername, UserSource::kRestPath);
  }
  // As Zimbra's proxy: ActiveSync's prefix in its own case, EWS's in any case.
  if (path.starts_with("/Microsoft-Server-ActiveSync")) {
    if (BasicUser(head, target, &r.user)) return found(RouteBy::kUsername, UserSource::kActiveSync);
  } else if (StartsWithIgnoreCase(path, "/ews/Exchange.asmx")) {
    if (BasicUser(head, target, &r.user)) return found(RouteBy::kUsername, UserSource::kEws);
  }
  if (PathUser(path, "/dav/", false, &r.user) ||
      PathUser(path, "/principals/users/", false, &r.user)) {
    return found(RouteBy::kUsername, UserSource::kCalDav);
  }
  if (CookieValue(head, "ZM_AUTH_TOKEN", &value)) {
    r.user = AuthTokenId(value);
    if (!r.user.empty()) return found(RouteBy::kZimbraId, UserSource::kAuthTokenCookie);
  }
  if (QueryArgument(target, "zauthtoken", &value)) {
    r.user = AuthTokenId(value);
    if (!r.user.empty()) return found(RouteBy::kZimbraId, UserSource::kAuthTokenArgument);
  }
  if (Authorization(head, "Bearer", &value) || QueryArgument(target, "zjwt", &value)) {
    r.user = JwtSubject(value);
    if (!r.user.empty()) return found(RouteBy::kZimbraId, UserSource::kJwt);
  }
  r.user.clear();
  return r;
}

}  // namespace ringproxy::http
