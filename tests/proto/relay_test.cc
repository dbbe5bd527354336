// The relay between real loopback sockets, in every mode (auto, copy, splice):
// exactness, half-close, idle timeout, errors on either side, Stop(). Peers are plain
// blocking threads.
#include "proto/relay.h"

#include <sys/socket.h>

#include <atomic>
#include <string>
#include <thread>

#include "core/ops.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace ringproxy {
namespace {

struct Rig {
  Rig() {
    auto a = testing::TcpPair();
    auto b = testing::TcpPair();
    client = std::move(a.first);       // the test's client
    downstream = std::move(a.second);  // relay's client side
    upstream = std::move(b.first);     // relay's upstream side
    server = std::move(b.second);      // the test's upstream server
    testing::SetBlocking(client.get());
    testing::SetBlocking(server.get());
  }
  UniqueFd client, downstream, upstream, server;
};

Task<void> RunSweeper(IdleSweeper* sweeper, Gate::Holder) { co_await sweeper->Run(); }

// Runs `relay` next to an idle sweeper, as a shard does.
Task<RelayResult> RunWithSweeper(Relay* relay, IdleSweeper* sweeper) {
  Gate gate;
  Spawn(RunSweeper(sweeper, gate.Enter()));
  RelayResult r = co_await relay->Run();
  sweeper->Stop();
  co_await gate.Wait();
  co_return r;
}

Task<RelayResult> RunRelay(int down, int up, RelayResources res, RelayMode mode, int64_t idle_ms) {
  RelayOptions options;
  options.idle_timeout_ms = idle_ms;
  options.mode = mode;
  Relay relay(down, up, res, options);
  co_return co_await RunWithSweeper(&relay, res.sweeper);
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

class RelayTest : public ::testing::TestWithParam<RelayMode> {
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
  Task<RelayResult> Run(const Rig& rig, int64_t idle_ms) {
    return RunRelay(rig.downstream.get(), rig.upstream.get(),
                    RelayResources{&pipes_, ring_.get(), &sweeper_}, GetParam(), idle_ms);
  }
  std::unique_ptr<Reactor> reactor_;
  std::unique_ptr<BufferRing> ring_;
  PipePool pipes_{65536, 4};
  IdleSweeper sweeper_{10};
};

INSTANTIATE_TEST_SUITE_P(Modes, RelayTest,
                         ::testing::Values(RelayMode::kAuto, RelayMode::kCopy, RelayMode::kSplice),
                         [](const auto& info) { return std::string(RelayModeName(info.param)); });

TEST_P(RelayTest, BothDirectionsAtOnceAreByteExact) {
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
  RelayResult r = RunUntilComplete(*reactor_, Run(rig, 10000));
  client_writer.join();
  server_writer.join();
  server_reader.join();
  client_reader.join();
  EXPECT_EQ(r.end, RelayEnd::kClosed);
  EXPECT_EQ(r.bytes_to_upstream, n);
  EXPECT_EQ(r.bytes_to_downstream, n);
  EXPECT_TRUE(at_server == up_data);
  EXPECT_TRUE(at_client == down_data);
  if (GetParam() == RelayMode::kAuto) {
    EXPECT_GT(r.mode_switches, 0u) << "a bulk stream should have moved to splice";
  }
}

TEST_P(RelayTest, HalfCloseLetsTheOtherDirectionFinish) {
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
  RelayResult r = RunUntilComplete(*reactor_, Run(rig, 10000));
  peers.join();
  EXPECT_EQ(r.end, RelayEnd::kClosed);
  EXPECT_EQ(at_client, "response");
  EXPECT_EQ(r.bytes_to_upstream, 7u);
  EXPECT_EQ(r.bytes_to_downstream, 8u);
}

TEST_P(RelayTest, IdleTimeoutClosesBothSides) {
  Rig rig;
  int64_t start = MonotonicNowNs();
  RelayResult r = RunUntilComplete(*reactor_, Run(rig, 100));
  EXPECT_EQ(r.end, RelayEnd::kIdleTimeout);
  EXPECT_GE((MonotonicNowNs() - start) / 1'000'000, 95);
}

TEST_P(RelayTest, TrafficInOneDirectionKeepsTheRelayAlive) {
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
  RelayResult r = RunUntilComplete(*reactor_, Run(rig, 300));
  int64_t elapsed_ms = (MonotonicNowNs() - start) / 1'000'000;
  ticker.join();
  shutdown(rig.downstream.get(), SHUT_RDWR);
  drain.join();
  EXPECT_EQ(r.end, RelayEnd::kIdleTimeout);
  EXPECT_EQ(r.bytes_to_downstream, 20u);
  // The client->upstream direction was silent the whole time, yet the relay lived on
  // (2.5 idle timeouts).
  EXPECT_GE(elapsed_ms, 750);
}

TEST_P(RelayTest, UpstreamResetEndsTheRelayAsAnUpstreamError) {
  Rig rig;
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    linger l{1, 0};  // close with RST
    setsockopt(rig.server.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    rig.server.Reset();
  });
  RelayResult r = RunUntilComplete(*reactor_, Run(rig, 10000));
  killer.join();
  // kClosed would need EOF from the client too, which never shuts down here.
  ASSERT_EQ(r.end, RelayEnd::kUpstreamError) << RelayEndName(r.end);
  EXPECT_EQ(r.error, ECONNRESET);
}

TEST_P(RelayTest, ClientGoneWhileUpstreamSendsIsADownstreamError) {
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
  RelayResult r = RunUntilComplete(*reactor_, Run(rig, 10000));
  client.join();
  // Reset the upstream side so the writer thread, blocked on a full socket, fails.
  linger l{1, 0};
  setsockopt(rig.upstream.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  rig.upstream.Reset();
  server.join();
  EXPECT_EQ(r.end, RelayEnd::kDownstreamError) << RelayEndName(r.end);
  EXPECT_TRUE(r.error == ECONNRESET || r.error == EPIPE) << r.error;
}

Task<RelayResult> RunAndStop(int down, int up, RelayResources res, RelayMode mode) {
  RelayOptions options;
  options.mode = mode;
  Relay relay(down, up, res, options);
  auto stopper = [](Relay* r) -> Task<void> {
    co_await Sleep(Deadline::AfterMs(30));
    r->Stop();
  };
  Spawn(stopper(&relay));
  co_return co_await RunWithSweeper(&relay, res.sweeper);
}

TEST_P(RelayTest, StopEndsARunningRelay) {
  Rig rig;
  RelayResult r = RunUntilComplete(
      *reactor_, RunAndStop(rig.downstream.get(), rig.upstream.get(),
                            RelayResources{&pipes_, ring_.get(), &sweeper_}, GetParam()));
  EXPECT_EQ(r.end, RelayEnd::kStopped);
}

}  // namespace
}  // namespace ringproxy
