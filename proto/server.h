// Server wiring: config -> shards -> listeners -> sessions. The Server object lives on
// the control (main) thread; each shard runs a ShardServer on its own thread. They
// talk only through Shard::Post: a reload sends each shard a new config generation
// and the listening sockets it gains; drain and stop are messages too.
//
// Listening sockets are created on the control thread (one SO_REUSEPORT socket per
// listener per shard) so that a bind error fails start-up or the reload cleanly
// before any shard changes; the shard owns its socket from then on.
#pragma once

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config.h"
#include "core/shard.h"
#include "core/socket.h"
#include "proto/session.h"

namespace ringproxy {

class ShardServer;

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Start(ConfigPtr config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Applies a new, already validated config. On error nothing changed. Settings under
  // [runtime] that size the shards take effect at the next start (logged).
  absl::Status Reload(ConfigPtr config);
  // Stops accepting, lets sessions finish for up to runtime.drain_timeout_ms, then
  // closes the rest. Returns at once, with the drain time in ms; done_fd() becomes
  // readable at the end.
  int64_t Drain();
  // Closes listeners and every session now.
  void StopNow();
  // Readable (eventfd) once every shard has finished.
  int done_fd() const { return done_fd_.get(); }
  void Wait();

  // One line of summed counters, for logs and SIGUSR1.
  std::string StatsSummary() const;
  uint64_t CounterTotal(Counter ShardMetrics::*counter) const;
  int64_t ActiveConnections() const;
  size_t shard_count() const { return shards_.size(); }
  const ConfigPtr& config() const { return config_; }

 private:
  struct ShardSlot;
  Server() = default;
  absl::Status StartShards(const std::vector<int>& cpus);
  // Creates the sockets for listeners not bound yet; on error closes what it made.
  absl::StatusOr<std::vector<std::vector<std::pair<std::string, int>>>> BindNewListeners(
      const Config& config);
  void OnShardExit();
  // A shard's router forgot these keys (a refused login): every shard's route stacks
  // drop them too.
  void ForgetEverywhere(std::vector<std::string> keys);

  ConfigPtr config_;
  RuntimeConfig runtime_;
  std::vector<std::unique_ptr<ShardSlot>> slots_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::set<std::string> listener_keys_;
  UniqueFd done_fd_;
  std::atomic<int> running_shards_{0};
};

// "tcp|127.0.0.1:8080": what identifies a listening socket across reloads.
std::string ListenerKey(const ListenerConfig& l);

}  // namespace ringproxy
