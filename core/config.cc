// TOML -> Config. toml++ is compiled header-only here, without exceptions (see
// meson.build). Unknown keys are errors: a typo must not silently become a default.
#define TOML_EXCEPTIONS 0
#define TOML_HEADER_ONLY 1
#define TOML_ENABLE_FORMATTERS 0
#include "core/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "core/shard.h"
#include "core/status_util.h"
#include "fmt/format.h"
#include "fmt/ranges.h"

namespace ringproxy {

std::string_view BalanceName(Balance b) {
  switch (b) {
    case Balance::kRoundRobin:
      return "round_robin";
    case Balance::kLeastConn:
      return "least_conn";
    case Balance::kIpHash:
      return "ip_hash";
  }
  return "?";
}

std::string_view RelayModeName(RelayMode mode) {
  switch (mode) {
    case RelayMode::kAuto:
      return "auto";
    case RelayMode::kCopy:
      return "copy";
    case RelayMode::kSplice:
      return "splice";
  }
  return "?";
}

bool ParseRelayMode(std::string_view text, RelayMode* out) {
  if (text == "auto")
    *out = RelayMode::kAuto;
  else if (text == "copy")
    *out = RelayMode::kCopy;
  else if (text == "splice")
    *out = RelayMode::kSplice;
  else
    return false;
  return true;
}

namespace {

constexpr size_t kMaxErrors = 20;

std::string_view TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    default:
      return "a date/time";
  }
}

const toml::table& TomlOf(const void* t) { return *static_cast<const toml::table*>(t); }

int LineOf(const toml::node& n) { return static_cast<int>(n.source().begin.line); }

}  // namespace

void Extensions::Set(std::string name, ExtensionPtr ext) {
  for (auto& [n, e] : items_) {
    if (n == name) {
      e = std::move(ext);
      return;
    }
  }
  items_.emplace_back(std::move(name), std::move(ext));
}

const ConfigExtension* Extensions::Find(std::string_view name) const {
  for (const auto& [n, e] : items_) {
    if (n == name) return e.get();
  }
  return nullptr;
}

void ConfigErrors::Add(int line, std::string_view key, std::string_view message) {
  if (list_.size() >= kMaxErrors) return;
  list_.push_back(fmt::format("{}:{}: {}: {}", path_, line, key, message));
}

void ConfigErrors::Add(std::string_view key, std::string_view message) {
  if (list_.size() >= kMaxErrors) return;
  list_.push_back(fmt::format("{}: {}: {}", path_, key, message));
}

absl::Status ConfigErrors::ToStatus() const {
  return absl::InvalidArgumentError(fmt::format("{}", fmt::join(list_, "\n")));
}

ConfigTable::ConfigTable(const void* table, std::string prefix, ConfigErrors* errors, bool checking)
    : table_(table), prefix_(std::move(prefix)), errors_(errors), checking_(checking) {}

void ConfigTable::CheckAppendable(std::string_view key, const std::string& path) {
  if (path.empty() || path == "-") return;
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      Error(key, fmt::format("cannot open '{}': {}", path, strerror(EISDIR)));
    } else if (faccessat(AT_FDCWD, path.c_str(), W_OK, AT_EACCESS) != 0) {
      Error(key, fmt::format("cannot open '{}': {}", path, strerror(errno)));
    }
    return;
  }
  if (errno != ENOENT) {
    Error(key, fmt::format("cannot open '{}': {}", path, strerror(errno)));
    return;
  }
  // Absent: opening would create it, which needs a writable directory.
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    Error(key, fmt::format("cannot open '{}': {}", path, strerror(ENOENT)));
  } else if (faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
    Error(key, fmt::format("cannot open '{}': {}", path, strerror(errno)));
  }
}

ConfigTable::~ConfigTable() = default;

std::string ConfigTable::Key(std::string_view key) const {
  return prefix_.empty() ? std::string(key) : fmt::format("{}.{}", prefix_, key);
}

bool ConfigTable::Has(std::string_view key) const { return TomlOf(table_).contains(key); }

bool ConfigTable::FileContents(std::string_view key, std::string* path, std::string* contents,
                               size_t max_bytes) {
  if (!String(key, path) || path->empty()) return false;
  std::ifstream in(*path, std::ios::binary);
  if (!in) {
    Error(key, fmt::format("cannot open {}: {}", *path, strerror(errno)));
    return false;
  }
  contents->assign(max_bytes + 1, '\0');
  in.read(contents->data(), static_cast<std::streamsize>(contents->size()));
  contents->resize(static_cast<size_t>(in.gcount()));
  if (contents->size() > max_bytes) {
    Error(key, fmt::format("{} is larger than {} bytes", *path, max_bytes));
    return false;
  }
  return true;
}

void ConfigTable::ChoiceError(std::string_view key, const std::vector<std::string_view>& names,
                              std::string_view got) {
  std::string list;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) list += i + 1 == names.size() ? " or " : ", ";
    list += names[i];
  }
  Error(key, fmt::format("expected {}, got '{}'", list, got));
}

void ConfigTable::Error(std::string_view key, std::string_view message) {
  const toml::node* n = TomlOf(table_).get(key);
  errors_->Add(n != nullptr ? LineOf(*n) : static_cast<int>(TomlOf(table_).source().begin.line),
               Key(key), message);
}

void ConfigTable::Fail(std::string_view message) {
  errors_->Add(static_cast<int>(TomlOf(table_).source().begin.line), prefix_, message);
}

namespace {
// Marks `key` as read and returns its node (null when absent).
const toml::node* Read(const void* table, std::vector<std::string>* known, std::string_view key) {
  known->emplace_back(key);
  return TomlOf(table).get(key);
}
}  // namespace

void ConfigTable::Int(std::string_view key, int64_t* out, int64_t min, int64_t max) {
  const toml::node* n = Read(table_, &known_, key);
  if (n == nullptr) return;
  const auto* v = n->as_integer();
  if (v == nullptr) {
    Error(key, fmt::format("expected an integer, got {}", TypeName(*n)));
    return;
  }
  int64_t x = v->get();
  if (x < min || x > max) {
    Error(key, fmt::format("expected an integer in {}..{}, got {}", min, max, x));
    return;
  }
  *out = x;
}

void ConfigTable::Int(std::string_view key, int* out, int64_t min, int64_t max) {
  int64_t v = *out;
  Int(key, &v, min, max);
  *out = static_cast<int>(v);
}

void ConfigTable::Int(std::string_view key, uint32_t* out, int64_t min, int64_t max) {
  int64_t v = *out;
  Int(key, &v, min, max);
  *out = static_cast<uint32_t>(v);
}

void ConfigTable::Bool(std::string_view key, bool* out) {
  const toml::node* n = Read(table_, &known_, key);
  if (n == nullptr) return;
  const auto* v = n->as_boolean();
  if (v == nullptr) {
    Error(key, fmt::format("expected true or false, got {}", TypeName(*n)));
    return;
  }
  *out = v->get();
}

bool ConfigTable::String(std::string_view key, std::string* out, bool required) {
  const toml::node* n = Read(table_, &known_, key);
  if (n == nullptr) {
    if (required) Error(key, "required key is missing");
    return !required;
  }
  const auto* v = n->as_string();
  if (v == nullptr) {
    Error(key, fmt::format("expected a string, got {}", TypeName(*n)));
    return false;
  }
  *out = v->get();
  return true;
}

bool ConfigTable::NonEmptyString(std::string_view key, std::string* out, bool required) {
  if (!String(key, out, required)) return false;
  if (Has(key) && out->empty()) {
    Error(key, "must not be empty");
    return false;
  }
  return true;
}

bool ConfigTable::StringList(std::string_view key, std::vector<std::string>* out, bool required) {
  const toml::node* n = Read(table_, &known_, key);
  if (n == nullptr) {
    if (required) Error(key, "required key is missing");
    return !required;
  }
  const auto* arr = n->as_array();
  if (arr == nullptr) {
    Error(key, fmt::format("expected an array of strings, got {}", TypeName(*n)));
    return false;
  }
  std::vector<std::string> values;
  for (const toml::node& e : *arr) {
    const auto* v = e.as_string();
    if (v == nullptr) {
      errors_->Add(LineOf(e), Key(key), fmt::format("expected strings, got {}", TypeName(e)));
      return false;
    }
    values.push_back(v->get());
  }
  *out = std::move(values);
  return true;
}

ConfigTable* ConfigTable::Table(std::string_view key) {
  const toml::node* n = Read(table_, &known_, key);
  if (n == nullptr) return nullptr;
  if (!n->is_table()) {
    Error(key, fmt::format("expected a table [{}], got {}", Key(key), TypeName(*n)));
    return nullptr;
  }
  children_.push_back(
      std::unique_ptr<ConfigTable>(new ConfigTable(n->as_table(), Key(key), errors_, checking_)));
  return children_.back().get();
}

std::vector<ConfigTable*> ConfigTable::Tables(std::string_view key) {
  std::vector<ConfigTable*> out;
  const toml::node* n = Read(table_, &known_, key);
  if (n == nullptr) return out;
  const toml::array* arr = n->as_array();
  if (arr == nullptr || !arr->is_array_of_tables()) {
    Error(key, fmt::format("expected an array of tables [[{}]]", Key(key)));
    return out;
  }
  size_t i = 0;
  for (const toml::node& e : *arr) {
    children_.push_back(std::unique_ptr<ConfigTable>(
        new ConfigTable(e.as_table(), fmt::format("{}[{}]", Key(key), i++), errors_, checking_)));
    out.push_back(children_.back().get());
  }
  return out;
}

void ConfigTable::Finish() {
  for (auto& child : children_) child->Finish();
  for (auto&& [k, v] : TomlOf(table_)) {
    if (std::find(known_.begin(), known_.end(), k.str()) == known_.end()) {
      errors_->Add(LineOf(v), Key(k.str()), "unknown key");
    }
  }
}

void ConfigSchema::AddSection(std::string name, Reader reader) {
  sections_.push_back({std::move(name), std::move(reader)});
}
void ConfigSchema::AddListenerProtocol(std::string name, Reader reader) {
  protocols_.push_back({std::move(name), std::move(reader)});
}
void ConfigSchema::AddListenerTable(std::string name, Reader reader) {
  listener_tables_.push_back({std::move(name), std::move(reader)});
}
void ConfigSchema::AddUpstreamTable(std::string name, Reader reader) {
  upstream_tables_.push_back({std::move(name), std::move(reader)});
}
void ConfigSchema::AddCheck(Check check) { checks_.push_back(std::move(check)); }

// One parse: core's own keys, then every module's, in file order within each kind.
class ConfigParser {
 public:
  ConfigParser(const ConfigSchema& schema, std::string_view path, ConfigUse use)
      : schema_(schema), errors_(path), checking_(use == ConfigUse::kCheck) {}

  absl::StatusOr<ConfigPtr> Parse(const toml::table& root, std::string_view path);

 private:
  ConfigTable Root(const toml::table& t) { return ConfigTable(&t, "", &errors_, checking_); }
  std::unique_ptr<ConfigTable> Make(const toml::table& t, std::string prefix) {
    return std::unique_ptr<ConfigTable>(
        new ConfigTable(&t, std::move(prefix), &errors_, checking_));
  }
  std::vector<const toml::table*> TablesOf(ConfigTable& root, std::string_view key);
  void ReadRuntime(ConfigTable& r, RuntimeConfig* rt);
  void ReadLog(ConfigTable& r, LogConfig* lc);
  void ReadUpstream(ConfigTable& r, UpstreamGroupConfig* u);
  void ReadListener(ConfigTable& r, ListenerConfig* l);
  void ReadTables(ConfigTable& r, const std::vector<ConfigSchema::Entry>& entries, Extensions* out);
  void CrossCheck();

  const ConfigSchema& schema_;
  ConfigErrors errors_;
  bool checking_;
  std::shared_ptr<Config> config_;
  std::vector<std::unique_ptr<ConfigTable>> upstream_tables_;
  std::vector<std::unique_ptr<ConfigTable>> listener_tables_;
};

std::vector<const toml::table*> ConfigParser::TablesOf(ConfigTable& root, std::string_view key) {
  std::vector<const toml::table*> out;
  const toml::node* n = Read(root.table_, &root.known_, key);
  if (n == nullptr) return out;
  const toml::array* arr = n->as_array();
  if (arr == nullptr || !arr->is_array_of_tables()) {
    root.Error(key, fmt::format("expected an array of tables [[{}]]", key));
    return out;
  }
  for (const toml::node& e : *arr) out.push_back(e.as_table());
  return out;
}

void ConfigParser::ReadRuntime(ConfigTable& r, RuntimeConfig* rt) {
  r.Int("shards", &rt->shards, 0, 1024);
  if (const toml::node* n = TomlOf(r.table_).get("cpus")) {
    r.known_.emplace_back("cpus");
    const auto* arr = n->as_array();
    if (arr == nullptr) {
      r.Error("cpus", fmt::format("expected an array of integers, got {}", TypeName(*n)));
    } else {
      rt->cpus.clear();
      for (const toml::node& e : *arr) {
        const auto* v = e.as_integer();
        if (v == nullptr || v->get() < 0 || v->get() > 4095) {
          errors_.Add(LineOf(e), "runtime.cpus", "expected integers in 0..4095");
          break;
        }
        if (std::find(rt->cpus.begin(), rt->cpus.end(), v->get()) != rt->cpus.end()) {
          // Two shards on one CPU would take turns: the list is one CPU per shard.
          errors_.Add(LineOf(e), "runtime.cpus", fmt::format("CPU {} is listed twice", v->get()));
          break;
        }
        rt->cpus.push_back(static_cast<int>(v->get()));
      }
    }
  }
  // The completion queue is 4 x this and the kernel caps it at 65536 entries
  // (IORING_MAX_CQ_ENTRIES): past 16384 every shard would fail to start.
  r.Int("ring_entries", &rt->ring_entries, 8, 16384);
  r.Int("buffer_count", &rt->buffer_count, 1, 32768);
  if (r.Has("buffer_count") && (rt->buffer_count & (rt->buffer_count - 1)) != 0) {
    r.Error("buffer_count", fmt::format("expected a power of two, got {}", rt->buffer_count));
  }
  r.Int("buffer_size", &rt->buffer_size, 1024, 1 << 20);
  // Faulted in at start, per shard: a product past what any shard needs is a typo.
  constexpr int64_t kMaxBufferBytes = int64_t{1} << 30;
  if (int64_t{rt->buffer_count} * rt->buffer_size > kMaxBufferBytes) {
    r.Error(r.Has("buffer_size") ? "buffer_size" : "buffer_count",
            fmt::format("buffer_count x buffer_size = {} MiB per shard; at most {} MiB",
                        int64_t{rt->buffer_count} * rt->buffer_size >> 20, kMaxBufferBytes >> 20));
  }
  r.Int("pipe_size", &rt->pipe_size, 0, 1 << 26);
  r.Int("pipe_pool_max", &rt->pipe_pool_max, 0, 1 << 20);
  r.Int("max_connections_per_shard", &rt->max_connections_per_shard, 1, 10'000'000);
  r.Int("drain_timeout_ms", &rt->drain_timeout_ms, 0, 86'400'000);
  r.Int("coalesce_us", &rt->coalesce_us, 0, 10'000);
}

void ConfigParser::ReadLog(ConfigTable& r, LogConfig* lc) {
  r.String("file", &lc->file);
  // Run: the log opens the files after the config is read, and says if it cannot.
  if (r.checking()) r.CheckAppendable("file", lc->file);
  std::string level;
  if (r.String("level", &level) && r.Has("level") && !log::ParseLevel(level, &lc->level)) {
    r.Error("level", fmt::format("expected one of debug, info, warn, error, off; got '{}'", level));
  }
  r.Bool("access", &lc->access);
  r.String("access_file", &lc->access_file);
  if (r.checking()) r.CheckAppendable("access_file", lc->access_file);
  r.Choice<AccessFormat>("access_format",
                         {{"kv", AccessFormat::kKv},
                          {"json", AccessFormat::kJson},
                          {"combined", AccessFormat::kCombined}},
                         &lc->access_format);
}

void ConfigParser::ReadUpstream(ConfigTable& r, UpstreamGroupConfig* u) {
  r.NonEmptyString("name", &u->name, true);
  r.Choice<Balance>("balance",
                    {{"round_robin", Balance::kRoundRobin},
                     {"least_conn", Balance::kLeastConn},
                     {"ip_hash", Balance::kIpHash}},
                    &u->balance);
  std::vector<std::string> servers;
  if (r.StringList("servers", &servers, true) && r.Has("servers")) {
    if (servers.empty()) r.Error("servers", "expected at least one server");
    for (const std::string& text : servers) {
      // "host:port" then options: "weight=N", "id=NAME".
      std::string_view address = text;
      std::string_view options;
      const size_t space = address.find(' ');
      if (space != std::string_view::npos) {
        options = address.substr(space + 1);
        address = address.substr(0, space);
      }
      int weight = 1;
      std::string id;
      bool bad = false;
      while (!options.empty() && !bad) {
        const size_t end = options.find(' ');
        const std::string_view option = options.substr(0, end);
        options = end == std::string_view::npos ? std::string_view() : options.substr(end + 1);
        if (option.empty()) continue;
        if (option.starts_with("weight=")) {
          const std::string_view digits = option.substr(7);
          const auto [last, ec] =
              std::from_chars(digits.data(), digits.data() + digits.size(), weight);
          bad = ec != std::errc() || last != digits.data() + digits.size() || weight < 1 ||
                weight > 1000;
        } else if (option.starts_with("id=") && option.size() > 3 &&
                   option.find('/') == std::string_view::npos) {
          id = option.substr(3);
        } else {
          bad = true;
        }
      }
      if (bad) {
        r.Error("servers", fmt::format("'{}': expected \"host:port\" and the options "
                                       "\"weight=N\" (N in 1..1000) and \"id=NAME\"",
                                       text));
        continue;
      }
      // A name with several addresses (IPv6 and IPv4) is a server per address, as in
      // nginx: one that refuses fails over to the next.
      absl::StatusOr<std::vector<SocketAddress>> all = SocketAddress::ParseAll(address, 1);
      if (!all.ok()) {
        r.Error("servers", MessageOf(all.status()));
        continue;
      }
      if (!id.empty() && all->size() > 1) {
        r.Error("servers", fmt::format("'{}': id={} needs a server of one address; the name has {}",
                                       text, id, all->size()));
        continue;
      }
      if (!id.empty() && std::any_of(u->servers.begin(), u->servers.end(),
                                     [&](const auto& other) { return other.id == id; })) {
        r.Error("servers",
                fmt::format("'{}': id={} is given to another server of this group", text, id));
        continue;
      }
      // The address as written, without its options: what logs and $upstream_addr show.
      for (const SocketAddress& a : *all)
        u->servers.push_back({std::string(address), a, weight, id});
    }
  }
  r.Int("connect_timeout_ms", &u->connect_timeout_ms, 1, 3'600'000);
  r.Int("max_fails", &u->max_fails, 0, 1000);
  r.Int("fail_timeout_ms", &u->fail_timeout_ms, 0, 86'400'000);
  ReadTables(r, schema_.upstream_tables_, &u->extensions);
}

void ConfigParser::ReadListener(ConfigTable& r, ListenerConfig* l) {
  r.NonEmptyString("name", &l->name, true);
  if (r.NonEmptyString("listen", &l->listen_text, true) && !l->listen_text.empty()) {
    absl::StatusOr<SocketAddress> a = SocketAddress::Parse(l->listen_text, 1);
    if (a.ok()) {
      l->address = *a;
    } else {
      r.Error("listen", MessageOf(a.status()));
    }
  }
  r.NonEmptyString("upstream", &l->upstream);
  r.Int("idle_timeout_ms", &l->idle_timeout_ms, 1, 7 * 86'400'000LL);  // mail: up to 7 days
  r.Int("send_timeout_ms", &l->send_timeout_ms, 1, 86'400'000);
  r.Int("backlog", &l->backlog, 1, 65535);
  r.Int("send_buffer", &l->send_buffer, 0, 64 << 20);
  std::string relay(RelayModeName(l->relay));  // kept when the key is absent
  if (r.String("relay", &relay) && !ParseRelayMode(relay, &l->relay)) {
    r.Error("relay", fmt::format("expected auto, copy or splice, got '{}'", relay));
  }
  if (r.NonEmptyString("protocol", &l->protocol, true) && !l->protocol.empty()) {
    const ConfigSchema::Entry* protocol = nullptr;
    std::vector<std::string> names;
    for (const auto& e : schema_.protocols_) {
      names.push_back(fmt::format("\"{}\"", e.name));
      if (e.name == l->protocol) protocol = &e;
    }
    if (protocol == nullptr) {
      r.Error("protocol", fmt::format("expected {}, got '{}'",
                                      names.empty() ? "a registered protocol"
                                                    : fmt::format("{}", fmt::join(names, " or ")),
                                      l->protocol));
    } else if (protocol->reader) {
      l->protocol_settings = protocol->reader(r, *config_);
    }
  }
  ReadTables(r, schema_.listener_tables_, &l->extensions);
}

void ConfigParser::ReadTables(ConfigTable& r, const std::vector<ConfigSchema::Entry>& entries,
                              Extensions* out) {
  for (const auto& e : entries) {
    if (ConfigTable* t = r.Table(e.name)) {
      if (ExtensionPtr ext = e.reader(*t, *config_)) out->Set(e.name, std::move(ext));
    }
  }
}

absl::StatusOr<ConfigPtr> ConfigParser::Parse(const toml::table& root, std::string_view path) {
  config_ = std::make_shared<Config>();
  config_->path = std::string(path);
  ConfigTable top = Root(root);
  if (ConfigTable* t = top.Table("runtime")) ReadRuntime(*t, &config_->runtime);
  if (ConfigTable* t = top.Table("log")) ReadLog(*t, &config_->log);
  ReadTables(top, schema_.sections_, &config_->sections);
  std::vector<const toml::table*> upstreams = TablesOf(top, "upstream");
  for (size_t i = 0; i < upstreams.size(); ++i) {
    config_->upstreams.emplace_back();
    config_->upstreams.back().index = static_cast<int>(i);
    upstream_tables_.push_back(Make(*upstreams[i], fmt::format("upstream[{}]", i)));
    ReadUpstream(*upstream_tables_.back(), &config_->upstreams.back());
  }
  std::vector<const toml::table*> listeners = TablesOf(top, "listener");
  for (size_t i = 0; i < listeners.size(); ++i) {
    config_->listeners.emplace_back();
    config_->listeners.back().index = static_cast<int>(i);
    listener_tables_.push_back(Make(*listeners[i], fmt::format("listener[{}]", i)));
    ReadListener(*listener_tables_.back(), &config_->listeners.back());
  }
  top.Finish();
  for (auto& r : upstream_tables_) r->Finish();
  for (auto& r : listener_tables_) r->Finish();
  CrossCheck();
  for (const ConfigSchema::Check& check : schema_.checks_) check(*config_, errors_);
  if (!errors_.empty()) return errors_.ToStatus();
  return ConfigPtr(std::move(config_));
}

void ConfigParser::CrossCheck() {
  Config& c = *config_;
  absl::flat_hash_set<std::string> names;
  for (size_t i = 0; i < c.upstreams.size(); ++i) {
    const std::string& name = c.upstreams[i].name;
    if (!name.empty() && !names.insert(name).second) {
      upstream_tables_[i]->Error("name", fmt::format("duplicate upstream name '{}'", name));
    }
  }
  absl::flat_hash_set<std::string> listener_names;
  absl::flat_hash_set<std::string> addresses;
  for (size_t i = 0; i < c.listeners.size(); ++i) {
    ListenerConfig& l = c.listeners[i];
    ConfigTable& t = *listener_tables_[i];
    if (!l.name.empty() && !listener_names.insert(l.name).second) {
      t.Error("name", fmt::format("duplicate listener name '{}'", l.name));
    }
    // The IPv4-mapped spelling of an address is that address (both would bind).
    SocketAddress same = l.address;
    same.UnmapV4();
    if (l.address.size() != 0 && !addresses.insert(same.ToString()).second) {
      t.Error("listen", fmt::format("address {} is used by another listener", same.ToString()));
    }
    if (l.upstream.empty()) continue;
    for (size_t u = 0; u < c.upstreams.size(); ++u) {
      if (c.upstreams[u].name == l.upstream) l.upstream_index = static_cast<int>(u);
    }
    if (l.upstream_index < 0) {
      std::vector<std::string> known;
      for (const auto& u : c.upstreams) known.push_back(u.name);
      t.Error("upstream",
              fmt::format("unknown upstream '{}' (defined: {})", l.upstream,
                          known.empty() ? "none" : fmt::format("{}", fmt::join(known, ", "))));
    }
  }
}

absl::StatusOr<ConfigPtr> ParseConfig(std::string_view text, std::string_view path,
                                      const ConfigSchema& schema, ConfigUse use) {
  toml::parse_result parsed = toml::parse(text, path);
  if (!parsed) {
    const toml::parse_error& e = parsed.error();
    return absl::InvalidArgumentError(fmt::format("{}:{}:{}: TOML syntax error: {}", path,
                                                  e.source().begin.line, e.source().begin.column,
                                                  e.description()));
  }
  ConfigParser parser(schema, path, use);
  return parser.Parse(parsed.table(), path);
}

absl::StatusOr<ConfigPtr> LoadConfig(const std::string& path, const ConfigSchema& schema,
                                     ConfigUse use) {
  // A directory opens as a stream and reads as nothing, which would parse as a config
  // with nothing in it.
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(fmt::format("{}: not a regular file", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(
        fmt::format("{}: cannot open config file: {}", path, strerror(errno)));
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::UnavailableError(fmt::format("{}: cannot read config file", path));
  return ParseConfig(text.str(), path, schema, use);
}

absl::StatusOr<std::vector<int>> ResolveShardCpus(const RuntimeConfig& runtime) {
  std::vector<int> allowed = AllowedCpus();
  if (allowed.empty()) return absl::InternalError("sched_getaffinity returned no CPUs");
  std::vector<int> cpus = runtime.cpus.empty() ? allowed : runtime.cpus;
  for (int c : cpus) {
    if (std::find(allowed.begin(), allowed.end(), c) == allowed.end()) {
      return absl::InvalidArgumentError(
          fmt::format("runtime.cpus: CPU {} is not available to this process (allowed: {})", c,
                      fmt::format("{}", fmt::join(allowed, ","))));
    }
  }
  if (runtime.shards == 0) return cpus;
  if (static_cast<size_t>(runtime.shards) > cpus.size()) {
    if (!runtime.cpus.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("runtime.shards = {} but runtime.cpus lists {} CPUs: give one CPU per shard",
                      runtime.shards, cpus.size()));
    }
    // More shards than CPUs: allowed for testing; shards share CPUs round-robin.
    std::vector<int> out;
    for (int i = 0; i < runtime.shards; ++i)
      out.push_back(cpus[static_cast<size_t>(i) % cpus.size()]);
    return out;
  }
  cpus.resize(static_cast<size_t>(runtime.shards));
  return cpus;
}

}  // namespace ringproxy
