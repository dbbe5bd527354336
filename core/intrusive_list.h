// A minimal intrusive doubly-linked list: nodes live inside their owners (session
// frames), so linking a session into its shard's list allocates nothing.
#pragma once

#include "core/check.h"

namespace ringproxy {

template <typename T>
class IntrusiveList;

template <typename T>
class IntrusiveNode {
 public:
  bool linked() const { return owner_ != nullptr; }

 private:
  friend class IntrusiveList<T>;
  T* prev_ = nullptr;
  T* next_ = nullptr;
  IntrusiveList<T>* owner_ = nullptr;
};

// T must derive from IntrusiveNode<T>.
template <typename T>
class IntrusiveList {
 public:
  IntrusiveList() = default;
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;
  ~IntrusiveList() { RP_CHECK(head_ == nullptr); }

  void PushBack(T* t) {
    IntrusiveNode<T>* n = t;
    RP_CHECK(n->owner_ == nullptr);
    n->owner_ = this;
    n->prev_ = tail_;
    n->next_ = nullptr;
    if (tail_ != nullptr) {
      static_cast<IntrusiveNode<T>*>(tail_)->next_ = t;
    } else {
      head_ = t;
    }
    tail_ = t;
    ++size_;
  }
  void Remove(T* t) {
    IntrusiveNode<T>* n = t;
    RP_CHECK(n->owner_ == this);
    if (n->prev_ != nullptr) {
      static_cast<IntrusiveNode<T>*>(n->prev_)->next_ = n->next_;
    } else {
      head_ = n->next_;
    }
    if (n->next_ != nullptr) {
      static_cast<IntrusiveNode<T>*>(n->next_)->prev_ = n->prev_;
    } else {
      tail_ = n->prev_;
    }
    n->prev_ = n->next_ = nullptr;
    n->owner_ = nullptr;
    --size_;
  }
  // Calls fn(T*) for each element; fn must not remove other elements.
  template <typename Fn>
  void ForEach(Fn fn) {
    for (T* t = head_; t != nullptr;) {
      T* next = static_cast<IntrusiveNode<T>*>(t)->next_;
      fn(t);
      t = next;
    }
  }
  T* front() const { return head_; }
  T* back() const { return tail_; }
  T* PopFront() {
    T* t = head_;
    if (t != nullptr) Remove(t);
    return t;
  }
  bool empty() const { return head_ == nullptr; }
  size_t size() const { return size_; }

 private:
  T* head_ = nullptr;
  T* tail_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ringproxy
