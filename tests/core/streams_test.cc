// Multishot streams: AcceptStream and RecvStream (provided-buffer ring), including
// ENOBUFS re-arm, back-pressure and stop while waiting.
#include <arpa/inet.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "core/accept_stream.h"
#include "core/buffer_ring.h"
#include "core/ops.h"
#include "core/recv_stream.h"
#include "core/sync.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace ringproxy {
namespace {

class StreamsTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    reactor_ = testing::MakeReactor(GetParam());
    ASSERT_NE(reactor_, nullptr);
  }
  std::unique_ptr<BufferRing> Ring(uint32_t count, uint32_t size) {
    auto r = BufferRing::Create(*reactor_, 7, count, size);
    EXPECT_TRUE(r.ok());
    return std::move(*r);
  }
  std::unique_ptr<Reactor> reactor_;
};

INSTANTIATE_TEST_SUITE_P(RingModes, StreamsTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Deferred" : "Plain"; });

Task<int> AcceptN(int listen_fd, int n) {
  AcceptStream stream(listen_fd);
  int got = 0;
  while (got < n) {
    IoResult r = co_await stream.Next();
    if (!r.ok()) break;
    close(r.res);
    ++got;
  }
  co_await stream.Stop();
  EXPECT_LE(stream.arms(), 2u);  // one multishot SQE served (nearly) all of them
  co_return got;
}

TEST_P(StreamsTest, MultishotAcceptTakesManyConnections) {
  uint16_t port = 0;
  UniqueFd listener = testing::ListenLoopback(&port);
  std::thread clients([port] {
    for (int i = 0; i < 200; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
      close(fd);
    }
  });
  EXPECT_EQ(RunUntilComplete(*reactor_, AcceptN(listener.get(), 200)), 200);
  clients.join();
}

Task<void> StopSoon(AcceptStream* s) {
  co_await Sleep(Deadline::AfterMs(20));
  s->RequestStop();
}

Task<IoResult> AcceptThenStop(int listen_fd) {
  AcceptStream stream(listen_fd);
  Spawn(StopSoon(&stream));
  IoResult r = co_await stream.Next();
  co_await stream.Stop();
  co_return r;
}

TEST_P(StreamsTest, RequestStopWakesAWaitingAccept) {
  uint16_t port = 0;
  UniqueFd listener = testing::ListenLoopback(&port);
  EXPECT_EQ(RunUntilComplete(*reactor_, AcceptThenStop(listener.get())).res, -ECANCELED);
}

// A watchdog for a wait that should end by itself: stops the stream after `ms` unless
// *done was set first.
Task<void> StopLater(AcceptStream* s, int64_t ms, const bool* done, Gate::Holder) {
  for (int64_t waited = 0; waited < ms && !*done; waited += 10) {
    co_await Sleep(Deadline::AfterMs(10));
  }
  if (!*done) s->RequestStop();
}

// Pause() then Next() in the same loop turn: the pause's cancel ends the multishot after
// the waiter has started waiting, and the accept must be armed again for it.
Task<IoResult> PauseThenNext(int listen_fd, uint16_t port) {
  AcceptStream stream(listen_fd);
  UniqueFd first = testing::ConnectLoopback(port);
  IoResult a = co_await stream.Next();  // the multishot is armed now
  if (a.ok()) close(a.res);
  stream.Pause();                                    // its cancel is queued, not yet done
  UniqueFd second = testing::ConnectLoopback(port);  // waits in the backlog
  bool done = false;
  Gate watchdog;
  Spawn(StopLater(&stream, 2000, &done, watchdog.Enter()));  // a lost wakeup ends here
  IoResult r = co_await stream.Next();
  done = true;
  co_await watchdog.Wait();
  if (r.ok()) close(r.res);
  co_await stream.Stop();
  co_return r;
}

TEST_P(StreamsTest, ANextRightAfterAPauseIsWokenByTheNextConnection) {
  uint16_t port = 0;
  UniqueFd listener = testing::ListenLoopback(&port);
  const IoResult r = RunUntilComplete(*reactor_, PauseThenNext(listener.get(), port));
  EXPECT_TRUE(r.ok()) << r.res;
}

struct StreamRun {
  bool exact = false;
  uint64_t rearms = 0;
  uint64_t spilled = 0;
  uint32_t max_in_use = 0;  // ring buffers out of the ring at once, at most
};

Task<std::string> ReadAll(BufferRing* ring, int fd, RecvLimits limits, int slow_ms,
                          StreamRun* run) {
  RecvStream stream(*ring, fd, limits);
  std::string out;
  for (;;) {
    Received r = co_await stream.Next(Deadline::AfterMs(10000));
    run->max_in_use = std::max(run->max_in_use, ring->in_use());
    if (r.status.res <= 0) {
      EXPECT_EQ(r.status.res, 0);
      break;
    }
    EXPECT_EQ(r.data().size(), r.status.value());
    out.append(reinterpret_cast<const char*>(r.data().data()), r.data().size());
    if (slow_ms > 0) co_await Sleep(Deadline::AfterMs(slow_ms));
    run->max_in_use = std::max(run->max_in_use, ring->in_use());
  }
  co_await stream.Stop();
  run->rearms = stream.rearms();
  run->spilled = stream.spilled_bytes();
  co_return out;
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  return s;
}

// Streams `bytes` of the pattern from a writer thread into a RecvStream configured
// with `ring` and `limits` (the reader sleeping `slow_ms` per chunk); returns whether
// every byte arrived in order, and what the stream did.
StreamRun StreamThrough(Reactor& reactor, BufferRing* ring, size_t bytes, RecvLimits limits,
                        int slow_ms) {
  auto [client, server] = testing::TcpPair();
  std::string data = Pattern(bytes);
  testing::SetBlocking(client.get());
  std::thread writer([&, fd = client.get()] {
    testing::WriteAll(fd, data.data(), data.size());
    shutdown(fd, SHUT_WR);
  });
  StreamRun run;
  std::string got = RunUntilComplete(reactor, ReadAll(ring, server.get(), limits, slow_ms, &run));
  writer.join();
  run.exact = got == data;
  return run;
}

TEST_P(StreamsTest, RecvStreamDeliversBytesInOrderThenEof) {
  auto ring = Ring(64, 4096);
  EXPECT_TRUE(StreamThrough(*reactor_, ring.get(), 1 << 20, RecvLimits{}, 0).exact);
  EXPECT_EQ(ring->in_use(), 0u);
}

TEST_P(StreamsTest, EmptyRingRearmsWhenBuffersComeBackAndLosesNothing) {
  // Two 512-byte buffers for 256 KiB: ENOBUFS over and over; every byte must arrive.
  auto ring = Ring(2, 512);
  StreamRun run = StreamThrough(*reactor_, ring.get(), 256 << 10, RecvLimits{}, 0);
  EXPECT_TRUE(run.exact);
  EXPECT_GT(run.rearms, 1u);
}

TEST_P(StreamsTest, SlowConsumerPausesTheStreamWithoutLoss) {
  auto ring = Ring(256, 1024);
  StreamRun run = StreamThrough(*reactor_, ring.get(), 64 << 10, RecvLimits{2, 0}, 1);
  EXPECT_TRUE(run.exact);
  // Two queued plus the one the consumer holds.
  EXPECT_LE(run.max_in_use, 3u);
  EXPECT_EQ(ring->in_use(), 0u);
}

TEST_P(StreamsTest, SlowConsumerHoldsItsShareAndSpillsTheRestWithoutLoss) {
  auto ring = Ring(256, 1024);
  StreamRun run = StreamThrough(*reactor_, ring.get(), 256 << 10, RecvLimits{2, 4096}, 1);
  EXPECT_TRUE(run.exact);
  EXPECT_GT(run.spilled, 0u);
  EXPECT_LE(run.max_in_use, 3u);
  EXPECT_EQ(ring->in_use(), 0u);
}

TEST_P(StreamsTest, UnderPressureABusyConsumerHoldsNoBuffers) {
  // 8 buffers, 6 held elsewhere: the ring is under pressure, so the stream copies
  // what arrives while its consumer sleeps and returns the buffers at once.
  auto ring = Ring(8, 1024);
  auto [feeder, sink] = testing::TcpPair();
  std::vector<ProvidedBuffer> held;
  {
    auto [a, b] = testing::TcpPair();
    std::string six(6 * 1024, 'h');
    testing::SetBlocking(a.get());
    std::thread w([&, fd = a.get()] { testing::WriteAll(fd, six.data(), six.size()); });
    auto hold = [](BufferRing* ring, int fd, std::vector<ProvidedBuffer>* held) -> Task<void> {
      RecvStream s(*ring, fd, RecvLimits{8, 0});
      while (held->size() < 6) {
        Received r = co_await s.Next(Deadline::AfterMs(5000));
        if (r.status.res <= 0) break;
        held->push_back(std::move(r.buffer));
      }
      co_await s.Stop();
    };
    RunUntilComplete(*reactor_, hold(ring.get(), b.get(), &held));
    w.join();
  }
  ASSERT_TRUE(ring->under_pressure());
  StreamRun run = StreamThrough(*reactor_, ring.get(), 64 << 10, RecvLimits{2, 8192}, 1);
  EXPECT_TRUE(run.exact);
  EXPECT_GT(run.spilled, 0u);
  EXPECT_LE(run.max_in_use, 6u + 1u);  // only the chunk the consumer holds
  held.clear();
}

Task<std::vector<int>> DeadlineThenData(BufferRing* ring, int fd, int peer) {
  RecvStream stream(*ring, fd);
  std::vector<int> results;
  Received first = co_await stream.Next(Deadline::AfterMs(30));
  results.push_back(first.status.res);
  EXPECT_EQ(send(peer, "abc", 3, 0), 3);
  Received second = co_await stream.Next(Deadline::AfterMs(2000));
  results.push_back(second.status.res);
  // A short deadline right after a long one: the stale timer must not stretch it.
  Received third = co_await stream.Next(Deadline::AfterMs(30));
  results.push_back(third.status.res);
  co_await stream.Stop();
  co_return results;
}

TEST_P(StreamsTest, DeadlineLeavesTheStreamUsable) {
  auto ring = Ring(8, 1024);
  auto [client, server] = testing::TcpPair();
  int64_t start = MonotonicNowNs();
  std::vector<int> r =
      RunUntilComplete(*reactor_, DeadlineThenData(ring.get(), server.get(), client.get()));
  EXPECT_EQ(r, (std::vector<int>{-ETIMEDOUT, 3, -ETIMEDOUT}));
  EXPECT_LT((MonotonicNowNs() - start) / 1'000'000, 1500);
}

// `rounds` one-byte messages, each awaited with a finite deadline.
Task<int> RoundTrips(BufferRing* ring, int fd, int peer, int rounds) {
  RecvStream stream(*ring, fd);
  int got = 0;
  for (int i = 0; i < rounds; ++i) {
    EXPECT_EQ(send(peer, "m", 1, 0), 1);
    Received r = co_await stream.Next(Deadline::AfterMs(5000));
    if (r.status.res != 1) break;
    ++got;
  }
  co_await stream.Stop();
  co_return got;
}

TEST_P(StreamsTest, OneKernelTimerServesManyWaits) {
  auto ring = Ring(8, 1024);
  auto [client, server] = testing::TcpPair();
  constexpr int kRounds = 200;
  const uint64_t before = reactor_->stats().completions;
  EXPECT_EQ(
      RunUntilComplete(*reactor_, RoundTrips(ring.get(), server.get(), client.get(), kRounds)),
      kRounds);
  // One receive completion per message; a timer armed and removed per wait would add
  // two more (the removed timer's and the remove's).
  EXPECT_LT(reactor_->stats().completions - before, uint64_t{kRounds} * 3 / 2);
}

// A wait with a long deadline (its timer stays armed), then one with a short deadline.
Task<std::vector<int64_t>> LongThenShort(BufferRing* ring, int fd, int peer, int64_t first_ms,
                                         int64_t second_ms) {
  RecvStream stream(*ring, fd);
  EXPECT_EQ(send(peer, "a", 1, 0), 1);
  Received first = co_await stream.Next(Deadline::AfterMs(first_ms));
  const int64_t start = MonotonicNowNs();
  Received second = co_await stream.Next(Deadline::AfterMs(second_ms));
  const int64_t waited_ms = (MonotonicNowNs() - start) / 1'000'000;
  co_await stream.Stop();
  co_return std::vector<int64_t>{first.status.res, second.status.res, waited_ms};
}

TEST_P(StreamsTest, AnEarlierDeadlineIsKeptThoughALaterTimerIsArmed) {
  auto ring = Ring(8, 1024);
  auto [client, server] = testing::TcpPair();
  std::vector<int64_t> r = RunUntilComplete(
      *reactor_, LongThenShort(ring.get(), server.get(), client.get(), 20'000, 50));
  EXPECT_EQ(r[0], 1);
  EXPECT_EQ(r[1], -ETIMEDOUT);
  EXPECT_GE(r[2], 50);
  EXPECT_LT(r[2], 5000);  // not the first wait's 20 s
}

TEST_P(StreamsTest, ALaterDeadlineOutlivesAnEarlierTimer) {
  auto ring = Ring(8, 1024);
  auto [client, server] = testing::TcpPair();
  std::vector<int64_t> r =
      RunUntilComplete(*reactor_, LongThenShort(ring.get(), server.get(), client.get(), 20, 300));
  EXPECT_EQ(r[0], 1);
  EXPECT_EQ(r[1], -ETIMEDOUT);
  EXPECT_GE(r[2], 300);  // the first wait's timer fired at 20 ms and was re-armed
}

Task<void> StopAfter(RecvStream* s, bool* stopped) {
  co_await Sleep(Deadline::AfterMs(20));
  co_await s->Stop();
  *stopped = true;
}

Task<int> WaitWhileStopped(BufferRing* ring, int fd) {
  RecvStream stream(*ring, fd);
  bool stopped = false;
  Gate gate;
  auto stopper = [](Gate::Holder, RecvStream* s, bool* stopped) -> Task<void> {
    co_await StopAfter(s, stopped);
  };
  Spawn(stopper(gate.Enter(), &stream, &stopped));
  Received r = co_await stream.Next(Deadline::Never());
  co_await gate.Wait();
  EXPECT_TRUE(stopped);
  co_return r.status.res;
}

TEST_P(StreamsTest, StopWakesAWaitingReader) {
  auto ring = Ring(8, 1024);
  auto [client, server] = testing::TcpPair();
  EXPECT_EQ(RunUntilComplete(*reactor_, WaitWhileStopped(ring.get(), server.get())), -ECANCELED);
}

// Fills every buffer of `ring` from a peer and keeps them in *held.
void HoldAll(Reactor& reactor, BufferRing* ring, std::vector<ProvidedBuffer>* held) {
  auto [a, b] = testing::TcpPair();
  std::string fill(size_t{ring->count() - ring->in_use()} * ring->buffer_size(), 'h');
  testing::SetBlocking(a.get());
  std::thread w([&, fd = a.get()] { testing::WriteAll(fd, fill.data(), fill.size()); });
  auto hold = [](BufferRing* ring, int fd, std::vector<ProvidedBuffer>* held) -> Task<void> {
    RecvStream s(*ring, fd);
    while (!ring->exhausted()) {
      Received r = co_await s.Next(Deadline::AfterMs(5000));
      if (r.status.res <= 0) break;
      held->push_back(std::move(r.buffer));
    }
    co_await s.Stop();
  };
  RunUntilComplete(reactor, hold(ring, b.get(), held));
  w.join();
}

// Stream A's consumer took a chunk and is busy (not waiting); stream B's consumer
// waits. Both meet the empty ring. A buffer coming back must reach B.
Task<int> ReturnedBufferGoesToTheWaitingConsumer(BufferRing* ring, int fd_a, int peer_a, int fd_b,
                                                 int peer_b, std::vector<ProvidedBuffer>* held) {
  RecvStream a(*ring, fd_a);
  RecvStream b(*ring, fd_b);
  EXPECT_EQ(send(peer_a, "1", 1, 0), 1);
  Received first = co_await a.Next(Deadline::AfterMs(2000));  // A stays armed
  EXPECT_EQ(first.status.res, 1);
  first = Received();                     // the one free buffer is back
  EXPECT_EQ(send(peer_a, "2", 1, 0), 1);  // queued in A: the ring is empty again
  co_await Sleep(Deadline::AfterMs(30));
  EXPECT_EQ(send(peer_a, "3", 1, 0), 1);  // A's multishot meets the empty ring
  co_await Sleep(Deadline::AfterMs(30));
  EXPECT_EQ(send(peer_b, "x", 1, 0), 1);
  Gate gate;
  auto give_back = [](Gate::Holder, std::vector<ProvidedBuffer>* held) -> Task<void> {
    co_await Sleep(Deadline::AfterMs(50));
    held->pop_back();  // one buffer comes back
  };
  Spawn(give_back(gate.Enter(), held));
  Received got = co_await b.Next(Deadline::AfterMs(1000));  // B waits for a buffer
  co_await gate.Wait();
  co_await a.Stop();
  co_await b.Stop();
  co_return got.status.res;
}

TEST_P(StreamsTest, AReturnedBufferWakesOnlyAStreamWhoseConsumerWaits) {
  auto ring = Ring(4, 1024);
  auto [peer_a, fd_a] = testing::TcpPair();
  auto [peer_b, fd_b] = testing::TcpPair();
  std::vector<ProvidedBuffer> held;
  HoldAll(*reactor_, ring.get(), &held);
  held.pop_back();  // one free buffer, for A's first chunk
  int r = RunUntilComplete(
      *reactor_, ReturnedBufferGoesToTheWaitingConsumer(ring.get(), fd_a.get(), peer_a.get(),
                                                        fd_b.get(), peer_b.get(), &held));
  EXPECT_EQ(r, 1) << "the waiting consumer did not get the returned buffer";
  held.clear();
}

// Awaits `next`, lets its buffer go, waits for the gate's tasks and stops both streams:
// the status `next` ended with.
Task<int> StatusThenStop(RecvStream::NextAwaiter next, Gate* gate, RecvStream* a, RecvStream* b) {
  int status = 0;
  {
    Received got = co_await next;
    status = got.status.res;
  }
  co_await gate->Wait();
  co_await a->Stop();
  co_await b->Stop();
  co_return status;
}

// With the ring empty, S's consumer waits first (its peer is silent) and D's second
// (its peer has sent a byte). One buffer comes back: S's receive takes no buffer, so
// D must be woken too, not left waiting for another return.
Task<int> ASilentWaiterAheadOfOneWithData(BufferRing* ring, int fd_s, int fd_d, int peer_d,
                                          std::vector<ProvidedBuffer>* held) {
  RecvStream silent(*ring, fd_s);
  RecvStream d(*ring, fd_d);
  Gate gate;
  auto wait_silent = [](Gate::Holder, RecvStream* s) -> Task<void> {
    Received r = co_await s->Next(Deadline::AfterMs(1200));
    EXPECT_EQ(r.status.res, -ETIMEDOUT);
  };
  Spawn(wait_silent(gate.Enter(), &silent));
  EXPECT_EQ(send(peer_d, "x", 1, 0), 1);
  auto give_back = [](Gate::Holder, std::vector<ProvidedBuffer>* held) -> Task<void> {
    co_await Sleep(Deadline::AfterMs(50));
    held->pop_back();
  };
  Spawn(give_back(gate.Enter(), held));
  const int result = co_await StatusThenStop(d.Next(Deadline::AfterMs(1000)), &gate, &silent, &d);
  co_return result;
}

TEST_P(StreamsTest, ASilentWaiterDoesNotSwallowAReturnedBuffer) {
  auto ring = Ring(4, 1024);
  auto [peer_s, fd_s] = testing::TcpPair();
  auto [peer_d, fd_d] = testing::TcpPair();
  std::vector<ProvidedBuffer> held;
  HoldAll(*reactor_, ring.get(), &held);
  const int r = RunUntilComplete(
      *reactor_,
      ASilentWaiterAheadOfOneWithData(ring.get(), fd_s.get(), fd_d.get(), peer_d.get(), &held));
  EXPECT_EQ(r, 1) << "the returned buffer went to the silent stream only";
  held.clear();
}

struct EndTold : PeerEndObserver {
  void OnPeerEnded(bool) override { told = true; }
  bool told = false;
};

// The peer's FIN meets the empty ring while only an end watcher listens (the session is
// busy elsewhere): once a buffer comes back, the end is still told. `paused`: the stream
// was paused (as for a splice) before the watch began, so WatchEnd finds the ring empty.
Task<bool> EndWatchedWhileTheRingIsEmpty(BufferRing* ring, int fd, int peer, bool paused,
                                         std::vector<ProvidedBuffer>* held) {
  RecvStream s(*ring, fd);
  EXPECT_EQ(send(peer, "x", 1, 0), 1);
  Received first = co_await s.Next(Deadline::AfterMs(2000));
  EXPECT_EQ(first.status.res, 1);
  held->push_back(std::move(first.buffer));  // the last free buffer: the ring is empty
  if (paused) co_await s.Pause();
  EndTold seen;
  s.WatchEnd(&seen);
  const uint64_t empty_before = ring->empty_events();
  shutdown(peer, SHUT_WR);
  co_await Sleep(Deadline::AfterMs(30));
  if (!paused) {
    EXPECT_GT(ring->empty_events(), empty_before) << "the FIN did not meet the ring";
  }
  EXPECT_FALSE(seen.told);
  held->pop_back();
  co_await Sleep(Deadline::AfterMs(100));
  s.WatchEnd(nullptr);
  co_await s.Stop();
  co_return seen.told;
}

TEST_P(StreamsTest, AFinWhileTheRingIsEmptyIsStillTold) {
  for (const bool paused : {false, true}) {
    auto ring = Ring(4, 1024);
    auto [peer, fd] = testing::TcpPair();
    std::vector<ProvidedBuffer> held;
    HoldAll(*reactor_, ring.get(), &held);
    held.pop_back();  // one free buffer, for the first byte
    EXPECT_TRUE(RunUntilComplete(
        *reactor_, EndWatchedWhileTheRingIsEmpty(ring.get(), fd.get(), peer.get(), paused, &held)))
        << (paused ? "paused: " : "") << "the end was not told";
    held.clear();
  }
}

// A pause (the consumer was busy, the stream cancelled its multishot) must not leave a
// consumer that starts waiting while the cancel is still in flight without a receive:
// when the cancel completes, the stream arms again. Deterministic order: A's byte and
// B's arrive in one batch, A's first; B's wakes the consumer, which takes A's byte and
// waits on A again before A's cancel has completed.
Task<int> WaitWhileAPauseIsInFlight(BufferRing* ring, int a_fd, int a_peer, int b_fd, int b_peer) {
  RecvStream a(*ring, a_fd, RecvLimits{1, 0});
  RecvStream b(*ring, b_fd);
  EXPECT_EQ(send(a_peer, "x", 1, 0), 1);
  Received x = co_await a.Next(Deadline::AfterMs(2000));  // A stays armed
  EXPECT_EQ(x.status.res, 1);
  x = Received();
  Gate gate;
  auto peer = [](Gate::Holder, int a_peer, int b_peer) -> Task<void> {
    co_await Sleep(Deadline::AfterMs(20));
    EXPECT_EQ(send(a_peer, "a", 1, 0), 1);  // A's consumer is not waiting: A pauses
    EXPECT_EQ(send(b_peer, "w", 1, 0), 1);
    co_await Sleep(Deadline::AfterMs(100));
    EXPECT_EQ(send(a_peer, "b", 1, 0), 1);  // after the pause completed
  };
  Spawn(peer(gate.Enter(), a_peer, b_peer));
  Received w = co_await b.Next(Deadline::AfterMs(2000));
  EXPECT_EQ(w.status.res, 1);
  Received first = co_await a.Next(Deadline::AfterMs(2000));
  EXPECT_EQ(first.status.res, 1);
  first = Received();
  const int result = co_await StatusThenStop(a.Next(Deadline::AfterMs(1000)), &gate, &a, &b);
  co_return result;
}

TEST_P(StreamsTest, AConsumerWaitingWhileAPauseCompletesGetsTheNextBytes) {
  auto ring = Ring(16, 1024);
  auto [a_peer, a_fd] = testing::TcpPair();
  auto [b_peer, b_fd] = testing::TcpPair();
  EXPECT_EQ(
      RunUntilComplete(*reactor_, WaitWhileAPauseIsInFlight(ring.get(), a_fd.get(), a_peer.get(),
                                                            b_fd.get(), b_peer.get())),
      1)
      << "the stream was not armed again after its pause";
}

}  // namespace
}  // namespace ringproxy
