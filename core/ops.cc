#include "core/ops.h"

#include <fcntl.h>
#include <sys/ioctl.h>

namespace ringproxy {

IoResult SpliceNow(int fd_in, int fd_out, size_t len) {
  // Capped so the byte count always fits the 32-bit result.
  if (len > (size_t{1} << 30)) len = size_t{1} << 30;
  ssize_t n = splice(fd_in, nullptr, fd_out, nullptr, len, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
  if (n < 0) return {-errno};
  return {static_cast<int32_t>(n)};
}

bool SpliceStuckAtUrgentMark(int fd, IoResult splice, bool polled) {
  if (splice.res != 0 && !(splice.res == -EAGAIN && polled)) return false;
  int at = 0;
  return ioctl(fd, SIOCATMARK, &at) == 0 && at != 0;
}

void Splice::OnPolled(Completion* c, int32_t res, uint32_t flags) {
  auto* self = static_cast<Splice*>(c);
  self->flags_ = flags;
  if (res < 0) {
    self->res_ = res;
    self->waiter_.resume();
    return;
  }
  IoResult r = SpliceNow(self->fd_in_, self->fd_out_, self->len_);
  if (r.res == -EAGAIN) {
    if (self->deadline_.Passed()) {
      self->res_ = -ETIMEDOUT;
      self->waiter_.resume();
      return;
    }
    // Readiness without progress (another reader won, or a spurious wake): wait again.
    self->Arm();
    return;
  }
  self->res_ = r.res;
  self->waiter_.resume();
}

}  // namespace ringproxy
