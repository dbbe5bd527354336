// Single-thread synchronisation between coroutines of one shard: no atomics, no locks.
// Wake-ups go through the reactor's ready queue, never inline, so the code that wakes
// a waiter keeps running without the waiter changing things under its feet.
#pragma once

#include <coroutine>
#include <cstdint>

#include "core/check.h"
#include "core/reactor.h"

namespace ringproxy {

// A one-waiter flag. Set() wakes the waiter (if any) on the next loop turn.
class Event {
 public:
  bool is_set() const { return set_; }
  void Set() {
    if (set_) return;
    set_ = true;
    if (waiter_) {
      Reactor::Current()->Post(waiter_);
      waiter_ = {};
    }
  }
  void Reset() { set_ = false; }

  auto Wait() {
    struct Awaiter {
      Event* event;
      bool await_ready() const noexcept { return event->set_; }
      void await_suspend(std::coroutine_handle<> h) noexcept {
        RP_CHECK(!event->waiter_);
        event->waiter_ = h;
      }
      void await_resume() const noexcept {}
    };
    return Awaiter{this};
  }

 private:
  bool set_ = false;
  std::coroutine_handle<> waiter_;
};

// Counts live tasks (sessions of a shard, children of a session). Wait() finishes
// when the count is zero. Used for drain and for joining child coroutines.
class Gate {
 public:
  class Holder {
   public:
    explicit Holder(Gate* gate) : gate_(gate) { ++gate_->count_; }
    Holder(Holder&& o) noexcept : gate_(o.gate_) { o.gate_ = nullptr; }
    Holder(const Holder&) = delete;
    Holder& operator=(const Holder&) = delete;
    ~Holder() {
      if (gate_ != nullptr) gate_->Leave();
    }

   private:
    Gate* gate_;
  };

  Holder Enter() { return Holder(this); }
  uint64_t count() const { return count_; }

  auto Wait() {
    struct Awaiter {
      Gate* gate;
      bool await_ready() const noexcept { return gate->count_ == 0; }
      void await_suspend(std::coroutine_handle<> h) noexcept {
        RP_CHECK(!gate->waiter_);
        gate->waiter_ = h;
      }
      void await_resume() const noexcept {}
    };
    return Awaiter{this};
  }

 private:
  void Leave() {
    RP_CHECK(count_ > 0);
    if (--count_ == 0 && waiter_) {
      Reactor::Current()->Post(waiter_);
      waiter_ = {};
    }
  }

  uint64_t count_ = 0;
  std::coroutine_handle<> waiter_;
};

}  // namespace ringproxy
