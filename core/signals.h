// Signals for the control thread: blocked in every thread (shards inherit the mask)
// and read synchronously from a signalfd, so no handler runs in the middle of a
// reactor turn.
#pragma once

#include <initializer_list>

#include "absl/status/statusor.h"
#include "core/socket.h"

namespace ringproxy {

class SignalFd {
 public:
  // Blocks `signals` in the calling thread (call before starting threads).
  static absl::StatusOr<SignalFd> Create(std::initializer_list<int> signals);
  int fd() const { return fd_.get(); }
  // Reads one pending signal number, or 0 if none is pending.
  int ReadOne();

 private:
  UniqueFd fd_;
};

}  // namespace ringproxy
