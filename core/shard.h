// Shard: one thread, pinned to one CPU, owning one Reactor and everything built on
// it. Other threads talk to a shard only through its mailbox (a mutex-protected list
// of closures plus an eventfd the shard reads through its ring): control messages
// such as reload, drain and stats, never data.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/reactor.h"
#include "core/sync.h"
#include "core/task.h"

namespace ringproxy {

class Shard {
 public:
  using Main = std::function<Task<void>(Shard&)>;

  // Starts the thread, pins it to `cpu` (-1: not pinned), creates its reactor there
  // and runs main(shard) until it finishes. Returns once the reactor exists (or failed).
  static absl::StatusOr<std::unique_ptr<Shard>> Start(int id, int cpu,
                                                      const ReactorOptions& options, Main main);
  ~Shard();  // joins

  // Runs `fn` on the shard thread, from its loop. Callable from any thread. Once the
  // shard's main has finished, `fn` is not run but destroyed at once (on the caller's
  // thread), so what it holds (a listening socket) is released then, not at ~Shard.
  void Post(std::function<void()> fn);
  void Join();

  int id() const { return id_; }
  int cpu() const { return cpu_; }
  // Only from the shard's own thread.
  Reactor& reactor() { return *reactor_; }

 private:
  Shard(int id, int cpu) : id_(id), cpu_(cpu) {}
  void ThreadMain(const ReactorOptions& options, Main main);
  Task<void> MailboxLoop();
  Task<void> RunMain(Main main);

  int id_;
  int cpu_;
  int event_fd_ = -1;
  std::thread thread_;
  std::unique_ptr<Reactor> reactor_;
  std::mutex mu_;
  std::vector<std::function<void()>> mailbox_;
  bool mailbox_closed_ = false;  // under mu_: the loop has ended
  bool main_done_ = false;
  Event mailbox_done_;
};

// The CPUs this process may run on (sched_getaffinity), ascending.
std::vector<int> AllowedCpus();

}  // namespace ringproxy
