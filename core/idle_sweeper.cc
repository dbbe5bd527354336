#include "core/idle_sweeper.h"

#include "core/ops.h"

namespace ringproxy {

IdleWatch::~IdleWatch() { RP_CHECK(list_ == nullptr); }

void IdleWatch::Touch(int64_t now_ns) {
  last_ns_ = now_ns;
  if (list_ != nullptr && list_->watches.back() != this) {
    list_->watches.Remove(this);
    list_->watches.PushBack(this);
  }
}

IdleSweeper::~IdleSweeper() { RP_CHECK(size_ == 0); }

void IdleSweeper::Add(IdleWatch* watch, int64_t timeout_ms, int64_t now_ns) {
  RP_CHECK(watch->list_ == nullptr);
  const int64_t timeout_ns = timeout_ms * 1'000'000;
  IdleWatchList* list = nullptr;
  for (auto& l : lists_) {
    if (l->timeout_ns == timeout_ns) list = l.get();
  }
  if (list == nullptr) {
    lists_.push_back(std::make_unique<IdleWatchList>());
    list = lists_.back().get();
    list->timeout_ns = timeout_ns;
  }
  watch->last_ns_ = now_ns;
  watch->list_ = list;
  list->watches.PushBack(watch);
  if (size_++ == 0) wake_.Set();
}

void IdleSweeper::Remove(IdleWatch* watch) {
  if (watch->list_ == nullptr) return;
  watch->list_->watches.Remove(watch);
  watch->list_ = nullptr;
  --size_;
}

void IdleSweeper::Sweep(int64_t now_ns) {
  for (auto& l : lists_) {
    // Oldest first; stop at the first one still within its timeout.
    while (!l->watches.empty() && now_ns - l->watches.front()->last_ns_ >= l->timeout_ns) {
      IdleWatch* w = l->watches.front();
      Remove(w);
      w->on_expired_(w, w->arg_);
    }
  }
}

Task<void> IdleSweeper::Run() {
  while (!stopping_) {
    if (size_ == 0) {
      wake_.Reset();
      co_await wake_.Wait();
      continue;
    }
    co_await Sleep(Deadline::AfterMs(period_ms_));
    Sweep(MonotonicNowNs());
  }
}

void IdleSweeper::Stop() {
  stopping_ = true;
  wake_.Set();
}

}  // namespace ringproxy
