// A per-shard pool of pipes for splice relays. A relay holds a pipe only while bytes
// are in it; an idle connection holds none, so idle connections cost two descriptors
// (not six) and no pipe pages. Pipes go back to the pool empty.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/result.h"

namespace ringproxy {

struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  bool valid() const { return read_fd >= 0; }
};

class PipePool {
 public:
  // pipe_size: F_SETPIPE_SZ for new pipes (0 = kernel default); max_cached: pipes kept
  // for reuse (the rest are closed).
  PipePool(size_t pipe_size, size_t max_cached);
  ~PipePool();
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  // A pipe from the pool or a new one; -errno on failure (EMFILE).
  IoResult Acquire(Pipe* out);
  // Returns an empty pipe for reuse.
  void Release(Pipe pipe);
  // Closes a pipe that may still hold bytes (error paths).
  void Discard(Pipe pipe);

  size_t pipe_capacity() const { return capacity_; }
  uint64_t created() const { return created_; }
  size_t cached() const { return free_.size(); }
  uint64_t outstanding() const { return outstanding_; }

 private:
  size_t pipe_size_;
  size_t max_cached_;
  size_t capacity_;
  std::vector<Pipe> free_;
  uint64_t created_ = 0;
  uint64_t outstanding_ = 0;
};

}  // namespace ringproxy
