// Zimbra's memcached key families (../shared/spec/zimbra-proxy.md §2.2), built in one
// place so that ringproxy and Zimbra's own proxies and tools (zmproxypurge) agree on
// every byte. Values: routes are "IP:port" ("[v6]:port"), aliases the account name.
#pragma once

#include <string>
#include <string_view>

namespace ringproxy::keys {

// alias:user=<login>;ip=<proxy local IP>   (mail)
std::string MailAlias(std::string_view login, std::string_view local_ip);
// alias:user=<name>;vhost=<Host header>    (web)
std::string WebAlias(std::string_view name, std::string_view vhost);
// route:proto=<proto>;user=<account>
std::string RouteByUser(std::string_view protocol, std::string_view account);
// route:proto=<proto>;user=<name>@<proxy local IP>   (unqualified names)
std::string RouteUnqualified(std::string_view protocol, std::string_view name,
                             std::string_view local_ip);
// route:proto=<proto>;[admin=1;|zx=1;]id=<zimbraId>
std::string RouteById(std::string_view protocol, std::string_view id, bool admin, bool zx);
// throttle:proto=<i|p>,ip=<client IP>
std::string IpThrottle(std::string_view protocol, std::string_view client_ip);
// throttle:user=<account, %-escaped>
std::string UserThrottle(std::string_view account);
// whitelist:ip=<client IP>
std::string WhitelistMemo(std::string_view client_ip);

// "IP:port" / "[v6]:port" -> host and port; false when malformed.
bool ParseRouteValue(std::string_view value, std::string* host, uint16_t* port);
std::string RouteValue(std::string_view host, uint16_t port);

}  // namespace ringproxy::keys
