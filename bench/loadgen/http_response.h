// An incremental HTTP/1.x response reader for the load generator: feed it bytes as
// they arrive, in any split; it finds the status, the framing (Content-Length,
// chunked, or until close) and counts body bytes without keeping them. Lenient where
// the load generator can be (header names' case, extra spaces), strict where a
// misbehaving target must be caught (a bad status line, a bad chunk size, a head past
// its limit are errors with a reason).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringproxy::loadgen {

class HttpResponseReader {
 public:
  static constexpr size_t kHeadMax = 16384;

  // Consumes a prefix of `data`; returns how much. Stops at the end of a response,
  // so bytes of a next (pipelined) response are left for the next Reset()+Feed().
  size_t Feed(std::string_view data);
  // The connection ended: completes an until-close body, else is an error if mid-way.
  void FeedEof();
  void Reset();

  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kError; }
  const std::string& error() const { return error_; }
  int status() const { return status_; }
  uint64_t body_bytes() const { return body_bytes_; }
  bool keep_alive() const { return keep_alive_; }
  // The body must be `fill` repeated from its first byte (the benchmark origin's
  // bodies); "" checks nothing. Kept across Reset().
  void ExpectFill(std::string fill);
  // False once a body byte differed from the expected fill.
  bool body_matches() const { return body_matches_; }
  // True until any byte of this response has been seen.
  bool empty() const { return state_ == State::kHead && head_.empty(); }

 private:
  enum class State {
    kHead,
    kBody,
    kUntilClose,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailer,
    kDone,
    kError
  };
  size_t FeedHead(std::string_view data);
  bool ParseHead();
  void Fail(std::string reason);
  // Counts a piece of body and checks it against the fill.
  void Body(std::string_view piece);

  State state_ = State::kHead;
  std::string head_;
  std::string line_;  // chunk-size / trailer line being assembled
  std::string error_;
  int status_ = 0;
  bool keep_alive_ = true;
  uint64_t remaining_ = 0;
  uint64_t body_bytes_ = 0;
  std::string fill_;
  std::string fill_block_;  // fill_ repeated to 64 KiB or more: one memcmp per piece
  bool body_matches_ = true;
};

}  // namespace ringproxy::loadgen
