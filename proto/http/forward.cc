#include "proto/http/forward.h"

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/ascii.h"

namespace ringproxy::http {

namespace {

// What a field name is to the proxy. Decided by its length first, so that a field
// costs one comparison or none (this runs for every field of every message).
enum class Role : uint8_t {
  kPass,
  kHop,         // ends at this hop, or is framing (written from what the proxy sends)
  kUpgrade,     // hop-by-hop unless tunnelling
  kOwn,         // a request field the proxy writes itself (or answers: Expect)
  kForwarding,  // what an earlier proxy says of the client: from a trusted peer only
};

// A field name against a lower-case one, with '_' read as '-': backends that map names
// to CGI-style variables (HTTP_X_FORWARDED_FOR) take "X_Forwarded_For" for the field
// itself, so such a spelling must not slip past what the proxy owns or drops.
constexpr bool NameIs(std::string_view name, std::string_view lower) {
  if (name.size() != lower.size()) return false;
  for (size_t i = 0; i < lower.size(); ++i) {
    const char c = AsciiLower(name[i]);
    if (c != lower[i] && !(c == '_' && lower[i] == '-')) return false;
  }
  return true;
}

Role RoleOf(std::string_view name) {
  switch (name.size()) {
    case 2:
      return NameIs(name, "te") ? Role::kHop : Role::kPass;
    case 4:
      return NameIs(name, "host") ? Role::kOwn : Role::kPass;
    case 6:
      return NameIs(name, "expect") ? Role::kOwn : Role::kPass;
    case 7:
      if (NameIs(name, "trailer")) return Role::kHop;
      return NameIs(name, "upgrade") ? Role::kUpgrade : Role::kPass;
    case 9:
      if (NameIs(name, "x-real-ip")) return Role::kOwn;
      return NameIs(name, "forwarded") ? Role::kOwn : Role::kPass;
    case 10:
      if (NameIs(name, "connection")) return Role::kHop;
      return NameIs(name, "keep-alive") ? Role::kHop : Role::kPass;
    case 12:
      return NameIs(name, "x-request-id") ? Role::kOwn : Role::kPass;
    case 14:
      // HTTP2-Settings belongs to an h2c Upgrade, which is never tunnelled.
      if (NameIs(name, "http2-settings")) return Role::kHop;
      return NameIs(name, "content-length") ? Role::kHop : Role::kPass;
    case 15:
      return NameIs(name, "x-forwarded-for") ? Role::kOwn : Role::kPass;
    case 16:
      if (NameIs(name, "proxy-connection")) return Role::kHop;
      return NameIs(name, "x-forwarded-host") || NameIs(name, "x-forwarded-port")
                 ? Role::kForwarding
                 : Role::kPass;
    case 17:
      if (NameIs(name, "transfer-encoding")) return Role::kHop;
      return NameIs(name, "x-forwarded-proto") ? Role::kOwn : Role::kPass;
    default:
      return Role::kPass;
  }
}

// The field names a message's Connection fields list (RFC 9110 §7.6.1): those fields
// end at this hop. Gathered once per message, not once per field.
class ConnectionOptions {
 public:
  explicit ConnectionOptions(const std::vector<Field>& fields) {
    ForEachOption(fields, [&](std::string_view option) {
      if (count_ < kMax) {
        options_[count_++] = option;
      } else {
        overflow_ = &fields;
      }
    });
  }
  bool Names(std::string_view name) const {
    for (size_t i = 0; i < count_; ++i) {
      if (EqualsIgnoreCase(options_[i], name)) return true;
    }
    return overflow_ != nullptr && NamedInAny(*overflow_, name);
  }

 private:
  static constexpr size_t kMax = 8;
  template <typename Fn>
  static void ForEachOption(const std::vector<Field>& fields, const Fn& fn) {
    for (const Field& f : fields) {
      if (f.name.size() == 10 && EqualsIgnoreCase(f.name, "connection")) {
        ForEachListElement(f.value, fn);
      }
    }
  }
  static bool NamedInAny(const std::vector<Field>& fields, std::string_view name) {
    bool named = false;
    ForEachOption(
        fields, [&](std::string_view option) { named = named || EqualsIgnoreCase(option, name); });
    return named;
  }
  std::string_view options_[kMax];
  size_t count_ = 0;
  const std::vector<Field>* overflow_ = nullptr;  // more options than kMax: scan them all
};

// Fields that never cross the proxy as received: hop-by-hop ones, the framing, those
// the proxy writes itself (requests), an untrusted client's claims about itself, and
// those the Connection fields name.
bool Dropped(const ConnectionOptions& connection, std::string_view name, bool keep_upgrade,
             bool request, bool trusted_peer) {
  switch (RoleOf(name)) {
    case Role::kHop:
      return true;
    case Role::kUpgrade:
      return !keep_upgrade;
    case Role::kOwn:
      if (request) return true;
      break;
    case Role::kForwarding:
      if (request && !trusted_peer) return true;
      break;
    case Role::kPass:
      break;
  }
  return connection.Names(name);
}

// Two field names for a backend that reads '_' as '-' (see NameIs).
bool SameField(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = a[i] == '_' ? '-' : AsciiLower(a[i]);
    const char y = b[i] == '_' ? '-' : AsciiLower(b[i]);
    if (x != y) return false;
  }
  return true;
}

// A field the rules remove or replace, in either spelling.
bool RuledOut(const HeaderRules* rules, std::string_view name) {
  if (rules == nullptr) return false;
  for (const std::string& r : rules->remove) {
    if (SameField(r, name)) return true;
  }
  for (const auto& [n, v] : rules->set) {
    if (SameField(n, name)) return true;
  }
  return false;
}

void AppendField(std::string_view name, std::string_view value, std::string* out) {
  // One resize and two copies: four appends cost twice as much, for every field.
  const size_t at = out->size();
  out->resize(at + name.size() + value.size() + 4);
  char* p = out->data() + at;
  // std::copy, not memcpy: an empty value may have a null data() (UBSan's complaint).
  p = std::copy(name.begin(), name.end(), p);
  *p++ = ':';
  *p++ = ' ';
  p = std::copy(value.begin(), value.end(), p);
  *p++ = '\r';
  *p = '\n';
}

void AppendFraming(BodyKind body, uint64_t length, std::string* out) {
  if (body == BodyKind::kLength) {
    AppendField("Content-Length", std::to_string(length), out);
  } else if (body == BodyKind::kChunked) {
    AppendField("Transfer-Encoding", "chunked", out);
  }
}

// A Forwarded "for" node (RFC 7239 §6): IPv6 in quotes and brackets.
void AppendForwardedFor(std::string_view ip, std::string* out) {
  if (ip.find(':') != std::string_view::npos) {
    out->append("for=\"[");
    out->append(ip);
    out->append("]\"");
  } else {
    out->append("for=");
    out->append(ip);
  }
}

void AppendRuleFields(const HeaderRules* rules, std::string* out) {
  if (rules == nullptr) return;
  for (const auto& [name, value] : rules->set) AppendField(name, value, out);
}

}  // namespace

bool TunnelsUpgrade(const RequestHead& in) {
  // A second Upgrade field extends the list ("h2c" then "websocket" is "h2c, websocket"):
  // only a lone "websocket" is tunnelled, or an h2c upgrade would ride along.
  return in.version_minor == 1 && in.semantics.connection_upgrade &&
         !in.semantics.upgrade_repeated &&
         EqualsIgnoreCase(TrimOws(in.semantics.upgrade), "websocket");
}

bool ProxyOwnsField(std::string_view name, bool request) {
  const Role role = RoleOf(name);
  return role == Role::kHop || role == Role::kUpgrade || (role == Role::kOwn && request);
}

void WriteRequestHead(const RequestHead& in, const ForwardRequest& f, std::string* out) {
  out->append(in.method);
  out->append(" ");
  out->append(f.target);
  out->append(" HTTP/1.1\r\n");
  AppendField("Host", f.host, out);
  std::string forwarded_for;  // the trusted peer's X-Forwarded-For list
  std::string forwarded;      // and its Forwarded list
  std::string_view proto;     // and the scheme its client used
  const ConnectionOptions connection(in.fields);
  for (const Field& field : in.fields) {
    if (f.trusted_peer) {
      if (EqualsIgnoreCase(field.name, "x-forwarded-for")) {
        // Empty elements ("a,,b", "a,") name nobody: the list and X-Real-IP skip them.
        ForEachListElement(field.value, [&](std::string_view address) {
          if (!forwarded_for.empty()) forwarded_for += ", ";
          forwarded_for.append(address);
        });
      } else if (EqualsIgnoreCase(field.name, "forwarded") && !field.value.empty()) {
        if (!forwarded.empty()) forwarded += ", ";
        forwarded.append(field.value);
      } else if (proto.empty() && EqualsIgnoreCase(field.name, "x-forwarded-proto")) {
        proto = TrimOws(field.value);
      }
    }
    if (f.request_id.empty() && EqualsIgnoreCase(field.name, "x-request-id")) {
      // Without ids of our own, the client's (or an earlier proxy's) goes on.
      if (!RuledOut(f.rules, field.name)) AppendField(field.name, field.value, out);
      continue;
    }
    if (Dropped(connection, field.name, f.upgrade, /*request=*/true, f.trusted_peer) ||
        RuledOut(f.rules, field.name)) {
      continue;
    }
    AppendField(field.name, field.value, out);
  }
  AppendRuleFields(f.rules, out);
  if (f.upgrade) AppendField("Connection", "upgrade", out);
  AppendFraming(f.body, f.content_length, out);
  // The client as the trusted peer saw it: the last address of its list.
  // A copy: the list grows below.
  std::string real_ip(f.client_ip);
  if (!forwarded_for.empty()) {
    std::string_view list = forwarded_for;
    const size_t comma = list.rfind(',');
    real_ip = TrimOws(comma == std::string_view::npos ? list : list.substr(comma + 1));
    forwarded_for += ", ";
  }
  forwarded_for.append(f.client_ip);
  AppendField("X-Forwarded-For", forwarded_for, out);
  AppendField("X-Real-IP", real_ip, out);
  // Written in place: the usual value is too long for the short-string buffer.
  out->append("Forwarded: ");
  if (!forwarded.empty()) {
    out->append(forwarded);
    out->append(", ");
  }
  AppendForwardedFor(f.client_ip, out);
  out->append(";proto=");
  out->append(f.scheme);
  out->append("\r\n");
  // A trusted peer that terminated TLS itself knows the scheme better than we do.
  AppendField("X-Forwarded-Proto", proto.empty() ? f.scheme : proto, out);
  if (!f.request_id.empty()) AppendField("X-Request-ID", f.request_id, out);
  out->append("\r\n");
}

void RequestIds::Next(std::string* out) {
  // Knuth's MMIX multiplier and increment: period 2^64.
  if (++count_ == 0) prefix_ = prefix_ * 6364136223846793005ULL + 1442695040888963407ULL;
  constexpr char kHex[] = "0123456789abcdef";
  char id[24];
  for (int i = 0; i < 16; ++i) id[i] = kHex[(prefix_ >> (60 - 4 * i)) & 0xf];
  for (int i = 0; i < 8; ++i) id[16 + i] = kHex[(count_ >> (28 - 4 * i)) & 0xf];
  out->assign(id, sizeof id);
}

std::string RewriteLocation(std::string_view location, std::string_view https_host,
                            std::string_view upstream) {
  constexpr std::string_view kHttp = "http://";
  constexpr std::string_view kHttps = "https://";
  if (https_host.empty()) return std::string(location);
  std::string_view after;
  if (StartsWithIgnoreCase(location, kHttp)) {
    after = location.substr(kHttp.size());
  } else if (StartsWithIgnoreCase(location, kHttps)) {
    // An https Location naming the upstream itself (the admin console's :7071) is no
    // more reachable for the client than an http one.
    after = location.substr(kHttps.size());
  } else {
    return std::string(location);
  }
  const size_t end = after.find_first_of("/?#");
  const std::string_view authority = after.substr(0, end);
  const std::string_view rest = end == std::string_view::npos ? "" : after.substr(end);
  // The Host's name alone ("[v6]" or a name, without a port) and the upstream's port.
  const std::string_view host_name = HostWithoutPort(https_host);
  const size_t colon = upstream.rfind(':');
  const std::string_view upstream_port =
      colon == std::string_view::npos ? std::string_view() : upstream.substr(colon);
  const bool ours =
      EqualsIgnoreCase(authority, https_host) ||
      (!upstream.empty() && EqualsIgnoreCase(authority, upstream)) ||
      (!upstream_port.empty() && authority.size() == host_name.size() + upstream_port.size() &&
       EqualsIgnoreCase(authority.substr(0, host_name.size()), host_name) &&
       authority.substr(host_name.size()) == upstream_port);
  if (!ours) return std::string(location);
  std::string out = "https://";
  out.append(https_host);
  if (rest.empty() || rest.front() != '/') out += '/';
  out.append(rest);
  return out;
}

std::string FormatHttpDate(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  tm parts;
  gmtime_r(&t, &parts);
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char text[40];
  const int n = snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                         kDays[parts.tm_wday], parts.tm_mday, kMonths[parts.tm_mon],
                         parts.tm_year + 1900, parts.tm_hour, parts.tm_min, parts.tm_sec);
  return std::string(text, n > 0 ? static_cast<size_t>(n) : 0);
}

void WriteResponseHead(const ResponseHead& in, const ForwardResponse& f, std::string* out) {
  out->append("HTTP/1.1 ");
  out->append(std::to_string(in.status));
  out->append(" ");
  out->append(in.reason);
  out->append("\r\n");
  const ConnectionOptions connection(in.fields);
  bool dated = false;
  for (const Field& field : in.fields) {
    if (Dropped(connection, field.name, f.upgrade, /*request=*/false, /*trusted_peer=*/false) ||
        RuledOut(f.rules, field.name)) {
      continue;
    }
    dated = dated || (field.name.size() == 4 && EqualsIgnoreCase(field.name, "date"));
    if (!f.https_host.empty() && EqualsIgnoreCase(field.name, "location")) {
      AppendField(field.name, RewriteLocation(field.value, f.https_host, f.upstream), out);
      continue;
    }
    AppendField(field.name, field.value, out);
  }
  if (f.interim) {
    out->append("\r\n");
    return;
  }
  // A rule that sets or removes Date has the last word on it.
  if (!dated && !f.date.empty() && !RuledOut(f.rules, "Date")) AppendField("Date", f.date, out);
  AppendRuleFields(f.rules, out);
  AppendFraming(f.body, f.content_length, out);
  // A response without a body keeps what its Content-Length said of the representation
  // (HEAD, 304), written once; a 1xx or 204 has none (RFC 9110 §8.6).
  if (f.body == BodyKind::kNone && in.declared_length >= 0 && in.status >= 200 &&
      in.status != 204) {
    AppendField("Content-Length", std::to_string(in.declared_length), out);
  }
  if (f.upgrade) {
    AppendField("Connection", "upgrade", out);
  } else if (!f.keep_alive) {
    AppendField("Connection", "close", out);
  } else if (f.client_version_minor == 0) {
    AppendField("Connection", "keep-alive", out);
  }
  out->append("\r\n");
}

}  // namespace ringproxy::http
