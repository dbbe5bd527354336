#include "route/lookup_service.h"

#define TOML_EXCEPTIONS 0
#define TOML_HEADER_ONLY 1
#define TOML_ENABLE_FORMATTERS 0
#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <span>
#include <sstream>

#include "core/ascii.h"
#include "core/log.h"
#include "fmt/format.h"

namespace ringproxy {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

std::string Err(std::string_view path, const toml::node& n, std::string_view what) {
  return fmt::format("{}:{}: {}", path, n.source().begin.line, what);
}

enum class Want : uint8_t { kString, kInteger, kBoolean, kStrings, kTables };

struct Key {
  std::string_view name;
  Want want;
};

bool Holds(const toml::node& v, Want want) {
  switch (want) {
    case Want::kString:
      return v.is_string();
    case Want::kInteger:
      return v.is_integer();
    case Want::kBoolean:
      return v.is_boolean();
    case Want::kStrings: {
      const toml::array* a = v.as_array();
      return a != nullptr &&
             std::all_of(a->begin(), a->end(), [](const toml::node& e) { return e.is_string(); });
    }
    case Want::kTables:
      return v.is_array_of_tables();
  }
  return false;
}

std::string_view WantName(Want want) {
  switch (want) {
    case Want::kString:
      return "a string";
    case Want::kInteger:
      return "an integer";
    case Want::kBoolean:
      return "a boolean";
    case Want::kStrings:
      return "an array of strings";
    case Want::kTables:
      return "an array of tables";
  }
  return "";
}

// Every key known and of its type: a misspelt key or a quoted port would read as absent,
// and --check would pass a file that routes nobody. `section` is "" at the top level.
absl::Status CheckKeys(std::string_view path, const toml::table& t, std::string_view section,
                       std::span<const Key> keys) {
  const std::string prefix = section.empty() ? "" : fmt::format("{}.", section);
  for (const auto& [k, v] : t) {
    auto it =
        std::find_if(keys.begin(), keys.end(), [&](const Key& key) { return key.name == k.str(); });
    if (it == keys.end()) {
      return absl::InvalidArgumentError(
          Err(path, v,
              section.empty() ? fmt::format("unknown key '{}'", k.str())
                              : fmt::format("{}: unknown key '{}'", section, k.str())));
    }
    if (!Holds(v, it->want)) {
      return absl::InvalidArgumentError(
          Err(path, v, fmt::format("{}{}: expected {}", prefix, k.str(), WantName(it->want))));
    }
  }
  return absl::OkStatus();
}

constexpr Key kRootKeys[] = {{"default_domain", Want::kString}, {"auth_wait_s", Want::kInteger},
                             {"domain", Want::kTables},         {"server", Want::kTables},
                             {"account", Want::kTables},        {"account_range", Want::kTables}};
constexpr Key kDomainKeys[] = {
    {"name", Want::kString}, {"virtual_ips", Want::kStrings}, {"virtual_hosts", Want::kStrings}};
// name, address, then a port per protocol.
constexpr Key kServerKeys[] = {
    {"name", Want::kString},     {"address", Want::kString},  {"imap", Want::kInteger},
    {"imapssl", Want::kInteger}, {"pop3", Want::kInteger},    {"pop3ssl", Want::kInteger},
    {"http", Want::kInteger},    {"httpssl", Want::kInteger}, {"admin", Want::kInteger},
    {"zx", Want::kInteger},      {"zxssl", Want::kInteger}};
constexpr Key kAccountKeys[] = {{"name", Want::kString},
                                {"id", Want::kString},
                                {"server", Want::kString},
                                {"aliases", Want::kStrings},
                                {"admin", Want::kBoolean}};
constexpr Key kRangeKeys[] = {{"prefix", Want::kString},
                              {"domain", Want::kString},
                              {"count", Want::kInteger},
                              {"server", Want::kString}};

}  // namespace

absl::StatusOr<std::shared_ptr<const Directory>> Directory::Parse(std::string_view text,
                                                                  std::string_view path) {
  toml::parse_result parsed = toml::parse(text, path);
  if (!parsed) {
    return absl::InvalidArgumentError(fmt::format(
        "{}:{}: {}", path, parsed.error().source().begin.line, parsed.error().description()));
  }
  const toml::table& root = parsed.table();
  if (absl::Status s = CheckKeys(path, root, "", kRootKeys); !s.ok()) return s;
  auto d = std::make_shared<Directory>();
  d->default_domain = Lower(root["default_domain"].value_or(std::string_view("")));
  d->auth_wait_s = static_cast<int>(root["auth_wait_s"].value_or(int64_t{10}));
  if (const toml::array* domains = root["domain"].as_array()) {
    for (const toml::node& n : *domains) {
      const toml::table* t = n.as_table();
      if (t == nullptr) return absl::InvalidArgumentError(Err(path, n, "[[domain]] expected"));
      if (absl::Status s = CheckKeys(path, *t, "domain", kDomainKeys); !s.ok()) return s;
      Domain dom;
      dom.name = Lower((*t)["name"].value_or(std::string_view("")));
      if (dom.name.empty()) return absl::InvalidArgumentError(Err(path, n, "domain.name missing"));
      if (const toml::array* a = (*t)["virtual_ips"].as_array()) {
        for (const toml::node& v : *a)
          dom.virtual_ips.emplace_back(v.value_or(std::string_view("")));
      }
      if (const toml::array* a = (*t)["virtual_hosts"].as_array()) {
        for (const toml::node& v : *a)
          dom.virtual_hosts.push_back(Lower(v.value_or(std::string_view(""))));
      }
      d->domains.push_back(std::move(dom));
    }
  }
  std::map<std::string, int> server_index;
  if (const toml::array* servers = root["server"].as_array()) {
    for (const toml::node& n : *servers) {
      const toml::table* t = n.as_table();
      if (t == nullptr) return absl::InvalidArgumentError(Err(path, n, "[[server]] expected"));
      if (absl::Status st = CheckKeys(path, *t, "server", kServerKeys); !st.ok()) return st;
      Server s;
      s.name = Lower((*t)["name"].value_or(std::string_view("")));
      s.address = (*t)["address"].value_or(std::string_view(""));
      if (s.name.empty() || s.address.empty()) {
        return absl::InvalidArgumentError(Err(path, n, "server.name and server.address required"));
      }
      for (const Key& key : std::span(kServerKeys).subspan(2)) {
        const std::string_view proto = key.name;
        int64_t port = (*t)[proto].value_or(int64_t{0});
        if (port < 0 || port > 65535) {
          return absl::InvalidArgumentError(
              Err(path, n, fmt::format("server.{}: bad port", proto)));
        }
        if (port > 0) s.ports[std::string(proto)] = static_cast<uint16_t>(port);
      }
      if (!server_index.emplace(s.name, static_cast<int>(d->servers.size())).second) {
        return absl::InvalidArgumentError(
            Err(path, n, fmt::format("duplicate server '{}'", s.name)));
      }
      d->servers.push_back(std::move(s));
    }
  }
  auto add_account = [&](std::string name, std::string id, std::string_view server, bool admin,
                         const toml::node& where,
                         const std::vector<std::string>& aliases) -> absl::Status {
    auto it = server_index.find(Lower(server));
    if (it == server_index.end()) {
      return absl::InvalidArgumentError(
          Err(path, where, fmt::format("unknown server '{}'", server)));
    }
    // A repeated name, alias or id would route to whichever came last: refused.
    const int index = static_cast<int>(d->accounts.size());
    d->accounts.push_back({name, id, it->second, admin});
    auto claim = [&](auto& map, std::string_view kind, std::string key) -> absl::Status {
      auto [at, added] = map.emplace(key, index);
      if (added) return absl::OkStatus();
      return absl::InvalidArgumentError(
          Err(path, where,
              fmt::format("duplicate {} '{}' (already account {})", kind, key,
                          d->accounts[static_cast<size_t>(at->second)].name)));
    };
    absl::Status s = claim(d->by_name, "name", name);
    for (const std::string& a : aliases) {
      if (s.ok()) s = claim(d->by_name, "name", Lower(a));
    }
    if (s.ok() && !id.empty()) s = claim(d->by_id, "id", id);
    return s;
  };
  if (const toml::array* accounts = root["account"].as_array()) {
    for (const toml::node& n : *accounts) {
      const toml::table* t = n.as_table();
      if (t == nullptr) return absl::InvalidArgumentError(Err(path, n, "[[account]] expected"));
      if (absl::Status s = CheckKeys(path, *t, "account", kAccountKeys); !s.ok()) return s;
      std::string name = Lower((*t)["name"].value_or(std::string_view("")));
      if (name.find('@') == std::string::npos) {
        return absl::InvalidArgumentError(Err(path, n, "account.name must be user@domain"));
      }
      std::vector<std::string> aliases;
      if (const toml::array* a = (*t)["aliases"].as_array()) {
        for (const toml::node& v : *a) aliases.emplace_back(v.value_or(std::string_view("")));
      }
      absl::Status s = add_account(name, std::string((*t)["id"].value_or(std::string_view(""))),
                                   (*t)["server"].value_or(std::string_view("")),
                                   (*t)["admin"].value_or(false), n, aliases);
      if (!s.ok()) return s;
    }
  }
  // [[account_range]]: prefix<1..count>@domain on one server (benchmarks, tests).
  if (const toml::array* ranges = root["account_range"].as_array()) {
    for (const toml::node& n : *ranges) {
      const toml::table* t = n.as_table();
      if (t == nullptr)
        return absl::InvalidArgumentError(Err(path, n, "[[account_range]] expected"));
      if (absl::Status s = CheckKeys(path, *t, "account_range", kRangeKeys); !s.ok()) return s;
      std::string prefix(Lower((*t)["prefix"].value_or(std::string_view("user"))));
      std::string domain(Lower((*t)["domain"].value_or(std::string_view(""))));
      int64_t count = (*t)["count"].value_or(int64_t{0});
      if (domain.empty() || count <= 0 || count > 10'000'000) {
        return absl::InvalidArgumentError(
            Err(path, n, "account_range needs domain and count 1..1e7"));
      }
      for (int64_t i = 1; i <= count; ++i) {
        absl::Status s = add_account(fmt::format("{}{}@{}", prefix, i, domain),
                                     fmt::format("{}-{}-{}", prefix, i, domain),
                                     (*t)["server"].value_or(std::string_view("")), false, n, {});
        if (!s.ok()) return s;
      }
    }
  }
  return std::shared_ptr<const Directory>(std::move(d));
}

absl::StatusOr<std::shared_ptr<const Directory>> Directory::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(fmt::format("{}: cannot open", path));
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

Decision Decide(const Directory& dir, const lookup::ParsedRequest& req) {
  Decision out;
  out.wait_s = dir.auth_wait_s;
  // NLE reads the method and the protocol without regard to case.
  const std::string method_text = Lower(req.Find("Auth-Method"));
  const std::string protocol_text = Lower(req.Find("Auth-Protocol"));
  const std::string_view method = method_text;
  const std::string_view raw_user = req.Find("Auth-User");
  const std::string_view protocol = protocol_text;
  const std::string_view proxy_ip = req.Find("X-Proxy-IP");
  const std::string_view client_ip = req.Find("Client-IP");
  auto fail = [&](std::string text) {
    out.ok = false;
    out.status = std::move(text);
    // Values from the request as log words: none can pass for another field.
    out.log = fmt::format("method={} user={} protocol={} client={} proxy={} result={}",
                          log::Word{method}, log::Word{raw_user}, log::Word{protocol},
                          log::Word{client_ip}, log::Word{proxy_ip}, log::Word{out.status});
    return out;
  };
  for (std::string_view h : {"Auth-User", "Auth-Method", "Auth-Protocol"}) {
    if (!req.Has(h)) return fail(fmt::format("missing header field {}", h));
  }
  std::string user;
  if (!lookup::UnescapeMailAuth(raw_user, &user)) return fail("malformed Auth-User");
  int account = -1;
  if (method == "zimbraid") {
    auto it = dir.by_id.find(user);
    if (it != dir.by_id.end()) account = it->second;
  } else if (method == "username" || method == "plain" || method == "login" || method == "gssapi" ||
             method == "certauth") {
    // "plain" and "login" are what stock nginx's auth_http sends (the client's SASL
    // mechanism, or login for IMAP LOGIN / POP3 USER): a name to route like "username"
    // (the mailbox server checks the password), so lookupd can stand in for nginx's
    // auth_http endpoint too.
    if ((method == "gssapi" || method == "certauth") &&
        (req.Find("Auth-Admin-User").empty() || req.Find("Auth-Admin-Pass").empty())) {
      return fail("missing header field Auth-Admin-User");
    }
    std::string name = Lower(user);
    if (name.find('@') == std::string::npos) {
      // Unqualified: the domain of the virtual host (web, plain http) or of the virtual
      // IP the client connected to; else the default domain.
      std::string domain = dir.default_domain;
      const std::string host = Lower(req.Find("X-Proxy-Host"));
      for (const Directory::Domain& d : dir.domains) {
        bool match = protocol == "http"
                         ? std::find(d.virtual_hosts.begin(), d.virtual_hosts.end(), host) !=
                               d.virtual_hosts.end()
                         : std::find(d.virtual_ips.begin(), d.virtual_ips.end(), proxy_ip) !=
                               d.virtual_ips.end();
        if (match) domain = d.name;
      }
      name += "@" + domain;
    }
    auto it = dir.by_name.find(name);
    if (it != dir.by_name.end()) account = it->second;
    if (account < 0) return fail(fmt::format("user not found:{}", name));
  } else {
    return fail(fmt::format("unsupported Auth-Method {}", method));
  }
  if (account < 0) return fail(fmt::format("user not found:{}", user));
  const Directory::Account& a = dir.accounts[static_cast<size_t>(account)];
  // Zimbra's proxy sends "True"; NLE reads the value without regard to case (spec §1.4).
  const bool admin = EqualsIgnoreCase(req.Find("Auth-Zimbra-Admin"), "true");
  if (admin && !a.admin) return fail(fmt::format("account {} is not an admin", a.name));
  const Directory::Server& s = dir.servers[static_cast<size_t>(a.server)];
  // The admin console is served over TLS: only admin + httpssl means the admin port.
  std::string proto(protocol);
  if (admin && protocol == "httpssl") proto = "admin";
  // A zx lookup (the /zx/ service, spec §1.5 step 9) is a web one for the zx port, which
  // NLE hard-codes (8742, 8743 over TLS); a server's zx/zxssl keys set it here.
  const bool zx = !admin && (protocol == "http" || protocol == "httpssl") &&
                  EqualsIgnoreCase(req.Find("Auth-Zimbra-Zx"), "true");
  if (zx) proto = protocol == "http" ? "zx" : "zxssl";
  // "admin" and "zx…" name ports here only: never a protocol a client asks for.
  auto port =
      protocol == "admin" || protocol.starts_with("zx") ? s.ports.end() : s.ports.find(proto);
  uint16_t port_number = port == s.ports.end() ? 0 : port->second;
  if (zx && port_number == 0) port_number = protocol == "http" ? 8742 : 8743;
  if (port_number == 0) {
    return fail(fmt::format("mailhost {} has no {} port for user: {}", s.name, protocol, a.name));
  }
  out.ok = true;
  out.server = s.address;
  out.port = port_number;
  out.user = a.name;
  out.cache_alias = a.name.substr(a.name.find('@') + 1) == dir.default_domain;
  if (method == "gssapi" || method == "certauth") {
    out.auth_id = a.name;
    out.auth_pass = fmt::format("token-{}", a.id.empty() ? a.name : a.id);
  }
  out.log = fmt::format("method={} user={} protocol={} client={} proxy={} result=OK route={}:{}",
                        log::Word{method}, log::Word{raw_user}, log::Word{protocol},
                        log::Word{client_ip}, log::Word{proxy_ip}, out.server, out.port);
  return out;
}

}  // namespace ringproxy
