#include "bench/loadgen/conn.h"

#include <cstring>

#include "core/ops.h"

namespace ringproxy::loadgen {

Task<IoResult> BufferedConn::Fill(Deadline deadline) {
  if (start_ > 0) {
    memmove(buf_.data(), buf_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  if (end_ == buf_.size()) co_return IoResult{-ENOBUFS};
  auto* space = reinterpret_cast<std::byte*>(buf_.data() + end_);
  IoResult r = co_await Recv(fd_.get(), std::span<std::byte>(space, buf_.size() - end_), deadline);
  if (r.res > 0) end_ += r.value();
  if (r.res == 0) eof_ = true;
  co_return r;
}

Task<IoResult> BufferedConn::ReadLine(std::string* line, size_t max, Deadline deadline) {
  for (;;) {
    std::string_view p = pending();
    size_t nl = p.find('\n');
    if (nl != std::string_view::npos) {
      size_t len = nl > 0 && p[nl - 1] == '\r' ? nl - 1 : nl;
      line->assign(p.data(), len);
      Consume(nl + 1);
      co_return IoResult{static_cast<int32_t>(len)};
    }
    if (p.size() > max) co_return IoResult{-EPROTO};
    IoResult r = co_await Fill(deadline);
    if (r.res == 0) co_return IoResult{0};
    if (!r.ok()) co_return r;
  }
}

Task<IoResult> BufferedConn::Write(std::string_view data, Deadline deadline) {
  co_return co_await SendAll(fd_.get(), AsBytes(data), deadline);
}

}  // namespace ringproxy::loadgen
