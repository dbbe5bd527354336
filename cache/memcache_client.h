// A per-shard memcached client speaking the binary protocol (cache/memcache_codec.h):
// one persistent connection per server, requests pipelined and matched in order (with
// the opaque checked), a fetch timeout, and failure handling: a server that times
// out, resets or answers garbage is marked bad, its requests fail as "unavailable"
// (the one a garbage answer was for as a protocol error),
// and its keys go to the next live server until `reconnect_ms` has passed; then it is
// connected to again in the background and takes its keys back once that succeeds
// (while no server is up, requests wait for that connect instead).
// Key placement: ketama (libmemcached-compatible) or zimbra (see cache/placement.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cache/memcache_codec.h"
#include "cache/placement.h"
#include "core/intrusive_list.h"
#include "core/socket.h"
#include "core/sync.h"
#include "core/task.h"

namespace ringproxy {

struct MemcacheOptions {
  std::vector<CacheServer> servers;
  Distribution distribution = Distribution::kKetama;
  int64_t timeout_ms = 3000;     // per request, and for connecting
  int64_t reconnect_ms = 60000;  // how long a failed server is left alone
  size_t max_pending = 4096;     // per server; past it requests fail at once
  uint32_t max_value = 1 << 20;
  bool operator==(const MemcacheOptions&) const = default;
};

enum class McError : uint8_t {
  kNone,
  kUnavailable,  // no live server, connect failure, timeout, reset, queue full
  kProtocol,     // the server answered something we cannot use
};

struct McReply {
  McError error = McError::kNone;
  uint16_t status = 0;   // memcache::Status when error == kNone
  std::string value;     // GET hits
  uint64_t counter = 0;  // INCREMENT/DECREMENT
  int server = -1;       // which server answered (or was tried)

  bool ok() const { return error == McError::kNone; }
  bool hit() const { return ok() && status == 0; }
};

struct MemcacheStats {
  uint64_t requests = 0;
  uint64_t unavailable = 0;
  uint64_t timeouts = 0;
  uint64_t connects = 0;
  uint64_t connect_failures = 0;
  uint64_t servers_marked_bad = 0;
};

class MemcacheClient {
 public:
  explicit MemcacheClient(MemcacheOptions options);
  ~MemcacheClient();
  MemcacheClient(const MemcacheClient&) = delete;
  MemcacheClient& operator=(const MemcacheClient&) = delete;

  // Keys longer than 250 bytes are replaced by their MD5 (memcache::NormalizeKey).
  Task<McReply> Get(std::string key);
  Task<McReply> Add(std::string key, std::string value, uint32_t ttl_s);
  Task<McReply> Set(std::string key, std::string value, uint32_t ttl_s);
  // delta added; a missing key is created with `initial` (and ttl_s).
  Task<McReply> Increment(std::string key, uint64_t delta, uint64_t initial, uint32_t ttl_s);
  Task<McReply> Delete(std::string key);
  // Fails every request in flight as unavailable, now, and every later one at once
  // (shutdown: nobody waits for a silent server's deadline).
  void Abort();
  // Abort(), then waits for the kernel to let go of the connections. Call before
  // destruction.
  Task<void> Close();

  // The server a key goes to now (live servers only), or -1.
  int ServerFor(std::string_view key);
  bool ServerUsable(size_t index) const;
  const MemcacheStats& stats() const { return stats_; }
  size_t server_count() const { return servers_.size(); }

 private:
  struct Pending;
  struct Server;
  class Waiter;

  Task<McReply> Execute(std::string key, memcache::Opcode op, std::string request_tail_value,
                        uint64_t a, uint64_t b, uint32_t ttl);
  void Enqueue(Server& s, Pending* p);
  Task<void> Connect(Server* s, Gate::Holder holder);
  Task<void> Reader(Server* s, Gate::Holder holder);
  Task<void> Writer(Server* s, Gate::Holder holder);
  Task<void> Watchdog(Gate::Holder holder);
  void MarkBad(Server& s, std::string_view why);
  void Complete(Pending* p, McError error);

  MemcacheOptions options_;
  KeyPlacement placement_;
  std::vector<std::unique_ptr<Server>> servers_;
  Gate tasks_;
  Event pending_work_;
  bool watchdog_running_ = false;
  bool closing_ = false;
  uint32_t next_opaque_ = 1;
  MemcacheStats stats_;
};

}  // namespace ringproxy
