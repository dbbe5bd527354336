// Coroutine frames come from a per-thread pool of freed frames, by size. A proxied
// request creates and destroys a dozen frames (the session's steps and each await
// on a stream), and the larger ones miss malloc's per-thread cache: this made
// malloc and free a fifth of the user CPU per request.
//
// Frames are rounded up to 16 bytes, as malloc rounds them, so a live frame costs
// what it did. A class keeps at most 64 KiB of freed frames; a thread's pool is
// freed when the thread ends. Built with -Dpools=false (the ASan build) or under ASan,
// frames go to new and delete, so that a use after free is still caught.
#pragma once

#include <cstddef>

namespace ringproxy::internal {

void* AllocateFrame(size_t size);
void FreeFrame(void* frame, size_t size) noexcept;
// Freed frames this thread keeps for `size`'s class (0 without pools); for tests.
size_t PooledFrames(size_t size);

}  // namespace ringproxy::internal
