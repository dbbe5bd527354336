#include "core/signals.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fmt/format.h"

namespace ringproxy {

absl::StatusOr<SignalFd> SignalFd::Create(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) {
    return absl::InternalError("pthread_sigmask failed");
  }
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return absl::InternalError(fmt::format("signalfd: {}", strerror(errno)));
  SignalFd out;
  out.fd_.Reset(fd);
  return out;
}

int SignalFd::ReadOne() {
  signalfd_siginfo info;
  ssize_t n = read(fd_.get(), &info, sizeof(info));
  if (n != sizeof(info)) return 0;
  return static_cast<int>(info.ssi_signo);
}

}  // namespace ringproxy
