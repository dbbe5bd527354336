#include "bench/loadgen/pattern.h"

#include <cstring>

namespace ringproxy::loadgen {

const Pattern& Pattern::Get() {
  static const Pattern* pattern = new Pattern();
  return *pattern;
}

Pattern::Pattern() : bytes_(kPeriod + kMaxChunk) {
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < kPeriod; ++i) {
    // xorshift64*: fast and good enough to make every chunk distinct.
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    bytes_[i] = static_cast<std::byte>((x * 0x2545F4914F6CDD1Dull) >> 56);
  }
  // The tail repeats the start so any chunk is contiguous. kMaxChunk > kPeriod, so the
  // ranges overlap: copy forwards, byte by byte, which extends the period correctly.
  for (size_t i = kPeriod; i < bytes_.size(); ++i) bytes_[i] = bytes_[i - kPeriod];
}

std::span<const std::byte> Pattern::At(uint64_t offset, size_t len) const {
  if (len > kMaxChunk) len = kMaxChunk;
  return {bytes_.data() + offset % kPeriod, len};
}

bool Pattern::Matches(uint64_t offset, std::span<const std::byte> data) const {
  while (!data.empty()) {
    size_t n = data.size() < kMaxChunk ? data.size() : kMaxChunk;
    if (memcmp(bytes_.data() + offset % kPeriod, data.data(), n) != 0) return false;
    offset += n;
    data = data.subspan(n);
  }
  return true;
}

}  // namespace ringproxy::loadgen
