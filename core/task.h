// Task<T>: a lazy C++20 coroutine. It starts when awaited and resumes its awaiter by
// symmetric transfer when done, so chains of awaits do not grow the stack (at -O1 and
// above; GCC does not always make it a tail call at -O0). Spawn() runs a Task<void>
// detached: it starts at once and frees itself when it finishes.
//
// Rules that keep frames safe on GCC 12 (see docs/architecture.md):
//  - take coroutine parameters by value; bind awaited calls' arguments to named locals;
//  - no capturing lambdas that are coroutines;
//  - no co_await in the arms of ?:, and no `co_return co_await f()` in a body that has
//    awaited before: GCC 12.2 compiles either into a coroutine whose body never runs
//    (minimal cases in docs/architecture.md); use if/else and a named local;
//  - exceptions are off: an exception escaping a coroutine terminates.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

#include "core/check.h"
#include "core/frame_pool.h"

namespace ringproxy {

namespace internal {

struct PromiseBase {
  static void* operator new(size_t size) { return AllocateFrame(size); }
  static void operator delete(void* frame, size_t size) noexcept { FreeFrame(frame, size); }

  // Who resumes when this task ends; null for a spawned task, which frees itself.
  std::coroutine_handle<> continuation = std::noop_coroutine();

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <typename Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
      std::coroutine_handle<> next = h.promise().continuation;
      if (!next) {
        h.destroy();
        return std::noop_coroutine();
      }
      return next;
    }
    void await_resume() noexcept {}
  };

  std::suspend_always initial_suspend() noexcept { return {}; }
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { std::terminate(); }
};

template <typename T>
struct ValuePromise : PromiseBase {
  template <typename U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  T TakeValue() {
    RP_DCHECK(value.has_value());
    return std::move(*value);
  }
  std::optional<T> value;
};

template <>
struct ValuePromise<void> : PromiseBase {
  void return_void() {}
  void TakeValue() {}
};

}  // namespace internal

template <typename T = void>
class [[nodiscard]] Task {
 public:
  struct promise_type : internal::ValuePromise<T> {
    Task get_return_object() { return Task(Handle::from_promise(*this)); }
  };
  using Handle = std::coroutine_handle<promise_type>;

  Task() = default;
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      Destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { Destroy(); }

  bool valid() const { return static_cast<bool>(handle_); }

  auto operator co_await() && noexcept {
    struct Awaiter {
      Handle handle;
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
        handle.promise().continuation = awaiting;
        return handle;
      }
      T await_resume() { return handle.promise().TakeValue(); }
    };
    RP_CHECK(handle_);
    return Awaiter{handle_};
  }

 private:
  friend void Spawn(Task<void> task);
  explicit Task(Handle h) : handle_(h) {}
  void Destroy() {
    if (handle_) handle_.destroy();
    handle_ = {};
  }
  Handle handle_;
};

// Starts `task` now, on the calling thread; it runs until its first suspension and
// then continues from the reactor. The caller must keep whatever it references alive
// (use a Gate to know when it has finished).
// The task's own frame is all it costs: no wrapper coroutine (one allocation per
// session, not two).
inline void Spawn(Task<void> task) {
  RP_CHECK(task.handle_);
  Task<void>::Handle h = std::exchange(task.handle_, {});
  h.promise().continuation = nullptr;
  h.resume();
}

}  // namespace ringproxy
