#include "proto/http/forward.h"

#include <span>
#include <string>

#include "core/ascii.h"

namespace ringproxy::http {

namespace {

// Fields that end at this hop, and the framing (written from what the proxy sends).
constexpr std::string_view kHopByHop[] = {
    "connection",        "keep-alive", "proxy-connection", "te",
    "transfer-encoding", "trailer",    "content-length"};

// Request fields the proxy writes itself (or answers: Expect).
constexpr std::string_view kRequestOwn[] = {"host",      "x-forwarded-for",   "x-real-ip",
                                            "forwarded", "x-forwarded-proto", "x-request-id",
                                            "expect"};

// Names a field "Connection" lists (RFC 9110 §7.6.1): those fields end at this hop.
bool NamedByConnection(const std::vector<Field>& fields, std::string_view name) {
  bool named = false;
  for (const Field& f : fields) {
    if (!EqualsIgnoreCase(f.name, "connection")) continue;
    ForEachListElement(
        f.value, [&](std::string_view option) { named = named || EqualsIgnoreCase(option, name); });
  }
  return named;
}

// Fields that never cross the proxy as received: hop-by-hop ones, the framing (written
// from what the proxy sends), and those the proxy writes itself.
bool Dropped(const std::vector<Field>& fields, std::string_view name, bool keep_upgrade,
             std::span<const std::string_view> own) {
  for (std::string_view h : kHopByHop) {
    if (EqualsIgnoreCase(name, h)) return true;
  }
  if (EqualsIgnoreCase(name, "upgrade")) return !keep_upgrade;
  for (std::string_view o : own) {
    if (EqualsIgnoreCase(name, o)) return true;
  }
  return NamedByConnection(fields, name);
}

// A field the rules remove or replace.
bool RuledOut(const HeaderRules* rules, std::string_view name) {
  if (rules == nullptr) return false;
  for (const std::string& r : rules->remove) {
    if (EqualsIgnoreCase(r, name)) return true;
  }
  for (const auto& [n, v] : rules->set) {
    if (EqualsIgnoreCase(n, name)) return true;
  }
  return false;
}

void AppendField(std::string_view name, std::string_view value, std::string* out) {
  out->append(name);
  out->append(": ");
  out->append(value);
  out->append("\r\n");
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

bool ProxyOwnsField(std::string_view name, bool request) {
  if (EqualsIgnoreCase(name, "upgrade")) return true;
  for (std::string_view h : kHopByHop) {
    if (EqualsIgnoreCase(name, h)) return true;
  }
  if (request) {
    for (std::string_view o : kRequestOwn) {
      if (EqualsIgnoreCase(name, o)) return true;
    }
  }
  return false;
}

void WriteRequestHead(const RequestHead& in, const ForwardRequest& f, std::string* out) {
  out->append(in.method);
  out->append(" ");
  out->append(f.target);
  out->append(" HTTP/1.1\r\n");
  AppendField("Host", f.host, out);
  std::string forwarded_for;  // the trusted peer's X-Forwarded-For list
  std::string forwarded;      // and its Forwarded list
  for (const Field& field : in.fields) {
    if (f.trusted_peer && EqualsIgnoreCase(field.name, "x-forwarded-for") && !field.value.empty()) {
      if (!forwarded_for.empty()) forwarded_for += ", ";
      forwarded_for.append(field.value);
    }
    if (f.trusted_peer && EqualsIgnoreCase(field.name, "forwarded") && !field.value.empty()) {
      if (!forwarded.empty()) forwarded += ", ";
      forwarded.append(field.value);
    }
    if (Dropped(in.fields, field.name, f.upgrade, kRequestOwn) || RuledOut(f.rules, field.name)) {
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
  if (!forwarded.empty()) forwarded += ", ";
  AppendForwardedFor(f.client_ip, &forwarded);
  forwarded += ";proto=";
  forwarded.append(f.scheme);
  AppendField("Forwarded", forwarded, out);
  AppendField("X-Forwarded-Proto", f.scheme, out);
  if (!f.request_id.empty()) AppendField("X-Request-ID", f.request_id, out);
  out->append("\r\n");
}

void WriteResponseHead(const ResponseHead& in, const ForwardResponse& f, std::string* out) {
  out->append("HTTP/1.1 ");
  out->append(std::to_string(in.status));
  out->append(" ");
  out->append(in.reason);
  out->append("\r\n");
  for (const Field& field : in.fields) {
    // A response without a body keeps what its Content-Length says of the
    // representation (HEAD, 304); every other framing is the proxy's.
    if (f.body == BodyKind::kNone && EqualsIgnoreCase(field.name, "content-length")) {
      AppendField(field.name, field.value, out);
      continue;
    }
    if (Dropped(in.fields, field.name, f.upgrade, {}) || RuledOut(f.rules, field.name)) continue;
    AppendField(field.name, field.value, out);
  }
  AppendRuleFields(f.rules, out);
  AppendFraming(f.body, f.content_length, out);
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
