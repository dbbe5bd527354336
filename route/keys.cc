#include "route/keys.h"

#include <charconv>

#include "core/ascii.h"
#include "fmt/format.h"
#include "route/lookup_codec.h"

namespace ringproxy::keys {

std::string MailAlias(std::string_view login, std::string_view local_ip) {
  return fmt::format("alias:user={};ip={}", login, local_ip);
}

std::string WebAlias(std::string_view name, std::string_view vhost) {
  return fmt::format("alias:user={};vhost={}", name, vhost);
}

std::string RouteByUser(std::string_view protocol, std::string_view account) {
  return fmt::format("route:proto={};user={}", protocol, account);
}

std::string RouteUnqualified(std::string_view protocol, std::string_view name,
                             std::string_view local_ip) {
  return fmt::format("route:proto={};user={}@{}", protocol, name, local_ip);
}

std::string RouteById(std::string_view protocol, std::string_view id, bool admin, bool zx) {
  return fmt::format("route:proto={};{}id={}", protocol,
                     admin ? "admin=1;"
                     : zx  ? "zx=1;"
                           : "",
                     id);
}

std::string IpThrottle(std::string_view protocol, std::string_view client_ip) {
  return fmt::format("throttle:proto={},ip={}", protocol.substr(0, 1), client_ip);
}

std::string UserThrottle(std::string_view account) {
  // One counter however the name's case was typed: Zimbra's lookup servlet answers with
  // the login as the client wrote it, and "John@" must not get an allowance of its own.
  std::string lower(account);
  for (char& c : lower) c = AsciiLower(c);
  return fmt::format("throttle:user={}", lookup::EscapeMailAuth(lower));
}

std::string WhitelistMemo(std::string_view client_ip) {
  return fmt::format("whitelist:ip={}", client_ip);
}

bool ParseRouteValue(std::string_view value, std::string* host, uint16_t* port) {
  size_t colon = value.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == value.size()) return false;
  std::string_view h = value.substr(0, colon);
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return false;
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string_view::npos) {
    return false;
  }
  // A stray bracket is never part of an address; refuse it here rather than at connect.
  if (h.find_first_of("[]") != std::string_view::npos) return false;
  uint32_t p = 0;
  std::string_view ps = value.substr(colon + 1);
  auto [end, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), p);
  if (ec != std::errc() || end != ps.data() + ps.size() || p == 0 || p > 65535) return false;
  *host = std::string(h);
  *port = static_cast<uint16_t>(p);
  return true;
}

std::string RouteValue(std::string_view host, uint16_t port) {
  if (host.find(':') != std::string_view::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

}  // namespace ringproxy::keys
