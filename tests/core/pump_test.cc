// The pump between plain streams over real loopback sockets, in every mode (auto,
// copy, splice): exactness, half-close, idle and send timeouts, errors on either side,
// Stop() in every wait, and what a stalled direction may hold. Peers are plain
// blocking threads.
#include "core/pump.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "core/ops.h"
#include "core/plain_stream.h"
#include "core/recv_stream.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace ringproxy {
namespace {

struct Rig {
  Rig() {
    auto a = testing::TcpPair();
    auto b = testing::TcpPair();
    client = std::move(a.first);       // the test's client
    downstream = std::move(a.second);  // the pump's client side
    upstream = std::move(b.first);     // the pump's upstream side
    server = std::move(b.second);      // the test's upstream server
    testing::SetBlocking(client.get());
    testing::SetBlocking(server.get());
  }
  UniqueFd client, downstream, upstream, server;
};

Task<void> RunSweeper(IdleSweeper* sweeper, Gate::Holder) { co_await sweeper->Run(); }

// Runs `pump` next to an idle sweeper, as a shard does, then quiesces the streams.
Task<PumpResult> RunWithSweeper(Pump* pump, IdleSweeper* sweeper, ByteStream* a, ByteStream* b) {
  Gate gate;
  Spawn(RunSweeper(sweeper, gate.Enter()));
  PumpResult r = co_await pump->Run();
  sweeper->Stop();
  co_await gate.Wait();
  co_await a->Quiesce();
  co_await b->Quiesce();
  co_return r;
}

struct Streams {
  Streams(int down, int up, BufferRing* ring)
      : downstream(UniqueFd(dup(down)), ring), upstream(UniqueFd(dup(up)), ring) {}
  PlainStream downstream;
  PlainStream upstream;
};

Task<PumpResult> RunPump(int down, int up, PumpResources res, PumpOptions options) {
  Streams s(down, up, res.buffers);
  Pump pump(&s.downstream, &s.upstream, res, options);
  co_return co_await RunWithSweeper(&pump, res.sweeper, &s.downstream, &s.upstream);
}

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

class PumpTest : public ::testing::TestWithParam<RelayMode> {
 protected:
  void SetUp() override {
    reactor_ = testing::MakeReactor();
    ASSERT_NE(reactor_, nullptr);
    // A small ring (64 x 4 KiB) so bulk tests also cross ENOBUFS and back-pressure.
    auto ring = BufferRing::Create(*reactor_, 1, 64, 4096);
    ASSERT_TRUE(ring.ok());
    ring_ = std::move(*ring);
  }
  void TearDown() override {
    EXPECT_EQ(pipes_.outstanding(), 0u);
    EXPECT_EQ(ring_->in_use(), 0u);
  }
  PumpResources Resources() { return PumpResources{&pipes_, ring_.get(), &sweeper_}; }
  Task<PumpResult> Run(const Rig& rig, int64_t idle_ms, int64_t send_timeout_ms = 60000) {
    PumpOptions options;
    options.idle_timeout_ms = idle_ms;
    options.send_timeout_ms = send_timeout_ms;
    options.mode = GetParam();
    return RunPump(rig.downstream.get(), rig.upstream.get(), Resources(), options);
  }
  std::unique_ptr<Reactor> reactor_;
  std::unique_ptr<BufferRing> ring_;
  PipePool pipes_{65536, 4};
  IdleSweeper sweeper_{10};
};

INSTANTIATE_TEST_SUITE_P(Modes, PumpTest,
                         ::testing::Values(RelayMode::kAuto, RelayMode::kCopy, RelayMode::kSplice),
                         [](const auto& info) { return std::string(RelayModeName(info.param)); });

TEST_P(PumpTest, BothDirectionsAtOnceAreByteExact) {
  Rig rig;
  const size_t n = 32 << 20;
  std::string up_data = Pattern(n, 1), down_data = Pattern(n, 2);
  std::string at_server, at_client;
  std::thread client_writer([&] {
    testing::WriteAll(rig.client.get(), up_data.data(), n);
    shutdown(rig.client.get(), SHUT_WR);
  });
  std::thread server_writer([&] {
    testing::WriteAll(rig.server.get(), down_data.data(), n);
    shutdown(rig.server.get(), SHUT_WR);
  });
  std::thread server_reader([&] { at_server = testing::ReadToEof(rig.server.get()); });
  std::thread client_reader([&] { at_client = testing::ReadToEof(rig.client.get()); });
  PumpResult r = RunUntilComplete(*reactor_, Run(rig, 10000));
  client_writer.join();
  server_writer.join();
  server_reader.join();
  client_reader.join();
  EXPECT_EQ(r.end, PumpEnd::kClosed);
  EXPECT_EQ(r.bytes_to_upstream, n);
  EXPECT_EQ(r.bytes_to_downstream, n);
  EXPECT_TRUE(at_server == up_data);
  EXPECT_TRUE(at_client == down_data);
  if (GetParam() == RelayMode::kAuto) {
    EXPECT_GT(r.mode_switches, 0u) << "a bulk stream should have moved to splice";
  }
}

TEST_P(PumpTest, HalfCloseLetsTheOtherDirectionFinish) {
  Rig rig;
  std::string at_client;
  std::thread peers([&] {
    testing::WriteAll(rig.client.get(), "request", 7);
    shutdown(rig.client.get(), SHUT_WR);  // client done sending, still reading
    std::string req = testing::ReadToEof(rig.server.get());
    EXPECT_EQ(req, "request");
    // The server answers after seeing EOF: only works if half-close was passed on.
    testing::WriteAll(rig.server.get(), "response", 8);
    shutdown(rig.server.get(), SHUT_WR);
    at_client = testing::ReadToEof(rig.client.get());
  });
  PumpResult r = RunUntilComplete(*reactor_, Run(rig, 10000));
  peers.join();
  EXPECT_EQ(r.end, PumpEnd::kClosed);
  EXPECT_EQ(at_client, "response");
  EXPECT_EQ(r.bytes_to_upstream, 7u);
  EXPECT_EQ(r.bytes_to_downstream, 8u);
}

TEST_P(PumpTest, IdleTimeoutClosesBothSides) {
  Rig rig;
  int64_t start = MonotonicNowNs();
  PumpResult r = RunUntilComplete(*reactor_, Run(rig, 100));
  EXPECT_EQ(r.end, PumpEnd::kIdleTimeout);
  EXPECT_GE((MonotonicNowNs() - start) / 1'000'000, 95);
}

TEST_P(PumpTest, TrafficInOneDirectionKeepsThePumpAlive) {
  Rig rig;
  std::atomic<bool> stop{false};
  std::thread ticker([&] {
    // Ticks 40 ms apart against a 300 ms idle timeout: room for a stalled scheduler.
    for (int i = 0; i < 20; ++i) {
      testing::WriteAll(rig.server.get(), "t", 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(40));
    }
    stop = true;
  });
  std::thread drain([&] { testing::ReadToEof(rig.client.get()); });
  int64_t start = MonotonicNowNs();
  PumpResult r = RunUntilComplete(*reactor_, Run(rig, 300));
  int64_t elapsed_ms = (MonotonicNowNs() - start) / 1'000'000;
  ticker.join();
  shutdown(rig.downstream.get(), SHUT_RDWR);
  drain.join();
  EXPECT_EQ(r.end, PumpEnd::kIdleTimeout);
  EXPECT_EQ(r.bytes_to_downstream, 20u);
  // The client->upstream direction was silent the whole time, yet the pump lived on
  // (2.5 idle timeouts).
  EXPECT_GE(elapsed_ms, 750);
}

TEST_P(PumpTest, UpstreamResetEndsThePumpAsAnUpstreamError) {
  Rig rig;
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    linger l{1, 0};  // close with RST
    setsockopt(rig.server.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    rig.server.Reset();
  });
  PumpResult r = RunUntilComplete(*reactor_, Run(rig, 10000));
  killer.join();
  // kClosed would need EOF from the client too, which never shuts down here.
  ASSERT_EQ(r.end, PumpEnd::kUpstreamError) << PumpEndName(r.end);
  EXPECT_EQ(r.error, ECONNRESET);
}

TEST_P(PumpTest, ClientGoneWhileUpstreamSendsIsADownstreamError) {
  Rig rig;
  std::thread server([&] {
    std::string big(1 << 20, 'x');
    for (int i = 0; i < 64; ++i) {
      if (!testing::WriteAll(rig.server.get(), big.data(), big.size())) break;
    }
  });
  std::thread client([&] {
    char buf[1024];
    (void)recv(rig.client.get(), buf, sizeof(buf), 0);
    linger l{1, 0};
    setsockopt(rig.client.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    rig.client.Reset();
  });
  PumpResult r = RunUntilComplete(*reactor_, Run(rig, 10000));
  client.join();
  // Reset the upstream side so the writer thread, blocked on a full socket, fails.
  linger l{1, 0};
  setsockopt(rig.upstream.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  rig.upstream.Reset();
  server.join();
  EXPECT_EQ(r.end, PumpEnd::kDownstreamError) << PumpEndName(r.end);
  EXPECT_TRUE(r.error == ECONNRESET || r.error == EPIPE) << r.error;
}

TEST_P(PumpTest, ASlowButSteadyReaderIsNotIdle) {
  // Idle means nothing moves: a reader that takes a little every few milliseconds keeps
  // the pump alive however long what is queued for it takes, and gets every byte.
  Rig rig;
  int small = 4096;
  setsockopt(rig.downstream.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  setsockopt(rig.client.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  const std::string data = Pattern(100000, 3);
  std::string at_client;
  std::thread server([&] {
    testing::WriteAll(rig.server.get(), data.data(), data.size());
    shutdown(rig.server.get(), SHUT_WR);
  });
  std::thread client([&] {
    shutdown(rig.client.get(), SHUT_WR);
    char buf[2048];
    for (;;) {
      ssize_t n = recv(rig.client.get(), buf, sizeof(buf), 0);
      if (n <= 0) break;
      at_client.append(buf, static_cast<size_t>(n));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // ~40 KB/s
    }
  });
  PumpResult r = RunUntilComplete(*reactor_, Run(rig, 800));
  server.join();
  shutdown(rig.downstream.get(), SHUT_RDWR);
  client.join();
  EXPECT_EQ(r.end, PumpEnd::kClosed) << PumpEndName(r.end);
  EXPECT_EQ(at_client.size(), data.size());
  EXPECT_TRUE(at_client == data);
}

Task<PumpResult> RunAndStop(int down, int up, PumpResources res, RelayMode mode) {
  PumpOptions options;
  options.mode = mode;
  Streams s(down, up, res.buffers);
  Pump pump(&s.downstream, &s.upstream, res, options);
  auto stopper = [](Pump* p) -> Task<void> {
    co_await Sleep(Deadline::AfterMs(30));
    p->Stop();
  };
  Spawn(stopper(&pump));
  co_return co_await RunWithSweeper(&pump, res.sweeper, &s.downstream, &s.upstream);
}

TEST_P(PumpTest, StopEndsARunningPump) {
  Rig rig;
  PumpResult r = RunUntilComplete(
      *reactor_, RunAndStop(rig.downstream.get(), rig.upstream.get(), Resources(), GetParam()));
  EXPECT_EQ(r.end, PumpEnd::kStopped);
}

// Takes every buffer of `ring` (the peer sends one chunk per buffer) and keeps them
// in `held`, so the pump's directions wait for buffers with nothing in the kernel.
Task<void> HoldAllBuffers(BufferRing* ring, int fd, std::vector<ProvidedBuffer>* held) {
  RecvStream stream(*ring, fd, RecvLimits{ring->count(), 0});
  while (!ring->exhausted()) {
    Received r = co_await stream.Next(Deadline::AfterMs(5000));
    if (r.status.res <= 0) break;
    held->push_back(std::move(r.buffer));
  }
  co_await stream.Stop();
}

// Stops the pump after 50 ms; if it has not ended 1.5 s later, the watchdog gives
// the buffers back and shuts the peers down so the test ends either way.
Task<PumpResult> AbortWhileWaitingForBuffers(Rig* rig, PumpResources res, RelayMode mode,
                                             std::vector<ProvidedBuffer>* held,
                                             bool* watchdog_fired) {
  PumpOptions options;
  options.mode = mode;
  Streams s(rig->downstream.get(), rig->upstream.get(), res.buffers);
  Pump pump(&s.downstream, &s.upstream, res, options);
  bool ended = false;
  auto stopper = [](Pump* p) -> Task<void> {
    co_await Sleep(Deadline::AfterMs(50));
    p->Stop();
  };
  auto watchdog = [](Rig* rig, std::vector<ProvidedBuffer>* held, bool* ended,
                     bool* fired) -> Task<void> {
    co_await Sleep(Deadline::AfterMs(1500));
    if (*ended) co_return;
    *fired = true;
    held->clear();
    shutdown(rig->client.get(), SHUT_RDWR);
    shutdown(rig->server.get(), SHUT_RDWR);
  };
  Spawn(stopper(&pump));
  Spawn(watchdog(rig, held, &ended, watchdog_fired));
  PumpResult r = co_await RunWithSweeper(&pump, res.sweeper, &s.downstream, &s.upstream);
  ended = true;
  co_await Sleep(Deadline::AfterMs(1600));  // let the watchdog finish
  co_return r;
}

// The modes whose directions take ring buffers (splice reads the socket directly).
class PumpRingTest : public PumpTest {};
INSTANTIATE_TEST_SUITE_P(RingModes, PumpRingTest,
                         ::testing::Values(RelayMode::kAuto, RelayMode::kCopy),
                         [](const auto& info) { return std::string(RelayModeName(info.param)); });

TEST_P(PumpRingTest, AbortedPumpWaitingForBuffersWithSilentPeersEndsAtOnce) {
  Rig rig;
  auto [feeder, sink] = testing::TcpPair();
  testing::SetBlocking(feeder.get());
  std::string fill(size_t{ring_->count()} * ring_->buffer_size(), 'b');
  std::thread writer([&, fd = feeder.get()] { testing::WriteAll(fd, fill.data(), fill.size()); });
  std::vector<ProvidedBuffer> held;
  RunUntilComplete(*reactor_, HoldAllBuffers(ring_.get(), sink.get(), &held));
  writer.join();
  ASSERT_TRUE(ring_->exhausted());
  bool watchdog_fired = false;
  int64_t start = MonotonicNowNs();
  PumpResult r = RunUntilComplete(
      *reactor_,
      AbortWhileWaitingForBuffers(&rig, Resources(), GetParam(), &held, &watchdog_fired));
  int64_t ms = (MonotonicNowNs() - start) / 1'000'000 - 1600;
  held.clear();
  EXPECT_FALSE(watchdog_fired) << "the stopped pump kept waiting for buffers";
  EXPECT_LT(ms, 1000);
  EXPECT_EQ(r.end, PumpEnd::kStopped) << PumpEndName(r.end);
}

// A client that never reads (tiny queues toward it) while the upstream sends `chunk`
// bytes every `pause_ms`, until the test is over.
class StalledClient {
 public:
  StalledClient(Rig* rig, size_t chunk, int pause_ms) : rig_(rig) {
    int small = 4096;
    setsockopt(rig->downstream.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(rig->client.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    server_ = std::thread([this, chunk, pause_ms] {
      std::string data(chunk, 's');
      while (!done_ && testing::WriteAll(rig_->server.get(), data.data(), data.size())) {
        if (pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
      }
    });
  }
  ~StalledClient() {
    done_ = true;
    shutdown(rig_->server.get(), SHUT_RDWR);
    server_.join();
  }

 private:
  Rig* rig_;
  std::atomic<bool> done_{false};
  std::thread server_;
};

TEST_P(PumpTest, ASendWithoutProgressEndsThePumpAtTheSendTimeout) {
  Rig rig;
  PumpResult r;
  int64_t ms = 0;
  {
    StalledClient stalled(&rig, 65536, 0);
    int64_t start = MonotonicNowNs();
    r = RunUntilComplete(*reactor_, Run(rig, 60000, 300));
    ms = (MonotonicNowNs() - start) / 1'000'000;
  }
  EXPECT_EQ(r.end, PumpEnd::kDownstreamError) << PumpEndName(r.end);
  EXPECT_EQ(r.error, ETIMEDOUT);
  EXPECT_LT(ms, 5000);
}

// A direction whose destination stopped reading keeps none of the shard's receive
// buffers while it waits: what it could not send, and what arrived meanwhile (up to the
// spill, then the receive pauses), are its own copies.
Task<uint32_t> InUseWhileStalled(Rig* rig, BufferRing* ring, PumpResources res, RelayMode mode) {
  PumpOptions options;
  options.mode = mode;
  Streams s(rig->downstream.get(), rig->upstream.get(), ring);
  Pump pump(&s.downstream, &s.upstream, res, options);
  uint32_t in_use = 0;
  auto probe = [](Pump* p, BufferRing* ring, uint32_t* in_use) -> Task<void> {
    co_await Sleep(Deadline::AfterMs(500));
    *in_use = ring->in_use();
    p->Stop();
  };
  Spawn(probe(&pump, ring, &in_use));
  co_await RunWithSweeper(&pump, res.sweeper, &s.downstream, &s.upstream);
  co_return in_use;
}

// Copy alone: auto splices between plain sockets, and splice takes no ring buffers.
class PumpCopyTest : public PumpTest {};
INSTANTIATE_TEST_SUITE_P(CopyMode, PumpCopyTest, ::testing::Values(RelayMode::kCopy),
                         [](const auto& info) { return std::string(RelayModeName(info.param)); });

TEST_P(PumpCopyTest, AStalledDirectionHoldsNoReceiveBuffers) {
  Rig rig;
  uint32_t in_use = 0;
  {
    StalledClient stalled(&rig, 4096, 1);
    in_use =
        RunUntilComplete(*reactor_, InUseWhileStalled(&rig, ring_.get(), Resources(), GetParam()));
  }
  EXPECT_EQ(in_use, 0u);
}

// Holds the process at its descriptor limit, with `spare` numbers still free (for the
// streams' dups): a pipe(2) then fails with EMFILE, as on a loaded edge box.
class AtDescriptorLimit {
 public:
  explicit AtDescriptorLimit(int spare) {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit low = saved_;
    low.rlim_cur = std::min<rlim_t>(saved_.rlim_cur, 512);
    ::setrlimit(RLIMIT_NOFILE, &low);
    for (;;) {
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;  // EMFILE
      held_.push_back(fd);
    }
    for (int i = 0; i < spare && !held_.empty(); ++i) {
      ::close(held_.back());
      held_.pop_back();
    }
  }
  ~AtDescriptorLimit() {
    for (int fd : held_) ::close(fd);
    ::setrlimit(RLIMIT_NOFILE, &saved_);
  }

 private:
  rlimit saved_{};
  std::vector<int> held_;
};

// Splice modes with no pipe to be had: the relay copies instead and loses nothing.
// Not in the ASan+UBSan build: UBSan's checks themselves need a pipe (they probe memory
// through one), and at the descriptor limit they report false errors.
class PumpNoPipeTest : public PumpTest {
 protected:
  void SetUp() override {
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "the sanitizers need descriptors of their own";
#endif
    PumpTest::SetUp();
  }
  void TearDown() override {
    if (!IsSkipped()) PumpTest::TearDown();
  }
};
INSTANTIATE_TEST_SUITE_P(SpliceModes, PumpNoPipeTest,
                         ::testing::Values(RelayMode::kAuto, RelayMode::kSplice),
                         [](const auto& info) { return std::string(RelayModeName(info.param)); });

TEST_P(PumpNoPipeTest, AtTheDescriptorLimitTheRelayCopiesInsteadOfEnding) {
  Rig rig;
  const size_t n = 4 << 20;
  const std::string data = Pattern(n, 3);
  std::string at_client;
  std::thread server([&] {
    testing::WriteAll(rig.server.get(), data.data(), n);
    shutdown(rig.server.get(), SHUT_WR);
  });
  std::thread client([&] {
    shutdown(rig.client.get(), SHUT_WR);
    at_client = testing::ReadToEof(rig.client.get());
  });
  PipePool no_cache(65536, 0);
  PumpResult r;
  {
    AtDescriptorLimit limit(2);
    PumpOptions options;
    options.idle_timeout_ms = 10000;
    options.mode = GetParam();
    r = RunUntilComplete(*reactor_,
                         RunPump(rig.downstream.get(), rig.upstream.get(),
                                 PumpResources{&no_cache, ring_.get(), &sweeper_}, options));
  }
  // The proxy's ends are done: a relay cut short must not leave the peers waiting.
  shutdown(rig.downstream.get(), SHUT_RDWR);
  shutdown(rig.upstream.get(), SHUT_RDWR);
  server.join();
  client.join();
  EXPECT_EQ(r.end, PumpEnd::kClosed) << PumpEndName(r.end);
  EXPECT_EQ(r.bytes_to_downstream, n);
  EXPECT_TRUE(at_client == data);
  EXPECT_EQ(no_cache.created(), 0u);
  if (GetParam() == RelayMode::kAuto) {
    EXPECT_GT(r.mode_switches, 0u) << "the stream should have tried to splice";
  }
}

Task<SpliceEnd> SpliceBody(int from_fd, int to_fd, BufferRing* ring, PipePool* pipes, uint64_t n,
                           uint64_t* moved) {
  Streams s(from_fd, to_fd, ring);
  const SpliceEnd end =
      co_await SpliceExactly(&s.downstream, &s.upstream, n, pipes, 10000, 10000, moved);
  co_await s.downstream.Quiesce();
  co_await s.upstream.Quiesce();
  co_return end;
}

TEST_P(PumpNoPipeTest, AtTheDescriptorLimitABodyIsCopiedInsteadOfCut) {
  Rig rig;
  const size_t n = 2 << 20;
  const std::string data = Pattern(n, 4);
  std::string at_server;
  std::thread client([&] { testing::WriteAll(rig.client.get(), data.data(), n); });
  std::thread server([&] {
    char buf[65536];
    while (at_server.size() < n) {
      const ssize_t got = recv(rig.server.get(), buf, sizeof buf, 0);
      if (got <= 0) break;
      at_server.append(buf, static_cast<size_t>(got));
    }
  });
  PipePool no_cache(65536, 0);
  uint64_t moved = 0;
  SpliceEnd end;
  {
    AtDescriptorLimit limit(2);
    end = RunUntilComplete(*reactor_, SpliceBody(rig.downstream.get(), rig.upstream.get(),
                                                 ring_.get(), &no_cache, n, &moved));
  }
  shutdown(rig.downstream.get(), SHUT_RDWR);
  shutdown(rig.upstream.get(), SHUT_RDWR);
  client.join();
  server.join();
  EXPECT_EQ(end, SpliceEnd::kDone);
  EXPECT_EQ(moved, n);
  EXPECT_TRUE(at_server == data);
}

}  // namespace
}  // namespace ringproxy
