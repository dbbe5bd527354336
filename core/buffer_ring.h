// A provided-buffer ring (IORING_REGISTER_PBUF_RING): a per-shard pool of fixed-size
// receive buffers that the kernel picks from when data arrives, so a connection that
// waits for input holds no buffer of its own. Buffers go back to the ring when the
// consumer is done with them (ProvidedBuffer's destructor).
//
// Sizing: count x size per shard. count must cover the receive bursts of all
// connections of a shard between two loop turns; RecvStream caps what one connection
// may hold (none while the ring is under pressure), and ENOBUFS re-arms when a buffer
// comes back.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/intrusive_list.h"
#include "core/reactor.h"

namespace ringproxy {

class BufferRing;

// Something waiting for buffers to come back after ENOBUFS.
class BufferWaiter : public IntrusiveNode<BufferWaiter> {
 public:
  // A buffer came back (every waiter is told, once).
  virtual void OnBuffersAvailable() = 0;

 protected:
  ~BufferWaiter() = default;
};

// A received buffer, owned until destroyed; then it goes back to the ring.
class ProvidedBuffer {
 public:
  ProvidedBuffer() = default;
  ProvidedBuffer(BufferRing* ring, uint16_t id, uint32_t len) : ring_(ring), id_(id), len_(len) {}
  ProvidedBuffer(ProvidedBuffer&& o) noexcept
      : ring_(std::exchange(o.ring_, nullptr)), id_(o.id_), len_(o.len_) {}
  ProvidedBuffer& operator=(ProvidedBuffer&& o) noexcept;
  ProvidedBuffer(const ProvidedBuffer&) = delete;
  ProvidedBuffer& operator=(const ProvidedBuffer&) = delete;
  ~ProvidedBuffer() { Release(); }

  bool valid() const { return ring_ != nullptr; }
  std::span<const std::byte> data() const;
  uint32_t size() const { return len_; }
  void Release();

 private:
  BufferRing* ring_ = nullptr;
  uint16_t id_ = 0;
  uint32_t len_ = 0;
};

class BufferRing {
 public:
  // count must be a power of two <= 32768. populate: fault the buffers in now, so the
  // pool is fixed memory from the start rather than growing as the ring cycles.
  static absl::StatusOr<std::unique_ptr<BufferRing>> Create(Reactor& reactor, uint16_t group_id,
                                                            uint32_t count, uint32_t size,
                                                            bool populate = false);
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  uint16_t group_id() const { return group_id_; }
  uint32_t buffer_size() const { return size_; }
  uint32_t count() const { return count_; }
  uint32_t in_use() const { return in_use_; }

  // Counts a buffer the kernel filled (a CQE with IORING_CQE_F_BUFFER); it is out of
  // the ring until Return().
  void NoteConsumed() { ++in_use_; }
  bool exhausted() const { return in_use_ >= count_; }
  // Three quarters in use: connections stop holding buffers their consumers have not
  // asked for (RecvStream copies such bytes out instead).
  bool under_pressure() const { return in_use_ * 4 >= count_ * 3; }
  // A receive found the ring empty: counted, and logged at most every 10 s.
  void NoteEmpty();
  uint64_t empty_events() const { return empty_events_; }
  // Hands a consumed buffer to its user; it comes back on ProvidedBuffer's destruction.
  ProvidedBuffer Take(uint16_t id, uint32_t len) { return ProvidedBuffer(this, id, len); }
  std::span<std::byte> Data(uint16_t id) { return {base_ + size_t{id} * size_, size_}; }
  void Return(uint16_t id);

  // Calls w->OnBuffersAvailable() once a buffer has come back.
  void WaitForBuffers(BufferWaiter* w);
  void CancelWait(BufferWaiter* w);

 private:
  BufferRing() = default;

  Reactor* reactor_ = nullptr;
  io_uring_buf_ring* ring_ = nullptr;
  size_t ring_bytes_ = 0;
  std::byte* base_ = nullptr;
  size_t base_bytes_ = 0;
  uint16_t group_id_ = 0;
  uint32_t count_ = 0;
  uint32_t size_ = 0;
  uint32_t in_use_ = 0;
  bool registered_ = false;
  uint64_t empty_events_ = 0;
  int64_t last_empty_log_ns_ = 0;
  IntrusiveList<BufferWaiter> waiters_;
};

inline std::span<const std::byte> ProvidedBuffer::data() const {
  return ring_->Data(id_).first(len_);
}

inline void ProvidedBuffer::Release() {
  if (ring_ != nullptr) {
    ring_->Return(id_);
    ring_ = nullptr;
  }
}

inline ProvidedBuffer& ProvidedBuffer::operator=(ProvidedBuffer&& o) noexcept {
  if (this != &o) {
    Release();
    ring_ = std::exchange(o.ring_, nullptr);
    id_ = o.id_;
    len_ = o.len_;
  }
  return *this;
}

}  // namespace ringproxy
