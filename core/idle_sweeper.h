// Coarse idle timeouts for many long waits. A linked timeout per operation means an
// hrtimer armed and cancelled for every message a relay moves; instead, each watched
// object records its last activity, and one sweeper per shard checks every `period`.
// Watches with the same timeout sit in one list ordered by last activity (Touch moves
// a watch to the back), so a sweep looks only at the front of each list: the cost is
// proportional to what expires, not to what is watched. Expiry is late by at most one
// period.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/check.h"
#include "core/deadline.h"
#include "core/intrusive_list.h"
#include "core/sync.h"
#include "core/task.h"

namespace ringproxy {

class IdleSweeper;
class IdleWatch;

// Watches with one timeout, oldest activity first.
struct IdleWatchList {
  int64_t timeout_ns = 0;
  IntrusiveList<IdleWatch> watches;
};

class IdleWatch : public IntrusiveNode<IdleWatch> {
 public:
  using Expired = void (*)(IdleWatch* watch, void* arg);
  IdleWatch(Expired on_expired, void* arg) : on_expired_(on_expired), arg_(arg) {}
  ~IdleWatch();
  IdleWatch(const IdleWatch&) = delete;
  IdleWatch& operator=(const IdleWatch&) = delete;

  // Marks activity now. O(1).
  void Touch(int64_t now_ns);
  int64_t last_activity_ns() const { return last_ns_; }
  bool watched() const { return list_ != nullptr; }

 private:
  friend class IdleSweeper;
  Expired on_expired_;
  void* arg_;
  int64_t last_ns_ = 0;
  IdleWatchList* list_ = nullptr;
};

class IdleSweeper {
 public:
  explicit IdleSweeper(int64_t period_ms = 100) : period_ms_(period_ms) {}
  ~IdleSweeper();
  IdleSweeper(const IdleSweeper&) = delete;
  IdleSweeper& operator=(const IdleSweeper&) = delete;

  // Starts watching: `on_expired` runs (from the sweeper) once the watch has seen no
  // Touch for timeout_ms; the watch is removed before the call.
  void Add(IdleWatch* watch, int64_t timeout_ms, int64_t now_ns);
  void Remove(IdleWatch* watch);

  // The sweeper loop; sleeps only while something is watched. Ends after Stop().
  Task<void> Run();
  void Stop();
  size_t size() const { return size_; }

 private:
  void Sweep(int64_t now_ns);

  int64_t period_ms_;
  std::vector<std::unique_ptr<IdleWatchList>> lists_;  // one per distinct timeout
  size_t size_ = 0;
  bool stopping_ = false;
  Event wake_;
};

}  // namespace ringproxy
