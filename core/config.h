// The configuration snapshot: plain immutable data, loaded from TOML by LoadConfig().
// A running server holds one snapshot per generation; reload builds a new one and
// each shard swaps it in at a quiet point. Connections keep the snapshot they began
// with. Every key, default and meaning is listed in docs/configuration.md.
//
// core/ reads only what core owns ([runtime], [log], the common keys of [[upstream]]
// and [[listener]]). Everything else is read by the module that owns it, through a
// ConfigSchema the daemon assembles: a listener protocol ("tcp", later "imap", ...)
// registers the reader of its own listener keys; a module registers top-level
// sections ([tls]) and sub-tables of listeners and upstreams ([listener.tls],
// [upstream.tls]). Their results ride along in the snapshot as ConfigExtensions, so
// core never includes a module above it and a new protocol adds a file, not a branch.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/log.h"
#include "core/socket.h"

namespace ringproxy {

enum class Balance { kRoundRobin, kLeastConn, kIpHash };
// How a listener's pump moves bytes between plain sockets (core/pump.h): splice,
// ring copy, or by size.
enum class RelayMode : uint8_t { kAuto, kCopy, kSplice };

std::string_view BalanceName(Balance b);
std::string_view RelayModeName(RelayMode mode);
bool ParseRelayMode(std::string_view text, RelayMode* out);

// What a module read from its part of the file; immutable once the snapshot is built.
struct ConfigExtension {
  virtual ~ConfigExtension() = default;
};
using ExtensionPtr = std::shared_ptr<const ConfigExtension>;

// Extensions by the name they were registered under ("tls", "tcp").
class Extensions {
 public:
  void Set(std::string name, ExtensionPtr ext);
  const ConfigExtension* Find(std::string_view name) const;
  // The caller knows the type registered under `name`.
  template <typename T>
  const T* Get(std::string_view name) const {
    return static_cast<const T*>(Find(name));
  }

 private:
  std::vector<std::pair<std::string, ExtensionPtr>> items_;
};

struct RuntimeConfig {
  int shards = 0;         // 0: one per CPU in `cpus`
  std::vector<int> cpus;  // empty: every CPU the process may use
  int ring_entries = 1024;
  int buffer_count = 1024;
  int buffer_size = 16384;
  int pipe_size = 262144;
  int pipe_pool_max = 64;
  int max_connections_per_shard = 50000;
  int64_t drain_timeout_ms = 30000;
  int coalesce_us = 0;  // 0: wake at every completion

  bool operator==(const RuntimeConfig&) const = default;
};

// How HTTP requests are written to the access log (sessions of other protocols: kKv).
enum class AccessFormat { kKv, kJson, kCombined };

struct LogConfig {
  std::string file;  // empty: standard error
  log::Level level = log::Level::kInfo;
  bool access = true;
  std::string access_file;  // empty: access lines go to the log
  AccessFormat access_format = AccessFormat::kKv;
};

struct UpstreamServerConfig {
  std::string text;  // "host:port" as written (without its options), for logs
  SocketAddress address;
  int weight = 1;  // "host:port weight=N": its share of round_robin and least_conn picks
  std::string id;  // "host:port id=NAME": the node a request path may name
};

struct UpstreamGroupConfig {
  std::string name;
  int index = 0;  // in Config::upstreams
  Balance balance = Balance::kRoundRobin;
  std::vector<UpstreamServerConfig> servers;
  int64_t connect_timeout_ms = 5000;
  int max_fails = 1;
  int64_t fail_timeout_ms = 10000;
  Extensions extensions;  // [upstream.<name>] sub-tables of modules ("tls")
};

struct ListenerConfig {
  std::string name;
  int index = 0;         // in Config::listeners
  std::string protocol;  // a registered listener protocol
  std::string listen_text;
  SocketAddress address;
  std::string upstream;
  int upstream_index = -1;  // into Config::upstreams
  int64_t idle_timeout_ms = 600000;
  int64_t send_timeout_ms = 60000;  // a send that makes no progress this long fails
  int backlog = 4096;
  int send_buffer = 0;  // SO_SNDBUF of client sockets; 0: the kernel's autotuning
  RelayMode relay = RelayMode::kAuto;
  ExtensionPtr protocol_settings;  // what the protocol's reader kept (may be null)
  Extensions extensions;           // [listener.<name>] sub-tables of modules ("tls")
};

struct Config {
  std::string path;
  RuntimeConfig runtime;
  LogConfig log;
  std::vector<UpstreamGroupConfig> upstreams;
  std::vector<ListenerConfig> listeners;
  Extensions sections;  // top-level sections of modules ("tls")

  const UpstreamGroupConfig& upstream_of(const ListenerConfig& l) const {
    return upstreams[static_cast<size_t>(l.upstream_index)];
  }
};

using ConfigPtr = std::shared_ptr<const Config>;

class ConfigErrors;

// One TOML table as a module reads it: typed getters whose errors name the file, the
// line, the key and what was expected. Keys nobody read are errors ("unknown key"),
// checked once every reader of the table has run.
class ConfigTable {
 public:
  ~ConfigTable();
  ConfigTable(const ConfigTable&) = delete;
  ConfigTable& operator=(const ConfigTable&) = delete;

  // Absent keys leave *out as it is.
  void Int(std::string_view key, int64_t* out, int64_t min, int64_t max);
  void Int(std::string_view key, int* out, int64_t min, int64_t max);
  void Int(std::string_view key, uint32_t* out, int64_t min, int64_t max);
  void Bool(std::string_view key, bool* out);
  // False when present but not a string (or missing and required).
  bool String(std::string_view key, std::string* out, bool required = false);
  // The same, and an empty string is an error (a name, an address, a reference).
  bool NonEmptyString(std::string_view key, std::string* out, bool required = false);
  bool StringList(std::string_view key, std::vector<std::string>* out, bool required = false);
  bool Has(std::string_view key) const;
  // A string naming a file, and the file's contents, read now (at most `max_bytes`).
  bool FileContents(std::string_view key, std::string* path, std::string* contents,
                    size_t max_bytes);
  // One of a fixed set of names ("expected a, b or c, got 'd'" otherwise).
  template <typename E>
  void Choice(std::string_view key, std::initializer_list<std::pair<std::string_view, E>> names,
              E* out) {
    std::string text;
    if (!String(key, &text) || !Has(key)) return;  // present and empty is an error
    for (const auto& [name, value] : names) {
      if (name == text) {
        *out = value;
        return;
      }
    }
    std::vector<std::string_view> all;
    for (const auto& n : names) all.push_back(n.first);
    ChoiceError(key, all, text);
  }
  // A sub-table, or nullptr when absent (an error too when it is not a table).
  ConfigTable* Table(std::string_view key);
  // An array of tables ([[listener.location]]), in file order; empty when absent (an
  // error too when it is not an array of tables).
  std::vector<ConfigTable*> Tables(std::string_view key);
  // An error at the key's line (or the table's when the key is absent).
  void Error(std::string_view key, std::string_view message);
  // An error about the table as a whole, at its line.
  void Fail(std::string_view message);
  // "listener[1].tls.certificate"
  std::string Key(std::string_view key) const;
  // True under `--check`: readers validate and must change nothing outside the process
  // (no file created, no socket bound).
  bool checking() const { return checking_; }
  // An error at `key` unless `path` ("-": standard output) could be opened for appending;
  // creates nothing.
  void CheckAppendable(std::string_view key, const std::string& path);

 private:
  friend class ConfigParser;
  ConfigTable(const void* table, std::string prefix, ConfigErrors* errors, bool checking);
  void Finish();
  void ChoiceError(std::string_view key, const std::vector<std::string_view>& names,
                   std::string_view got);
  const void* table_;  // a toml::table (toml++ stays inside core/config.cc)
  std::string prefix_;
  ConfigErrors* errors_;
  std::vector<std::string> known_;
  std::vector<std::unique_ptr<ConfigTable>> children_;
  bool checking_;
};

// Errors of one parse; a check adds the ones that need the whole file.
class ConfigErrors {
 public:
  explicit ConfigErrors(std::string_view path) : path_(path) {}
  void Add(int line, std::string_view key, std::string_view message);
  void Add(std::string_view key, std::string_view message);
  bool empty() const { return list_.empty(); }
  absl::Status ToStatus() const;

 private:
  std::string path_;
  std::vector<std::string> list_;
};

// What the daemon knows how to read beyond core's own keys.
class ConfigSchema {
 public:
  // Reads a module's keys from `table`; `so_far` holds everything read before it
  // (sections before upstreams before listeners). Returns what to keep, or null.
  using Reader = std::function<ExtensionPtr(ConfigTable& table, const Config& so_far)>;
  // A check over the whole config, after every reader (cross references).
  using Check = std::function<void(const Config& config, ConfigErrors& errors)>;

  void AddSection(std::string name, Reader reader);
  // `protocol = "name"` on a listener; the reader sees the listener's table.
  void AddListenerProtocol(std::string name, Reader reader);
  void AddListenerTable(std::string name, Reader reader);
  void AddUpstreamTable(std::string name, Reader reader);
  void AddCheck(Check check);

 private:
  friend class ConfigParser;
  struct Entry {
    std::string name;
    Reader reader;
  };
  std::vector<Entry> sections_;
  std::vector<Entry> protocols_;
  std::vector<Entry> listener_tables_;
  std::vector<Entry> upstream_tables_;
  std::vector<Check> checks_;
};

// What a config is read for: to run it, or only to check it (`--check`, which must leave
// no trace: ConfigTable::checking()).
enum class ConfigUse { kRun, kCheck };

// Parses and validates; errors name the file, line, key and what was expected.
absl::StatusOr<ConfigPtr> ParseConfig(std::string_view text, std::string_view path,
                                      const ConfigSchema& schema, ConfigUse use = ConfigUse::kRun);
absl::StatusOr<ConfigPtr> LoadConfig(const std::string& path, const ConfigSchema& schema,
                                     ConfigUse use = ConfigUse::kRun);

// The CPUs the shards run on: runtime.cpus (checked against what the process may
// use) or all allowed CPUs, trimmed or checked against runtime.shards.
absl::StatusOr<std::vector<int>> ResolveShardCpus(const RuntimeConfig& runtime);

}  // namespace ringproxy
