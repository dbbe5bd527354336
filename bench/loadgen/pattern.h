// The byte stream that bulk and echo scenarios send: pseudo-random, a pure function
// of the stream offset, so a receiver can verify any chunk without keeping what was
// sent. Its period (a prime number of bytes) does not line up with any buffer or
// pipe size, so a reordered or repeated chunk is caught.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace ringproxy::loadgen {

class Pattern {
 public:
  static constexpr size_t kPeriod = 1048573;  // largest prime below 2^20

  static const Pattern& Get();
  // Bytes [offset, offset + len) of the stream, for sending: a view into one copy of
  // the period followed by a wrap-around tail, so any len <= kMaxChunk is contiguous.
  std::span<const std::byte> At(uint64_t offset, size_t len) const;
  // True when `data` equals the stream at `offset`.
  bool Matches(uint64_t offset, std::span<const std::byte> data) const;

  static constexpr size_t kMaxChunk = 1 << 20;

 private:
  Pattern();
  std::vector<std::byte> bytes_;  // kPeriod + kMaxChunk
};

}  // namespace ringproxy::loadgen
