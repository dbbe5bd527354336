#include "core/bounded_reader.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/check.h"

namespace ringproxy {

std::string_view ReadStatusName(ReadStatus s) {
  switch (s) {
    case ReadStatus::kOk:
      return "ok";
    case ReadStatus::kEof:
      return "end of stream";
    case ReadStatus::kTimeout:
      return "timeout";
    case ReadStatus::kTooLong:
      return "line too long";
    case ReadStatus::kBadLineEnding:
      return "bare LF";
    case ReadStatus::kError:
      return "error";
    case ReadStatus::kStopped:
      return "stopped";
  }
  return "?";
}

BoundedReader::BoundedReader(ByteStream* stream, size_t max_line, LineEnding ending)
    : stream_(stream), max_line_(max_line), ending_(ending) {}

void BoundedReader::Settle() {
  if (own_taken_ > 0) {
    own_.erase(0, own_taken_);
    own_taken_ = 0;
    if (own_.empty()) std::string().swap(own_);  // an idle reader holds no allocation
  }
  if (stream_taken_ > 0) {
    stream_->Consume(stream_taken_);
    stream_taken_ = 0;
  }
}

size_t BoundedReader::FindLf(std::span<const std::byte> data) {
  const void* p = memchr(data.data(), '\n', data.size());
  return p == nullptr ? std::string_view::npos
                      : static_cast<size_t>(static_cast<const std::byte*>(p) - data.data());
}

ReadStatus BoundedReader::LineFrom(std::string_view text, size_t lf, std::string_view* line) {
  std::string_view l = text.substr(0, lf);
  if (!l.empty() && l.back() == '\r') {
    l.remove_suffix(1);
  } else if (ending_ == LineEnding::kCrlf) {
    return ReadStatus::kBadLineEnding;
  }
  if (l.size() > max_line_) return ReadStatus::kTooLong;
  *line = l;
  return ReadStatus::kOk;
}

Task<ReadStatus> BoundedReader::More(Deadline deadline) {
  // Nothing of the stream is held here: what a partial line needs was copied.
  IoResult r = co_await stream_->Fill(deadline);
  if (r.res > 0) co_return ReadStatus::kOk;
  if (r.res == 0) co_return ReadStatus::kEof;
  if (r.timed_out()) co_return ReadStatus::kTimeout;
  if (r.cancelled() || stream_->aborted()) co_return ReadStatus::kStopped;
  error_ = r.error();
  co_return ReadStatus::kError;
}

Task<ReadStatus> BoundedReader::ReadLine(Deadline deadline, std::string_view* line) {
  Settle();
  for (;;) {
    if (!own_.empty()) {
      size_t lf = own_.find('\n');
      if (lf != std::string::npos) {
        own_taken_ = lf + 1;
        co_return LineFrom(own_, lf, line);
      }
    }
    std::span<const std::byte> chunk = stream_->Peek();
    if (!chunk.empty()) {
      const size_t lf = FindLf(chunk);
      if (own_.empty() && lf != std::string_view::npos) {
        stream_taken_ = lf + 1;  // zero copy: the line is a view into the chunk
        co_return LineFrom({reinterpret_cast<const char*>(chunk.data()), chunk.size()}, lf, line);
      }
      const size_t take = lf != std::string_view::npos ? lf + 1 : chunk.size();
      // +2: room for the line's CRLF. Past that the line cannot end within the limit.
      if (own_.size() + take > max_line_ + 2 && lf == std::string_view::npos) {
        skipping_ = true;
        co_return ReadStatus::kTooLong;
      }
      own_.append(reinterpret_cast<const char*>(chunk.data()), take);
      stream_->Consume(take);
      continue;
    }
    ReadStatus s = co_await More(deadline);
    if (s != ReadStatus::kOk) co_return s;
  }
}

Task<ReadStatus> BoundedReader::SkipLine(Deadline deadline) {
  Settle();
  if (!skipping_) co_return ReadStatus::kOk;
  std::string().swap(own_);
  for (;;) {
    std::span<const std::byte> chunk = stream_->Peek();
    const size_t lf = FindLf(chunk);
    if (lf != std::string_view::npos) {
      stream_->Consume(lf + 1);
      skipping_ = false;
      co_return ReadStatus::kOk;
    }
    stream_->Consume(chunk.size());
    ReadStatus s = co_await More(deadline);
    if (s != ReadStatus::kOk) co_return s;
  }
}

Task<ReadStatus> BoundedReader::ReadSome(size_t max, Deadline deadline,
                                         std::span<const std::byte>* out) {
  RP_DCHECK(max > 0);
  Settle();
  if (!own_.empty()) {
    own_taken_ = std::min(max, own_.size());
    *out = {reinterpret_cast<const std::byte*>(own_.data()), own_taken_};
    co_return ReadStatus::kOk;
  }
  if (stream_->Peek().empty()) {
    ReadStatus s = co_await More(deadline);
    if (s != ReadStatus::kOk) co_return s;
  }
  std::span<const std::byte> chunk = stream_->Peek();
  stream_taken_ = std::min(max, chunk.size());
  *out = chunk.first(stream_taken_);
  co_return ReadStatus::kOk;
}

Task<ReadStatus> BoundedReader::ReadExactly(size_t n, Deadline deadline, std::string* out) {
  while (n > 0) {
    std::span<const std::byte> part;
    ReadStatus s = co_await ReadSome(n, deadline, &part);
    if (s != ReadStatus::kOk) co_return s;
    out->append(reinterpret_cast<const char*>(part.data()), part.size());
    n -= part.size();
  }
  Settle();
  co_return ReadStatus::kOk;
}

size_t BoundedReader::buffered() const {
  return (own_.size() - own_taken_) + (stream_->buffered() - stream_taken_);
}

size_t BoundedReader::DiscardBuffered() {
  const size_t n = buffered();
  std::string().swap(own_);
  own_taken_ = 0;
  stream_taken_ = 0;
  skipping_ = false;
  stream_->DiscardBuffered();
  return n;
}

std::string BoundedReader::Release() {
  Settle();
  skipping_ = false;
  return std::exchange(own_, std::string());
}

void BoundedReader::Reset(ByteStream* stream) {
  Settle();
  RP_CHECK(own_.empty());
  stream_ = stream;
}

}  // namespace ringproxy
