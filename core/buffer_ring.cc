#include "core/buffer_ring.h"

#include <sys/mman.h>

#include <cstring>

#include "absl/status/status.h"
#include "core/check.h"
#include "core/log.h"
#include "fmt/format.h"

namespace ringproxy {

absl::StatusOr<std::unique_ptr<BufferRing>> BufferRing::Create(Reactor& reactor, uint16_t group_id,
                                                               uint32_t count, uint32_t size,
                                                               bool populate) {
  if (count == 0 || count > 32768 || (count & (count - 1)) != 0) {
    return absl::InvalidArgumentError(
        fmt::format("buffer ring count {} must be a power of two in 1..32768", count));
  }
  if (size == 0) return absl::InvalidArgumentError("buffer ring buffer size must be > 0");
  std::unique_ptr<BufferRing> br(new BufferRing());
  br->reactor_ = &reactor;
  br->group_id_ = group_id;
  br->count_ = count;
  br->size_ = size;
  const size_t page = 4096;
  br->ring_bytes_ = (count * sizeof(io_uring_buf) + page - 1) / page * page;
  void* ring_mem =
      mmap(nullptr, br->ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (ring_mem == MAP_FAILED) {
    return absl::ResourceExhaustedError(fmt::format("mmap buffer ring: {}", strerror(errno)));
  }
  br->ring_ = static_cast<io_uring_buf_ring*>(ring_mem);
  br->base_bytes_ = size_t{count} * size;
  // The kernel hands buffers out in ring order, so a busy shard touches all of them
  // soon anyway; populating up front makes that memory visible at start.
  void* base = mmap(nullptr, br->base_bytes_, PROT_READ | PROT_WRITE,
                    MAP_ANONYMOUS | MAP_PRIVATE | (populate ? MAP_POPULATE : MAP_NORESERVE), -1, 0);
  if (base == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        fmt::format("mmap of {} MiB of receive buffers (runtime.buffer_count x buffer_size): {}",
                    br->base_bytes_ >> 20, strerror(errno)));
  }
  br->base_ = static_cast<std::byte*>(base);
  io_uring_buf_ring_init(br->ring_);
  io_uring_buf_reg reg;
  memset(&reg, 0, sizeof(reg));
  reg.ring_addr = reinterpret_cast<uint64_t>(br->ring_);
  reg.ring_entries = count;
  reg.bgid = group_id;
  int ret = io_uring_register_buf_ring(reactor.ring(), &reg, 0);
  if (ret != 0) {
    return absl::UnavailableError(
        fmt::format("io_uring_register_buf_ring: {} (needs Linux 5.19 or later)", strerror(-ret)));
  }
  br->registered_ = true;
  const int mask = io_uring_buf_ring_mask(count);
  for (uint32_t i = 0; i < count; ++i) {
    io_uring_buf_ring_add(br->ring_, br->base_ + size_t{i} * size, size, static_cast<uint16_t>(i),
                          mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(br->ring_, static_cast<int>(count));
  return br;
}

BufferRing::~BufferRing() {
  RP_CHECK(in_use_ == 0);
  if (registered_) io_uring_unregister_buf_ring(reactor_->ring(), group_id_);
  if (ring_ != nullptr) munmap(ring_, ring_bytes_);
  if (base_ != nullptr) munmap(base_, base_bytes_);
}

void BufferRing::Return(uint16_t id) {
  RP_DCHECK(in_use_ > 0);
  --in_use_;
  io_uring_buf_ring_add(ring_, base_ + size_t{id} * size_, size_, id,
                        io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(ring_, 1);
  // Every waiter receives again: one whose peer is silent takes no buffer, so waking
  // only the first could leave one with data waiting for the next return. Those that
  // lose the race meet the empty ring again and wait once more.
  while (BufferWaiter* w = waiters_.PopFront()) w->OnBuffersAvailable();
}

void BufferRing::NoteEmpty() {
  ++empty_events_;
  const int64_t now = MonotonicNowNs();
  if (now - last_empty_log_ns_ >= 10'000'000'000) {
    last_empty_log_ns_ = now;
    RP_LOG(kWarn,
           "receive buffers exhausted ({} of {} in use, {} times so far): connections wait "
           "for buffers; raise runtime.buffer_count if this repeats",
           in_use_, count_, empty_events_);
  }
}

void BufferRing::WaitForBuffers(BufferWaiter* w) {
  if (!w->linked()) waiters_.PushBack(w);
}

void BufferRing::CancelWait(BufferWaiter* w) {
  if (w->linked()) waiters_.Remove(w);
}

}  // namespace ringproxy
