#include "core/frame_pool.h"

#include <cstdint>
#include <new>
#include <utility>

#include "build_info.h"

namespace ringproxy::internal {

#if !RINGPROXY_POOLS || defined(__SANITIZE_ADDRESS__)

void* AllocateFrame(size_t size) { return ::operator new(size); }
void FreeFrame(void* frame, size_t /*size*/) noexcept { ::operator delete(frame); }
size_t PooledFrames(size_t /*size*/) { return 0; }

#else

namespace {

constexpr size_t kGrain = 16;
constexpr size_t kClasses = 512;  // frames up to 8 KiB (an IMAP session: 5.7 KiB)
constexpr size_t kKeepBytes = 64 * 1024;

struct FreeFrameNode {
  FreeFrameNode* next;
};

struct FramePool {
  FreeFrameNode* free[kClasses] = {};
  uint32_t count[kClasses] = {};
  bool gone = false;  // frames freed after this thread's pool was destroyed

  ~FramePool() {
    gone = true;
    for (FreeFrameNode*& head : free) {
      while (head != nullptr) ::operator delete(std::exchange(head, head->next));
    }
  }
};

thread_local FramePool pool;

constexpr size_t ClassOf(size_t size) { return (size + kGrain - 1) / kGrain - 1; }

}  // namespace

void* AllocateFrame(size_t size) {
  const size_t c = ClassOf(size);
  if (c >= kClasses) return ::operator new(size);
  FramePool& p = pool;
  if (FreeFrameNode* f = p.free[c]) {
    p.free[c] = f->next;
    --p.count[c];
    return f;
  }
  return ::operator new((c + 1) * kGrain);
}

void FreeFrame(void* frame, size_t size) noexcept {
  const size_t c = ClassOf(size);
  FramePool& p = pool;
  // Kept while the class stays within kKeepBytes; multiplied, not divided, on every free.
  if (c >= kClasses || p.gone || (p.count[c] + 1) * ((c + 1) * kGrain) > kKeepBytes) {
    ::operator delete(frame);
    return;
  }
  auto* f = static_cast<FreeFrameNode*>(frame);
  f->next = p.free[c];
  p.free[c] = f;
  ++p.count[c];
}

size_t PooledFrames(size_t size) {
  const size_t c = ClassOf(size);
  return c < kClasses ? pool.count[c] : 0;
}

#endif

}  // namespace ringproxy::internal
