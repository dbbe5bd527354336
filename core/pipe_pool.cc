#include "core/pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "core/check.h"

namespace ringproxy {

PipePool::PipePool(size_t pipe_size, size_t max_cached)
    : pipe_size_(pipe_size),
      max_cached_(max_cached),
      capacity_(pipe_size != 0 ? pipe_size : 65536) {}

PipePool::~PipePool() {
  for (Pipe& p : free_) {
    close(p.read_fd);
    close(p.write_fd);
  }
}

IoResult PipePool::Acquire(Pipe* out) {
  if (!free_.empty()) {
    *out = free_.back();
    free_.pop_back();
    ++outstanding_;
    return {0};
  }
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return {-errno};
  if (pipe_size_ != 0) {
    // Larger pipes mean fewer splice calls per MB. The kernel may refuse (over
    // fs.pipe-max-size, or the user's pipe page budget); the default size still works.
    int got = fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(pipe_size_));
    if (got > 0) capacity_ = static_cast<size_t>(got);
  }
  ++created_;
  ++outstanding_;
  *out = Pipe{fds[0], fds[1]};
  return {0};
}

void PipePool::Release(Pipe pipe) {
  RP_DCHECK(outstanding_ > 0);
  --outstanding_;
  if (free_.size() < max_cached_) {
    free_.push_back(pipe);
    return;
  }
  close(pipe.read_fd);
  close(pipe.write_fd);
}

void PipePool::Discard(Pipe pipe) {
  RP_DCHECK(outstanding_ > 0);
  --outstanding_;
  close(pipe.read_fd);
  close(pipe.write_fd);
}

}  // namespace ringproxy
