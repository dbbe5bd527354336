#include "proto/http_config.h"

#include <memory>
#include <string>

#include "core/ascii.h"
#include "core/status_util.h"
#include "fmt/format.h"
#include "route/config.h"
#include "tls/config.h"

namespace ringproxy {
namespace {

// Requests go to an HTTP listener's groups as HTTP/1.1: over TLS, a group may offer its
// servers only http/1.x by ALPN (one that chose h2 would be sent HTTP/1.1 bytes).
void CheckUpstreamAlpn(ConfigTable& t, std::string_view key, const UpstreamGroupConfig& u) {
  const auto* tls = u.extensions.Get<TlsUpstreamConfig>(kTlsTable);
  if (tls == nullptr) return;
  for (const std::string& name : tls->context->settings().alpn) {
    if (!IsHttp1Alpn(name)) {
      t.Error(key, fmt::format("[[upstream]] \"{}\" offers '{}' by ALPN: HTTP listeners speak "
                               "only http/1.1 to their upstreams",
                               u.name, name));
      return;
    }
  }
}

// The group `key` names, from the groups read before the listeners, its ALPN checked;
// null when the key is absent or names none.
const UpstreamGroupConfig* NamedGroup(ConfigTable& t, std::string_view key, const Config& so_far) {
  std::string name;
  if (!t.String(key, &name)) return nullptr;
  for (const UpstreamGroupConfig& u : so_far.upstreams) {
    if (u.name == name) {
      CheckUpstreamAlpn(t, key, u);
      return &u;
    }
  }
  return nullptr;
}

// The index of the group `key` names; -1 (with the error) when there is none.
int GroupIndex(ConfigTable& t, std::string_view key, const Config& so_far) {
  if (const UpstreamGroupConfig* u = NamedGroup(t, key, so_far)) return u->index;
  if (std::string name; t.String(key, &name)) {
    t.Error(key, fmt::format("no [[upstream]] named \"{}\"", name));
  }
  return -1;
}

// One location table into `server`; errors go to the table.
void ReadLocation(ConfigTable& t, const Config& so_far, HttpVirtualServer* server) {
  static constexpr std::pair<std::string_view, http::LocationKind> kKinds[] = {
      {"exact", http::LocationKind::kExact},
      {"prefix", http::LocationKind::kPrefix},
      {"regex", http::LocationKind::kRegex},
      {"regex_nocase", http::LocationKind::kRegexIgnoreCase}};
  HttpLocation loc;
  int kinds = 0;
  const int index = static_cast<int>(server->locations.size());
  for (const auto& [key, kind] : kKinds) {
    if (!t.Has(key)) continue;
    ++kinds;
    std::string pattern;
    std::string error;
    if (!t.String(key, &pattern)) continue;
    if (!server->matcher.Add(kind, pattern, index, &error)) t.Error(key, error);
    loc.name = fmt::format("{} {}", key, pattern);
    if (kind == http::LocationKind::kPrefix) loc.prefix = pattern;
  }
  if (kinds != 1) t.Fail("a location needs exactly one of exact, prefix, regex, regex_nocase");
  if (t.Has("upstream")) loc.upstream_index = GroupIndex(t, "upstream", so_far);
  t.Int("upstream_timeout_ms", &loc.upstream_timeout_ms, 1, 86'400'000);
  t.Bool("node_from_path", &loc.node_from_path);
  if (loc.node_from_path && loc.prefix.empty()) {
    t.Error("node_from_path", "needs a prefix location (the node is the segment after it)");
  } else if (loc.node_from_path && !loc.prefix.ends_with('/')) {
    // "/docs" would read the node from "/docs/doc2/x" as "" and answer 404 to everything.
    t.Error("node_from_path", fmt::format("needs a prefix ending in '/' (\"{}/\")", loc.prefix));
  }
  if (t.Has("route_by_user")) {
    bool b = false;
    t.Bool("route_by_user", &b);
    loc.route_by_user = b ? 1 : 0;
  }
  t.Bool("zx", &loc.zx);
  if (loc.zx && loc.route_by_user == 0) {
    t.Error("zx", "routes by the user's token: route_by_user cannot be false");
  } else if (loc.zx) {
    loc.route_by_user = 1;
  }
  if (t.Has("redirect") && t.String("redirect", &loc.redirect_to)) {
    loc.redirect_status = 302;
    t.Int("redirect_status", &loc.redirect_status, 301, 308);
    if (loc.redirect_status != 301 && loc.redirect_status != 302 && loc.redirect_status != 307 &&
        loc.redirect_status != 308) {
      t.Error("redirect_status", "expected 301, 302, 307 or 308");
    }
    if (loc.redirect_to.empty() || loc.redirect_to.find_first_of("\r\n") != std::string::npos) {
      t.Error("redirect", "expected a URL on one line");
    }
  } else if (t.Has("redirect_status")) {
    t.Error("redirect_status", "only with redirect");
  }
  server->locations.push_back(std::move(loc));
}

// [[…rewrite]] tables, in order.
void ReadRewrites(ConfigTable& t, HttpVirtualServer* server) {
  for (ConfigTable* rt : t.Tables("rewrite")) {
    std::string pattern;
    std::string replacement;
    int status = 0;
    bool last = false;
    rt->String("regex", &pattern, true);
    rt->String("replace", &replacement, true);
    rt->Int("redirect_status", &status, 301, 308);
    rt->Bool("last", &last);
    std::string error;
    if (rt->Has("regex") && rt->Has("replace") &&
        !server->rewrites.Add(pattern, replacement, status, last, &error)) {
      rt->Fail(error);
    }
  }
}

// `<prefix>_remove = ["Name", …]` and `<prefix>_set = ["Name: value", …]`.
void ReadHeaderRules(ConfigTable& t, std::string_view prefix, bool request,
                     http::HeaderRules* rules) {
  const std::string remove_key = fmt::format("{}_remove", prefix);
  const std::string set_key = fmt::format("{}_set", prefix);
  auto check_name = [&](std::string_view key, std::string_view name) {
    if (!http::IsFieldName(name)) {
      t.Error(key, fmt::format("'{}' is not a field name", name));
    } else if (http::ProxyOwnsField(name, request)) {
      t.Error(key, fmt::format("{} is written by the proxy itself", name));
    }
  };
  t.StringList(remove_key, &rules->remove);
  for (const std::string& name : rules->remove) check_name(remove_key, name);
  std::vector<std::string> set;
  t.StringList(set_key, &set);
  for (const std::string& line : set) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) {
      t.Error(set_key, fmt::format("expected \"Name: value\", got '{}'", line));
      continue;
    }
    std::string name = line.substr(0, colon);
    std::string value(TrimOws(std::string_view(line).substr(colon + 1)));
    check_name(set_key, name);
    if (!http::IsCleanFieldValue(value)) {
      t.Error(set_key, fmt::format("the value of {} has a control character", name));
    }
    rules->set.emplace_back(std::move(name), std::move(value));
  }
}

// What a server (or a listener without servers) holds besides its names and locations.
void ReadServerRules(ConfigTable& t, HttpVirtualServer* server) {
  ReadRewrites(t, server);
  ReadHeaderRules(t, "request_headers", true, &server->request_headers);
  ReadHeaderRules(t, "response_headers", false, &server->response_headers);
}

// A listener's own server rules (with no [[listener.server]]).
bool HasServerRules(const ConfigTable& t) {
  for (std::string_view key : {"rewrite", "request_headers_remove", "request_headers_set",
                               "response_headers_remove", "response_headers_set"}) {
    if (t.Has(key)) return true;
  }
  return false;
}

}  // namespace

ExtensionPtr ReadHttpListener(ConfigTable& t, const Config& so_far, bool https) {
  auto s = std::make_shared<HttpListenerSettings>();
  s->https = https;
  if (!t.Has("upstream")) {
    t.Error("upstream", "required key is missing");
  } else {
    NamedGroup(t, "upstream", so_far);  // core resolves it (an unknown name too); ALPN here
  }
  if (https && !t.Has(kTlsTable)) {
    t.Fail("an https listener needs a [listener.tls] table (its certificates)");
  }
  if (!https && t.Has(kTlsTable)) {
    t.Error(kTlsTable, "TLS on an HTTP listener is protocol = \"https\"");
  }
  if (t.Has(kUpstreamTlsTable)) {
    t.Error(kUpstreamTlsTable, "an http listener takes TLS to its upstream from [upstream.tls]");
  }
  int64_t n = static_cast<int64_t>(s->limits.head_bytes_max);
  t.Int("header_max_bytes", &n, 256, 1 << 20);
  s->limits.head_bytes_max = static_cast<size_t>(n);
  n = static_cast<int64_t>(s->limits.line_bytes_max);
  t.Int("line_max_bytes", &n, 64, 1 << 20);
  s->limits.line_bytes_max = static_cast<size_t>(n);
  n = static_cast<int64_t>(s->limits.fields_max);
  t.Int("header_max_fields", &n, 1, 10'000);
  s->limits.fields_max = static_cast<size_t>(n);
  t.Int("header_timeout_ms", &s->header_timeout_ms, 1, 3'600'000);
  t.Int("keepalive_timeout_ms", &s->keepalive_timeout_ms, 1, 3'600'000);
  t.Int("body_timeout_ms", &s->body_timeout_ms, 1, 3'600'000);
  t.Int("upstream_timeout_ms", &s->upstream_timeout_ms, 1, 86'400'000);
  t.Int("max_requests", &s->max_requests, 1, 1'000'000'000);
  n = static_cast<int64_t>(s->max_body_bytes);
  t.Int("max_body_bytes", &n, 0, INT64_MAX);
  s->max_body_bytes = static_cast<uint64_t>(n);
  t.Int("upstream_keepalive", &s->upstream_keepalive, 0, 100'000);
  t.Int("upstream_idle_timeout_ms", &s->upstream_idle_timeout_ms, 1, 3'600'000);
  t.Bool("request_id", &s->request_id);
  t.Bool("route_by_user", &s->route_by_user);
  t.Bool("admin_console", &s->admin_console);
  if (s->admin_console && !s->route_by_user) {
    t.Error("admin_console", "routes by the admin token: needs route_by_user = true");
  }
  t.Bool("strict_hosts", &s->strict_hosts);
  t.Choice<http::MailMode>("mail_mode",
                           {{"both", http::MailMode::kBoth},
                            {"redirect", http::MailMode::kRedirect},
                            {"mixed", http::MailMode::kMixed}},
                           &s->mail_mode);
  s->mail_mode_port = https ? 80 : 443;
  t.Int("mail_mode_port", &s->mail_mode_port, 1, 65535);
  for (int status = 502; status <= 504; ++status) {
    std::string path;
    std::string& page = s->error_pages[status - 502];
    const std::string key = fmt::format("error_page_{}", status);
    if (t.FileContents(key, &path, &page, 64 << 10) && page.empty()) {
      t.Error(key, fmt::format("{} is empty", path));
    }
  }
  if (t.String("error_handler_url", &s->error_handler_url) && !s->error_handler_url.empty() &&
      !(s->error_handler_url.starts_with("http://") ||
        s->error_handler_url.starts_with("https://") || s->error_handler_url.starts_with('/'))) {
    t.Error("error_handler_url", "expected an http(s) URL or a path");
  }
  if (s->error_handler_url.find_first_of(" \r\n") != std::string::npos) {
    t.Error("error_handler_url", "expected a URL on one line, without spaces");
  }
  bool any_user_routing = s->route_by_user;
  std::vector<ConfigTable*> servers = t.Tables("server");
  std::vector<ConfigTable*> locations = t.Tables("location");
  if (!servers.empty() && !locations.empty()) {
    t.Error("location", "with [[listener.server]] tables, locations go in each server");
  }
  if (!servers.empty() && HasServerRules(t)) {
    t.Fail("with [[listener.server]] tables, rewrites and header rules go in each server");
  }
  if (servers.empty()) {
    if (s->strict_hosts) t.Error("strict_hosts", "needs [[listener.server]] tables");
    // The listener itself is the one server: its locations and rules.
    if (!locations.empty() || HasServerRules(t)) {
      s->servers.emplace_back();
      s->hosts.SetDefault(0);
    }
  }
  int defaults = 0;
  for (size_t i = 0; i < servers.size(); ++i) {
    ConfigTable& st = *servers[i];
    HttpVirtualServer vs;
    st.StringList("names", &vs.names);
    bool is_default = false;
    st.Bool("default", &is_default);
    if (vs.names.empty() && !is_default) st.Fail("a server needs names, or default = true");
    for (const std::string& name : vs.names) {
      std::string error;
      if (!s->hosts.Add(name, static_cast<int>(i), &error)) st.Error("names", error);
    }
    if (is_default) {
      ++defaults;
      s->hosts.SetDefault(static_cast<int>(i));
    }
    if (st.Has("upstream")) vs.upstream_index = GroupIndex(st, "upstream", so_far);
    ReadServerRules(st, &vs);
    for (ConfigTable* lt : st.Tables("location")) ReadLocation(*lt, so_far, &vs);
    s->servers.push_back(std::move(vs));
  }
  if (defaults > 1) t.Error("server", "more than one server has default = true");
  if (defaults > 0 && s->strict_hosts) {
    t.Error("strict_hosts",
            "a server with default = true answers every Host no server names: "
            "nothing would be refused");
  }
  if (!servers.empty() && defaults == 0 && !s->strict_hosts) {
    t.Error("server", "one server needs default = true (or strict_hosts = true)");
  }
  s->hosts.Finish();
  if (servers.empty() && !s->servers.empty()) {
    ReadServerRules(t, &s->servers[0]);
    for (ConfigTable* lt : locations) ReadLocation(*lt, so_far, &s->servers[0]);
  }
  for (const HttpVirtualServer& vs : s->servers) {
    for (const HttpLocation& loc : vs.locations) any_user_routing |= loc.route_by_user == 1;
  }
  if (any_user_routing && so_far.sections.Find(kLookupTable) == nullptr) {
    t.Error("route_by_user", "needs a [lookup] section (the route lookup service)");
  }
  std::vector<std::string> trusted;
  t.StringList("trusted_proxies", &trusted);
  for (const std::string& text : trusted) {
    absl::StatusOr<Cidr> cidr = Cidr::Parse(text);
    if (!cidr.ok()) {
      t.Error("trusted_proxies", MessageOf(cidr.status()));
      continue;
    }
    s->trusted_proxies.push_back(*cidr);
  }
  return s;
}

}  // namespace ringproxy
