#include "proto/http/mail_mode.h"

#include "core/ascii.h"
#include "proto/http/head.h"
#include "proto/http/user_route.h"

namespace ringproxy::http {
namespace {

std::string Url(std::string_view scheme, std::string_view host, int port, std::string_view target) {
  std::string url(scheme);
  url += "://";
  url.append(HostWithoutPort(host));
  if (port != (scheme == "https" ? 443 : 80)) {
    url += ':';
    url += std::to_string(port);
  }
  url.append(target);
  return url;
}

// The target without its zminitmode arguments (and without '?' when none is left).
std::string WithoutInitMode(std::string_view target) {
  const size_t q = target.find('?');
  std::string out(target.substr(0, q));
  if (q == std::string_view::npos) return out;
  std::string_view query = target.substr(q + 1);
  char sep = '?';
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (!StartsWithIgnoreCase(pair, "zminitmode=") && !pair.empty()) {
      out += sep;
      out.append(pair);
      sep = '&';
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

}  // namespace

ModeRedirect MailModeRedirect(MailMode mode, bool https, const RequestHead& head,
                              std::string_view target, std::string_view host, int other_port) {
  ModeRedirect r;
  if (mode == MailMode::kBoth) return r;
  if (mode == MailMode::kRedirect) {
    if (!https) {
      r.status = 302;  // Zimbra's `rewrite ... redirect`: not cached for good, as a 301 would be
      r.location = Url("https", host, other_port, target);
    }
    return r;
  }
  std::string_view value;
  const bool authenticated = CookieValue(head, "ZM_AUTH_TOKEN", &value) && !value.empty();
  const std::string_view path = target.substr(0, target.find('?'));
  const bool logout = QueryArgument(target, "loginOp", &value) && EqualsIgnoreCase(value, "logout");
  const bool secure_only = logout || path.ends_with("changepass");
  if (https) {
    // Not what HTTP sent here on purpose: that would bounce between the two.
    if (authenticated && !secure_only && QueryArgument(target, "zminitmode", &value) &&
        EqualsIgnoreCase(value, "http")) {
      r.status = 302;
      r.location = Url("http", host, other_port, WithoutInitMode(target));
    }
    return r;
  }
  if (!authenticated || secure_only) {
    std::string to(target);
    if (!QueryArgument(target, "zminitmode", &value)) {
      to += target.find('?') == std::string_view::npos ? '?' : '&';
      to += "zminitmode=http";
    }
    r.status = 302;
    r.location = Url("https", host, other_port, to);
  }
  return r;
}

}  // namespace ringproxy::http
