#include "proto/http_pool.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace ringproxy {

Task<void> UpstreamLink::Close() {
  if (tls != nullptr) {
    tls->Abort();
    co_await tls->Quiesce();
  }
  if (plain != nullptr) {
    plain->Abort();
    co_await plain->Quiesce();
  }
}

namespace {

// An idle connection is alive while its receive has seen nothing: bytes or EOF on a
// connection between requests mean the server closed it or broke the protocol.
bool LooksAlive(UpstreamLink* link) {
  if (link->plain->aborted()) return false;
  if (link->tls != nullptr && link->tls->buffered() > 0) return false;
  if (link->plain->buffered() > 0) return false;
  if (!link->plain->receiver().armed()) {
    // Nothing is receiving (a spliced body paused it), so nothing saw a FIN: ask.
    char byte;
    const ssize_t n = recv(link->plain->fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  return link->plain->FillNow().res == -EAGAIN;
}

}  // namespace

UpstreamPool::~UpstreamPool() { RP_CHECK(idle_ == 0 && retiring_.count() == 0); }

std::unique_ptr<UpstreamLink> UpstreamPool::Take(ShardSnapshot* generation, uint32_t group,
                                                 uint32_t server) {
  auto it = idle_by_key_.find(Key{generation, group, server});
  if (it == idle_by_key_.end()) return nullptr;
  std::vector<std::unique_ptr<Entry>>& list = it->second;
  std::unique_ptr<UpstreamLink> found;
  while (!list.empty() && found == nullptr) {
    std::unique_ptr<Entry> e = std::move(list.back());
    list.pop_back();
    --idle_;
    sweeper_->Remove(&e->watch);
    if (LooksAlive(e->link.get())) {
      found = std::move(e->link);
    } else {
      Retire(std::move(e->link));
    }
  }
  if (list.empty()) idle_by_key_.erase(it);
  return found;
}

void UpstreamPool::Put(std::unique_ptr<UpstreamLink> link, int max_idle, int64_t idle_timeout_ms) {
  // A generation a reload replaced is pooled no more: its entries would keep it (and
  // its route stack, TLS contexts, connections) alive for the whole idle timeout.
  const bool replaced = current_ != nullptr && link->generation.get() != current_;
  if (closing_ || replaced || max_idle <= 0 || !LooksAlive(link.get())) {
    Retire(std::move(link));
    return;
  }
  link->lease = ServerLease();
  const Key key{link->generation.get(), link->group, link->server};
  // Down to this listener's cap, oldest first: another listener of the same group may
  // allow more, and its returns fill the same list.
  for (;;) {
    auto full = idle_by_key_.find(key);
    if (full == idle_by_key_.end() || full->second.size() < static_cast<size_t>(max_idle)) break;
    Drop(full->second.front().get());  // may erase the key
  }
  std::vector<std::unique_ptr<Entry>>& again = idle_by_key_[key];
  auto e = std::make_unique<Entry>(this, key);
  e->link = std::move(link);
  sweeper_->Add(&e->watch, idle_timeout_ms, TurnNowNs());
  again.push_back(std::move(e));
  ++idle_;
}

void UpstreamPool::SetCurrent(ShardSnapshot* generation) {
  current_ = generation;
  std::vector<Entry*> old;
  for (auto& [key, list] : idle_by_key_) {
    if (key.generation == generation) continue;
    for (auto& e : list) old.push_back(e.get());
  }
  for (Entry* e : old) Drop(e);
}

void UpstreamPool::Expired(IdleWatch* /*watch*/, void* arg) {
  auto* e = static_cast<Entry*>(arg);
  e->pool->Drop(e);
}

void UpstreamPool::Drop(Entry* e) {
  auto it = idle_by_key_.find(e->key);
  RP_CHECK(it != idle_by_key_.end());
  std::vector<std::unique_ptr<Entry>>& list = it->second;
  auto pos = std::find_if(list.begin(), list.end(), [e](const auto& p) { return p.get() == e; });
  RP_CHECK(pos != list.end());
  std::unique_ptr<Entry> owned = std::move(*pos);
  list.erase(pos);
  --idle_;
  if (owned->watch.watched()) sweeper_->Remove(&owned->watch);
  Retire(std::move(owned->link));
  if (list.empty()) idle_by_key_.erase(it);
}

void UpstreamPool::Retire(std::unique_ptr<UpstreamLink> link) {
  if (link == nullptr) return;
  Spawn(CloseLink(std::move(link), retiring_.Enter()));
}

Task<void> UpstreamPool::CloseLink(std::unique_ptr<UpstreamLink> link, Gate::Holder /*holder*/) {
  co_await link->Close();
}

Task<void> UpstreamPool::Close() {
  closing_ = true;
  while (!idle_by_key_.empty()) {
    auto it = idle_by_key_.begin();
    Drop(it->second.back().get());
  }
  co_await retiring_.Wait();
}

}  // namespace ringproxy
