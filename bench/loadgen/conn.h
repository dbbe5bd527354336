// A client connection of the load generator with a receive buffer: line reads for the
// mail protocols, raw chunks for HTTP. Every wait has the run's I/O deadline.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/deadline.h"
#include "core/result.h"
#include "core/socket.h"
#include "core/task.h"

namespace ringproxy::loadgen {

class BufferedConn {
 public:
  explicit BufferedConn(UniqueFd fd, size_t buffer_size = 65536)
      : fd_(std::move(fd)), buf_(buffer_size) {}

  // Starts over on another socket (or none), keeping the buffer: no allocation per
  // connection in the connect-per-operation scenarios.
  void Reset(UniqueFd fd) {
    fd_ = std::move(fd);
    start_ = end_ = 0;
    eof_ = false;
  }
  bool connected() const { return fd_.valid(); }

  int fd() const { return fd_.get(); }
  // Bytes received and not consumed yet.
  std::string_view pending() const { return {buf_.data() + start_, end_ - start_}; }
  void Consume(size_t n) { start_ += n; }

  // Receives more bytes (compacting first). 0 = EOF, < 0 = -errno.
  Task<IoResult> Fill(Deadline deadline);
  // One line without its CRLF (or LF). Errors: -EPROTO when longer than `max`,
  // 0-sized result with eof() on EOF.
  Task<IoResult> ReadLine(std::string* line, size_t max, Deadline deadline);
  Task<IoResult> Write(std::string_view data, Deadline deadline);
  bool eof() const { return eof_; }

 private:
  UniqueFd fd_;
  std::vector<char> buf_;
  size_t start_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
};

}  // namespace ringproxy::loadgen
