// A FIFO that keeps its first N elements inline and spills to the heap only past
// that, so an idle owner (a connection's receive queue) holds no allocation.
#pragma once

#include <cstddef>
#include <vector>

#include "core/check.h"

namespace ringproxy {

template <typename T, size_t N>
class SmallQueue {
 public:
  bool empty() const { return size() == 0; }
  size_t size() const { return inline_count_ + (spill_.size() - spill_head_); }

  void push_back(const T& v) {
    // Once anything has spilled, new elements spill too, to keep FIFO order.
    if (inline_count_ < N && spill_head_ == spill_.size()) {
      inline_[(head_ + inline_count_) % N] = v;
      ++inline_count_;
    } else {
      spill_.push_back(v);
    }
  }
  T& front() {
    RP_DCHECK(!empty());
    return inline_count_ > 0 ? inline_[head_] : spill_[spill_head_];
  }
  void pop_front() {
    RP_DCHECK(!empty());
    if (inline_count_ > 0) {
      head_ = (head_ + 1) % N;
      --inline_count_;
    } else if (++spill_head_ == spill_.size()) {
      spill_.clear();
      spill_.shrink_to_fit();
      spill_head_ = 0;
    }
  }

 private:
  T inline_[N]{};
  size_t head_ = 0;
  size_t inline_count_ = 0;
  std::vector<T> spill_;
  size_t spill_head_ = 0;
};

}  // namespace ringproxy
