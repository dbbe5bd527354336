// Idle upstream connections of one shard, kept between HTTP requests for reuse
// (keep-alive to the upstream). A connection is pooled under its config generation,
// group and server, so a reload never hands a session a connection to a server of
// another generation; only the current generation's connections are kept (an entry
// holds its generation alive until it goes). Taking
// checks liveness without a system call: an idle connection whose receive has seen
// bytes or EOF (the server closed it, or sent something unasked) is not reused.
// Each entry is closed after the idle timeout (the shard's sweeper), when its key
// holds more than `max_idle`, and at shutdown (Close()).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/idle_sweeper.h"
#include "core/plain_stream.h"
#include "core/sync.h"
#include "core/task.h"
#include "proto/session.h"
#include "tls/tls_stream.h"

namespace ringproxy {

// An upstream connection as an HTTP session holds it.
// It holds its config generation: the TLS context and balancer it was made with stay
// alive until it is closed.
struct UpstreamLink {
  SnapshotRef generation;
  uint32_t group = 0;
  std::unique_ptr<PlainStream> plain;
  std::unique_ptr<TlsStream> tls;  // over `plain` when the group has [upstream.tls]
  uint32_t server = 0;
  ServerLease lease;      // while a session uses it (least_conn); none while pooled
  uint64_t requests = 0;  // served on this connection so far

  ByteStream* stream() const {
    return tls != nullptr ? static_cast<ByteStream*>(tls.get()) : plain.get();
  }
  // Aborts, then waits until the kernel references nothing of either stream.
  Task<void> Close();
};

class UpstreamPool {
 public:
  explicit UpstreamPool(IdleSweeper* sweeper) : sweeper_(sweeper) {}
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // The most recently pooled live connection to `server` of `group` in `generation`,
  // or null. Dead ones found on the way are closed.
  std::unique_ptr<UpstreamLink> Take(ShardSnapshot* generation, uint32_t group, uint32_t server);
  // Keeps `link` (idle, nothing buffered) for up to idle_timeout_ms; the oldest entry of
  // its key goes when the key holds more than max_idle.
  void Put(std::unique_ptr<UpstreamLink> link, int max_idle, int64_t idle_timeout_ms);
  // The shard's current generation (a reload): idle connections of the others are
  // closed now, and theirs are not pooled from now on.
  void SetCurrent(ShardSnapshot* generation);
  // Closes a connection that will not be reused, in the background.
  void Retire(std::unique_ptr<UpstreamLink> link);
  // Shutdown: closes every pooled connection and waits for every Retire.
  Task<void> Close();
  size_t idle() const { return idle_; }

 private:
  struct Key {
    ShardSnapshot* generation;
    uint32_t group;
    uint32_t server;
    bool operator==(const Key&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.generation, k.group, k.server);
    }
  };
  struct Entry {
    Entry(UpstreamPool* p, Key k) : pool(p), key(k), watch(&UpstreamPool::Expired, this) {}
    UpstreamPool* pool;
    Key key;
    std::unique_ptr<UpstreamLink> link;
    IdleWatch watch;
  };
  static void Expired(IdleWatch* watch, void* arg);
  // Removes `e` from its key's list and retires its connection.
  void Drop(Entry* e);
  static Task<void> CloseLink(std::unique_ptr<UpstreamLink> link, Gate::Holder holder);

  IdleSweeper* sweeper_;
  absl::flat_hash_map<Key, std::vector<std::unique_ptr<Entry>>> idle_by_key_;
  size_t idle_ = 0;
  bool closing_ = false;
  ShardSnapshot* current_ = nullptr;  // compared only; null until the first SetCurrent
  Gate retiring_;
};

}  // namespace ringproxy
