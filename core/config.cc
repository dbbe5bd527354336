// TOML -> Config. toml++ is compiled header-only here, without exceptions (see
// meson.build). Unknown keys are errors: a typo must not silently become a default.
#define TOML_EXCEPTIONS 0
#define TOML_HEADER_ONLY 1
#define TOML_ENABLE_FORMATTERS 0
#include "core/config.h"

#include <toml++/toml.h>

#include <algorithm>
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

std::string_view ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kTcp:
      return "tcp";
  }
  return "?";
}

std::string_view BalanceName(Balance b) {
  switch (b) {
    case Balance::kRoundRobin:
      return "round_robin";
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

class Errors {
 public:
  explicit Errors(std::string_view path) : path_(path) {}
  void Add(const toml::source_region& where, std::string_view key, std::string_view message) {
    if (list_.size() >= kMaxErrors) return;
    list_.push_back(fmt::format("{}:{}: {}: {}", path_, where.begin.line, key, message));
  }
  void AddNoLine(std::string_view key, std::string_view message) {
    if (list_.size() >= kMaxErrors) return;
    list_.push_back(fmt::format("{}: {}: {}", path_, key, message));
  }
  bool empty() const { return list_.empty(); }
  absl::Status ToStatus() const {
    return absl::InvalidArgumentError(fmt::format("{}", fmt::join(list_, "\n")));
  }

 private:
  std::string path_;
  std::vector<std::string> list_;
};

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

// Reads the keys of one table; remembers which were read so Finish() can report
// the unknown ones.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string prefix, Errors& errors)
      : table_(table), prefix_(std::move(prefix)), errors_(errors) {}

  std::string Key(std::string_view key) const {
    return prefix_.empty() ? std::string(key) : fmt::format("{}.{}", prefix_, key);
  }
  const toml::node* Get(std::string_view key) {
    known_.insert(std::string(key));
    return table_.get(key);
  }

  void Int(std::string_view key, int64_t* out, int64_t min, int64_t max) {
    const toml::node* n = Get(key);
    if (n == nullptr) return;
    const auto* v = n->as_integer();
    if (v == nullptr) {
      errors_.Add(n->source(), Key(key), fmt::format("expected an integer, got {}", TypeName(*n)));
      return;
    }
    int64_t x = v->get();
    if (x < min || x > max) {
      errors_.Add(n->source(), Key(key),
                  fmt::format("expected an integer in {}..{}, got {}", min, max, x));
      return;
    }
    *out = x;
  }
  void Int(std::string_view key, int* out, int64_t min, int64_t max) {
    int64_t v = *out;
    Int(key, &v, min, max);
    *out = static_cast<int>(v);
  }
  void Bool(std::string_view key, bool* out) {
    const toml::node* n = Get(key);
    if (n == nullptr) return;
    const auto* v = n->as_boolean();
    if (v == nullptr) {
      errors_.Add(n->source(), Key(key),
                  fmt::format("expected true or false, got {}", TypeName(*n)));
      return;
    }
    *out = v->get();
  }
  // Returns false when present but not a string.
  bool String(std::string_view key, std::string* out, bool required) {
    const toml::node* n = Get(key);
    if (n == nullptr) {
      if (required) errors_.Add(table_.source(), Key(key), "required key is missing");
      return !required;
    }
    const auto* v = n->as_string();
    if (v == nullptr) {
      errors_.Add(n->source(), Key(key), fmt::format("expected a string, got {}", TypeName(*n)));
      return false;
    }
    *out = v->get();
    return true;
  }
  void IntArray(std::string_view key, std::vector<int>* out, int64_t min, int64_t max) {
    const toml::node* n = Get(key);
    if (n == nullptr) return;
    const auto* arr = n->as_array();
    if (arr == nullptr) {
      errors_.Add(n->source(), Key(key),
                  fmt::format("expected an array of integers, got {}", TypeName(*n)));
      return;
    }
    out->clear();
    for (const toml::node& e : *arr) {
      const auto* v = e.as_integer();
      if (v == nullptr || v->get() < min || v->get() > max) {
        errors_.Add(e.source(), Key(key), fmt::format("expected integers in {}..{}", min, max));
        return;
      }
      out->push_back(static_cast<int>(v->get()));
    }
  }
  bool StringArray(std::string_view key,
                   std::vector<std::pair<std::string, toml::source_region>>* out, bool required) {
    const toml::node* n = Get(key);
    if (n == nullptr) {
      if (required) errors_.Add(table_.source(), Key(key), "required key is missing");
      return false;
    }
    const auto* arr = n->as_array();
    if (arr == nullptr) {
      errors_.Add(n->source(), Key(key),
                  fmt::format("expected an array of strings, got {}", TypeName(*n)));
      return false;
    }
    for (const toml::node& e : *arr) {
      const auto* v = e.as_string();
      if (v == nullptr) {
        errors_.Add(e.source(), Key(key), fmt::format("expected strings, got {}", TypeName(e)));
        return false;
      }
      out->emplace_back(v->get(), e.source());
    }
    return true;
  }
  const toml::node* Source(std::string_view key) const { return table_.get(key); }
  const toml::source_region& source() const { return table_.source(); }

  void Finish() {
    for (auto&& [k, v] : table_) {
      if (known_.count(std::string(k.str())) == 0) {
        errors_.Add(v.source(), Key(k.str()), "unknown key");
      }
    }
  }

 private:
  const toml::table& table_;
  std::string prefix_;
  Errors& errors_;
  std::set<std::string> known_;
};

void ReadRuntime(const toml::table& t, RuntimeConfig* rt, Errors& errors) {
  TableReader r(t, "runtime", errors);
  r.Int("shards", &rt->shards, 0, 1024);
  r.IntArray("cpus", &rt->cpus, 0, 4095);
  // The completion queue is 4 x this and the kernel caps it at 65536 entries
  // (IORING_MAX_CQ_ENTRIES): past 16384 every shard would fail to start.
  r.Int("ring_entries", &rt->ring_entries, 8, 16384);
  r.Int("buffer_count", &rt->buffer_count, 1, 32768);
  if (const toml::node* n = r.Source("buffer_count");
      n != nullptr && (rt->buffer_count & (rt->buffer_count - 1)) != 0) {
    errors.Add(n->source(), "runtime.buffer_count",
               fmt::format("expected a power of two, got {}", rt->buffer_count));
  }
  r.Int("buffer_size", &rt->buffer_size, 1024, 1 << 20);
  r.Int("pipe_size", &rt->pipe_size, 0, 1 << 26);
  r.Int("pipe_pool_max", &rt->pipe_pool_max, 0, 1 << 20);
  r.Int("max_connections_per_shard", &rt->max_connections_per_shard, 1, 10'000'000);
  r.Int("drain_timeout_ms", &rt->drain_timeout_ms, 0, 86'400'000);
  r.Finish();
}

void ReadLog(const toml::table& t, LogConfig* lc, Errors& errors) {
  TableReader r(t, "log", errors);
  r.String("file", &lc->file, false);
  std::string level;
  if (r.String("level", &level, false) && !level.empty() && !log::ParseLevel(level, &lc->level)) {
    errors.Add(r.Source("level")->source(), "log.level",
               fmt::format("expected one of debug, info, warn, error, off; got '{}'", level));
  }
  r.Bool("access", &lc->access);
  r.Finish();
}

void ReadUpstream(const toml::table& t, size_t index, UpstreamGroupConfig* u, Errors& errors) {
  TableReader r(t, fmt::format("upstream[{}]", index), errors);
  r.String("name", &u->name, true);
  std::string balance;
  if (r.String("balance", &balance, false) && !balance.empty()) {
    if (balance == "round_robin") {
      u->balance = Balance::kRoundRobin;
    } else if (balance == "ip_hash") {
      u->balance = Balance::kIpHash;
    } else {
      errors.Add(r.Source("balance")->source(), r.Key("balance"),
                 fmt::format("expected round_robin or ip_hash, got '{}'", balance));
    }
  }
  std::vector<std::pair<std::string, toml::source_region>> servers;
  if (r.StringArray("servers", &servers, true)) {
    if (servers.empty()) {
      errors.Add(r.Source("servers")->source(), r.Key("servers"), "expected at least one server");
    }
    for (auto& [text, where] : servers) {
      absl::StatusOr<SocketAddress> a = SocketAddress::Parse(text);
      if (!a.ok()) {
        errors.Add(where, r.Key("servers"), MessageOf(a.status()));
        continue;
      }
      u->servers.push_back({text, *a});
    }
  }
  r.Int("connect_timeout_ms", &u->connect_timeout_ms, 1, 3'600'000);
  r.Int("max_fails", &u->max_fails, 0, 1000);
  r.Int("fail_timeout_ms", &u->fail_timeout_ms, 0, 86'400'000);
  r.Finish();
}

void ReadListener(const toml::table& t, size_t index, ListenerConfig* l, Errors& errors) {
  TableReader r(t, fmt::format("listener[{}]", index), errors);
  r.String("name", &l->name, true);
  std::string protocol;
  if (r.String("protocol", &protocol, true) && !protocol.empty()) {
    if (protocol == "tcp") {
      l->protocol = Protocol::kTcp;
    } else {
      errors.Add(r.Source("protocol")->source(), r.Key("protocol"),
                 fmt::format("expected \"tcp\", got '{}'", protocol));
    }
  }
  if (r.String("listen", &l->listen_text, true) && !l->listen_text.empty()) {
    absl::StatusOr<SocketAddress> a = SocketAddress::Parse(l->listen_text);
    if (a.ok()) {
      l->address = *a;
    } else {
      errors.Add(r.Source("listen")->source(), r.Key("listen"), MessageOf(a.status()));
    }
  }
  r.String("upstream", &l->upstream, true);
  r.Int("idle_timeout_ms", &l->idle_timeout_ms, 1, 86'400'000);
  r.Int("send_timeout_ms", &l->send_timeout_ms, 1, 86'400'000);
  r.Int("backlog", &l->backlog, 1, 65535);
  r.Int("send_buffer", &l->send_buffer, 0, 64 << 20);
  std::string relay(RelayModeName(l->relay));  // kept when the key is absent
  if (r.String("relay", &relay, false) && !ParseRelayMode(relay, &l->relay)) {
    errors.Add(r.Source("relay")->source(), r.Key("relay"),
               fmt::format("expected auto, copy or splice, got '{}'", relay));
  }
  r.Finish();
}

}  // namespace

absl::StatusOr<ConfigPtr> ParseConfig(std::string_view text, std::string_view path) {
  Errors errors(path);
  toml::parse_result parsed = toml::parse(text, path);
  if (!parsed) {
    const toml::parse_error& e = parsed.error();
    return absl::InvalidArgumentError(fmt::format("{}:{}:{}: TOML syntax error: {}", path,
                                                  e.source().begin.line, e.source().begin.column,
                                                  e.description()));
  }
  const toml::table& root = parsed.table();
  auto config = std::make_shared<Config>();
  config->path = std::string(path);

  TableReader top(root, "", errors);
  auto table_of = [&](std::string_view key) -> const toml::table* {
    const toml::node* n = top.Get(key);
    if (n == nullptr) return nullptr;
    if (!n->is_table()) {
      errors.Add(n->source(), key, fmt::format("expected a table [{}], got {}", key, TypeName(*n)));
      return nullptr;
    }
    return n->as_table();
  };
  auto tables_of = [&](std::string_view key) -> std::vector<const toml::table*> {
    std::vector<const toml::table*> out;
    const toml::node* n = top.Get(key);
    if (n == nullptr) return out;
    const toml::array* arr = n->as_array();
    if (arr == nullptr || !arr->is_array_of_tables()) {
      errors.Add(n->source(), key, fmt::format("expected an array of tables [[{}]]", key));
      return out;
    }
    for (const toml::node& e : *arr) out.push_back(e.as_table());
    return out;
  };

  if (const toml::table* t = table_of("runtime")) ReadRuntime(*t, &config->runtime, errors);
  if (const toml::table* t = table_of("log")) ReadLog(*t, &config->log, errors);
  std::vector<const toml::table*> upstreams = tables_of("upstream");
  for (size_t i = 0; i < upstreams.size(); ++i) {
    config->upstreams.emplace_back();
    ReadUpstream(*upstreams[i], i, &config->upstreams.back(), errors);
  }
  std::vector<const toml::table*> listeners = tables_of("listener");
  for (size_t i = 0; i < listeners.size(); ++i) {
    config->listeners.emplace_back();
    ReadListener(*listeners[i], i, &config->listeners.back(), errors);
  }
  top.Finish();

  // Cross references.
  absl::flat_hash_set<std::string> names;
  for (size_t i = 0; i < config->upstreams.size(); ++i) {
    const std::string& name = config->upstreams[i].name;
    if (!name.empty() && !names.insert(name).second) {
      errors.Add(upstreams[i]->source(), fmt::format("upstream[{}].name", i),
                 fmt::format("duplicate upstream name '{}'", name));
    }
  }
  absl::flat_hash_set<std::string> listener_names;
  absl::flat_hash_set<std::string> addresses;
  for (size_t i = 0; i < config->listeners.size(); ++i) {
    ListenerConfig& l = config->listeners[i];
    if (!l.name.empty() && !listener_names.insert(l.name).second) {
      errors.Add(listeners[i]->source(), fmt::format("listener[{}].name", i),
                 fmt::format("duplicate listener name '{}'", l.name));
    }
    if (l.address.size() != 0 && !addresses.insert(l.address.ToString()).second) {
      errors.Add(listeners[i]->source(), fmt::format("listener[{}].listen", i),
                 fmt::format("address {} is used by another listener", l.address.ToString()));
    }
    if (l.upstream.empty()) continue;
    for (size_t u = 0; u < config->upstreams.size(); ++u) {
      if (config->upstreams[u].name == l.upstream) l.upstream_index = static_cast<int>(u);
    }
    if (l.upstream_index < 0) {
      std::vector<std::string> known;
      for (const auto& u : config->upstreams) known.push_back(u.name);
      errors.Add(listeners[i]->source(), fmt::format("listener[{}].upstream", i),
                 fmt::format("unknown upstream '{}' (defined: {})", l.upstream,
                             known.empty() ? "none" : fmt::format("{}", fmt::join(known, ", "))));
    }
  }
  if (!errors.empty()) return errors.ToStatus();
  return ConfigPtr(std::move(config));
}

absl::StatusOr<ConfigPtr> LoadConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(
        fmt::format("{}: cannot open config file: {}", path, strerror(errno)));
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path);
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
