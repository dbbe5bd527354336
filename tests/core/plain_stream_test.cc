// PlainStream over real loopback sockets: writes never pin the caller's memory, a
// full socket's remainder is flushed with a deadline, Abort() ends every wait, what
// was received can be counted and dropped, and a last write and its FIN leave together.
#include "core/plain_stream.h"

#include <sys/socket.h>

#include <string>
#include <thread>

#include "core/ops.h"
#include "core/sync.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace ringproxy {
namespace {

class PlainStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor_ = testing::MakeReactor();
    ASSERT_NE(reactor_, nullptr);
    auto ring = BufferRing::Create(*reactor_, 3, 64, 4096);
    ASSERT_TRUE(ring.ok());
    ring_ = std::move(*ring);
  }
  void TearDown() override { EXPECT_EQ(ring_->in_use(), 0u); }
  std::unique_ptr<Reactor> reactor_;
  std::unique_ptr<BufferRing> ring_;
};

void Shrink(int ours, int peer) {
  int small = 4096;
  setsockopt(ours, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
}

struct WriteOutcome {
  IoResult write;
  size_t pending_after_write = 0;
  IoResult flush;
};

Task<WriteOutcome> WriteThenFlush(PlainStream* s, const std::string* data, int64_t flush_ms) {
  WriteOutcome out;
  out.write = co_await s->Write(AsBytes(*data), Deadline::AfterMs(flush_ms));
  out.pending_after_write = s->pending_output();
  out.flush = co_await s->Flush(Deadline::AfterMs(flush_ms));
  co_await s->Quiesce();
  co_return out;
}

TEST_F(PlainStreamTest, WriteToAFullSocketReturnsAtOnceAndFlushDeliversTheRest) {
  auto [ours, peer] = testing::TcpPair();
  // Only our send buffer: a tiny receive buffer on loopback (64 KiB MSS) makes TCP
  // fall back to zero-window probes, which would test TCP, not us.
  int small = 4096;
  setsockopt(ours.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  testing::SetBlocking(peer.get());
  std::string data(1 << 20, 'w');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131);
  std::string got;
  std::thread reader([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    char buf[65536];
    while (got.size() < data.size()) {
      ssize_t n = recv(peer.get(), buf, sizeof(buf), 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
  });
  PlainStream s(std::move(ours), ring_.get());
  WriteOutcome r = RunUntilComplete(*reactor_, WriteThenFlush(&s, &data, 10000));
  reader.join();
  EXPECT_EQ(r.write.res, static_cast<int32_t>(data.size()));
  EXPECT_GT(r.pending_after_write, 0u) << "the kernel should not have taken 1 MiB at once";
  EXPECT_EQ(r.flush.res, 0);
  EXPECT_EQ(s.pending_output(), 0u);
  EXPECT_TRUE(got == data);
}

TEST_F(PlainStreamTest, FlushToAPeerThatNeverReadsEndsAtItsDeadline) {
  auto [ours, peer] = testing::TcpPair();
  Shrink(ours.get(), peer.get());
  std::string data(1 << 20, 'w');
  PlainStream s(std::move(ours), ring_.get());
  int64_t start = MonotonicNowNs();
  WriteOutcome r = RunUntilComplete(*reactor_, WriteThenFlush(&s, &data, 200));
  EXPECT_EQ(r.flush.res, -ETIMEDOUT);
  EXPECT_LT((MonotonicNowNs() - start) / 1'000'000, 2000);
}

// One coroutine waits (fill or flush); another aborts the stream 30 ms later.
Task<IoResult> WaitThenAbort(PlainStream* s, bool flush) {
  Gate gate;
  auto aborter = [](Gate::Holder, PlainStream* s) -> Task<void> {
    co_await Sleep(Deadline::AfterMs(30));
    s->Abort();
  };
  Spawn(aborter(gate.Enter(), s));
  IoResult r;
  if (flush) {
    std::string data(1 << 20, 'f');
    IoResult w = co_await s->Write(AsBytes(data), Deadline::Never());
    EXPECT_TRUE(w.ok());
    r = co_await s->Flush(Deadline::Never());
  } else {
    r = co_await s->Fill(Deadline::Never());
  }
  co_await gate.Wait();
  // Sticky: later waits end at once too.
  IoResult again = co_await s->Fill(Deadline::Never());
  EXPECT_EQ(again.res, -ECANCELED);
  co_await s->Quiesce();
  co_return r;
}

TEST_F(PlainStreamTest, AbortEndsAWaitingFillAndAWaitingFlush) {
  for (bool flush : {false, true}) {
    auto [ours, peer] = testing::TcpPair();
    Shrink(ours.get(), peer.get());
    PlainStream s(std::move(ours), ring_.get());
    int64_t start = MonotonicNowNs();
    IoResult r = RunUntilComplete(*reactor_, WaitThenAbort(&s, flush));
    EXPECT_LT(r.res, 0) << (flush ? "flush" : "fill");
    EXPECT_LT((MonotonicNowNs() - start) / 1'000'000, 1000) << (flush ? "flush" : "fill");
  }
}

Task<size_t> ReadOneThenDiscard(PlainStream* s, size_t* first) {
  IoResult r = co_await s->Fill(Deadline::AfterMs(2000));
  EXPECT_GT(r.res, 0);
  *first = s->Peek().size();
  co_await Sleep(Deadline::AfterMs(50));  // the rest arrives meanwhile
  size_t dropped = s->DiscardBuffered();
  EXPECT_EQ(s->buffered(), 0u);
  co_await s->Quiesce();
  co_return dropped;
}

TEST_F(PlainStreamTest, WhatWasReceivedCanBeCountedAndDropped) {
  auto [ours, peer] = testing::TcpPair();
  PlainStream s(std::move(ours), ring_.get());
  ASSERT_EQ(send(peer.get(), "first", 5, 0), 5);
  std::thread later([fd = peer.get()] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    (void)send(fd, "second", 6, 0);
  });
  size_t first = 0;
  size_t dropped = RunUntilComplete(*reactor_, ReadOneThenDiscard(&s, &first));
  later.join();
  EXPECT_EQ(first, 5u);
  EXPECT_EQ(dropped, 11u);  // the unconsumed first chunk and the second
}

Task<IoResult> WriteAndShutdown(PlainStream* s) {
  IoResult w = co_await s->Write(AsBytes("bye"), Deadline::AfterMs(1000));
  EXPECT_EQ(w.res, 3);
  IoResult r = co_await s->ShutdownWrite(Deadline::AfterMs(1000));
  co_await s->Quiesce();
  co_return r;
}

TEST_F(PlainStreamTest, ShutdownWriteSendsEverythingThenFin) {
  auto [ours, peer] = testing::TcpPair();
  testing::SetBlocking(peer.get());
  PlainStream s(std::move(ours), ring_.get());
  EXPECT_EQ(RunUntilComplete(*reactor_, WriteAndShutdown(&s)).res, 0);
  EXPECT_EQ(testing::ReadToEof(peer.get()), "bye");
}

// A session waiting on its upstream watches its client: the end is told whatever the
// client sent meanwhile, and says whether it was a reset; the bytes stay for the session
// to judge (a pipelined request behind a half-close is still answered).
struct EndSeen : PeerEndObserver {
  void OnPeerEnded(bool was_reset) override {
    told = true;
    reset = was_reset;
  }
  bool told = false;
  bool reset = false;
};

Task<EndSeen> WatchWhilePeerSendsMoreAndEnds(PlainStream* s, UniqueFd* peer, bool reset,
                                             std::string* left) {
  EndSeen seen;
  IoResult r = co_await s->Fill(Deadline::AfterMs(2000));
  EXPECT_EQ(r.res, 3);
  s->Consume(1);  // "eq" stays in the current chunk
  s->WatchPeerEnd(&seen);
  EXPECT_EQ(send(peer->get(), "more", 4, 0), 4);
  if (reset) {
    linger off{1, 0};
    setsockopt(peer->get(), SOL_SOCKET, SO_LINGER, &off, sizeof(off));
    peer->Reset();
  } else {
    shutdown(peer->get(), SHUT_WR);
  }
  co_await Sleep(Deadline::AfterMs(100));
  s->WatchPeerEnd(nullptr);
  EXPECT_FALSE(s->CopyBuffered(5, left)) << "more than 5 bytes are left";
  EXPECT_TRUE(s->CopyBuffered(6, left));
  co_await s->Quiesce();
  co_return seen;
}

TEST_F(PlainStreamTest, APeersEndIsToldWithBytesUntakenAndSaysIfItWasAReset) {
  for (bool reset : {true, false}) {
    auto [ours, peer] = testing::TcpPair();
    PlainStream s(std::move(ours), ring_.get());
    ASSERT_EQ(send(peer.get(), "req", 3, 0), 3);
    std::string left;
    EndSeen seen =
        RunUntilComplete(*reactor_, WatchWhilePeerSendsMoreAndEnds(&s, &peer, reset, &left));
    EXPECT_TRUE(seen.told) << (reset ? "reset" : "FIN");
    EXPECT_EQ(seen.reset, reset);
    EXPECT_EQ(left, "eqmore");
  }
}

struct LastAnswer {
  IoResult shut;
  uint64_t enters = 0;    // loop turns' enters between the write and the FIN
  ssize_t peer_had = -1;  // bytes the peer could read as soon as Write returned
};

Task<LastAnswer> WriteLastAnswer(Reactor* reactor, PlainStream* s, int peer) {
  LastAnswer out;
  const uint64_t before = reactor->stats().enters;
  IoResult w = co_await s->Write(AsBytes("HTTP/1.1 200 OK"), Deadline::AfterMs(1000));
  EXPECT_EQ(w.res, 15);
  char buf[64];
  out.peer_had = recv(peer, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
  out.shut = co_await s->ShutdownWrite(Deadline::AfterMs(1000));
  out.enters = reactor->stats().enters - before;
  co_await s->Quiesce();
  co_return out;
}

// A server that closes after its last answer must send the FIN right behind the data:
// a loop turn in between lets a fast client close first, and the TIME_WAIT then lands
// on the client's ports (seen as half the rate of new connections on a 16-core machine).
TEST_F(PlainStreamTest, TheFinFollowsALastWriteWithoutALoopTurn) {
  auto [ours, peer] = testing::TcpPair();
  PlainStream s(std::move(ours), ring_.get());
  LastAnswer r = RunUntilComplete(*reactor_, WriteLastAnswer(reactor_.get(), &s, peer.get()));
  EXPECT_EQ(r.shut.res, 0);
  EXPECT_EQ(r.peer_had, 15) << "the bytes were not in the socket when Write returned";
  EXPECT_EQ(r.enters, 0u) << "the FIN waited for a loop turn";
  testing::SetBlocking(peer.get());
  EXPECT_EQ(testing::ReadToEof(peer.get()), "HTTP/1.1 200 OK");
}

}  // namespace
}  // namespace ringproxy
