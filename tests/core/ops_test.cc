// The awaitable operations on real loopback sockets, under both ring modes (with
// DEFER_TASKRUN and with the plain fallback).
#include "core/ops.h"

#include <poll.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/socket.h"
#include "core/sync.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace ringproxy {
namespace {

class OpsTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    reactor_ = testing::MakeReactor(GetParam());
    ASSERT_NE(reactor_, nullptr);
  }
  std::unique_ptr<Reactor> reactor_;
};

INSTANTIATE_TEST_SUITE_P(RingModes, OpsTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Deferred" : "Plain"; });

TEST_P(OpsTest, SetupFlagsMatchTheMode) { EXPECT_EQ(reactor_->defer_taskrun(), GetParam()); }

Task<IoResult> NopTwice() {
  IoResult a = co_await Nop();
  IoResult b = co_await Nop();
  co_return IoResult{a.res + b.res};
}

// The start refuses a kernel without multishot receive (6.0): the version as uname
// gives it.
TEST(KernelTest, KernelAtLeastReadsTheRelease) {
  EXPECT_TRUE(KernelAtLeast("6.0.0", 6, 0));
  EXPECT_TRUE(KernelAtLeast("6.1.0-18-amd64", 6, 0));
  EXPECT_TRUE(KernelAtLeast("6.18.44-fc-v1294", 6, 0));
  EXPECT_TRUE(KernelAtLeast("10.2", 6, 0));
  EXPECT_FALSE(KernelAtLeast("5.19.17", 6, 0));
  EXPECT_FALSE(KernelAtLeast("5.4.0-150-generic", 6, 0));
  EXPECT_FALSE(KernelAtLeast("6", 6, 0));
  EXPECT_FALSE(KernelAtLeast("", 6, 0));
  EXPECT_FALSE(KernelAtLeast("x.y", 6, 0));
  EXPECT_TRUE(KernelAtLeast("6.10", 6, 9));
  EXPECT_FALSE(KernelAtLeast("6.8", 6, 10));
}

TEST_P(OpsTest, Nop) { EXPECT_EQ(RunUntilComplete(*reactor_, NopTwice()).res, 0); }

Task<int64_t> SleepFor(int ms) {
  int64_t start = MonotonicNowNs();
  IoResult r = co_await Sleep(Deadline::AfterMs(ms));
  EXPECT_EQ(r.res, 0);
  co_return (MonotonicNowNs() - start) / 1'000'000;
}

TEST_P(OpsTest, SleepWaitsUntilTheDeadline) {
  EXPECT_GE(RunUntilComplete(*reactor_, SleepFor(30)), 29);
}

void SpinNs(int64_t ns) {
  const int64_t until = MonotonicNowNs() + ns;
  while (MonotonicNowNs() < until) {
  }
}

Task<std::pair<int64_t, int64_t>> TurnClockAroundASleep() {
  const int64_t before = TurnNowNs();
  SpinNs(2'000'000);  // busy within the turn: its clock stays where it was read
  const int64_t within = TurnNowNs() - before;
  co_await Sleep(Deadline::AfterMs(20));
  co_return std::pair(within, TurnNowNs() - before);
}

TEST_P(OpsTest, TheTurnClockIsReadOncePerTurnAndAfreshAfterASleep) {
  const auto [within, across] = RunUntilComplete(*reactor_, TurnClockAroundASleep());
  EXPECT_EQ(within, 0);
  EXPECT_GE(across, 20'000'000);
  // Outside a turn (Run has returned) it is the clock.
  const int64_t a = TurnNowNs();
  SpinNs(1'000'000);
  EXPECT_GE(TurnNowNs() - a, 1'000'000);
}

Task<std::string> SendThenRecv(int a, int b, std::string msg) {
  IoResult s = co_await SendAll(a, AsBytes(msg), Deadline::AfterMs(2000));
  EXPECT_EQ(s.res, static_cast<int>(msg.size()));
  std::string got;
  std::byte buf[64];
  while (got.size() < msg.size()) {
    IoResult r = co_await Recv(b, buf, Deadline::AfterMs(2000));
    if (r.res <= 0) break;
    got.append(reinterpret_cast<char*>(buf), r.value());
  }
  co_return got;
}

TEST_P(OpsTest, SendAndRecvOverTcp) {
  auto [client, server] = testing::TcpPair();
  EXPECT_EQ(RunUntilComplete(*reactor_, SendThenRecv(client.get(), server.get(), "hello ring")),
            "hello ring");
}

Task<IoResult> RecvOnce(int fd, Deadline d) {
  std::byte buf[16];
  co_return co_await Recv(fd, buf, d);
}

TEST_P(OpsTest, RecvDeadlineGivesEtimedout) {
  auto [client, server] = testing::TcpPair();
  int64_t start = MonotonicNowNs();
  IoResult r = RunUntilComplete(*reactor_, RecvOnce(server.get(), Deadline::AfterMs(50)));
  EXPECT_EQ(r.res, -ETIMEDOUT);
  EXPECT_GE((MonotonicNowNs() - start) / 1'000'000, 45);
}

TEST_P(OpsTest, PassedDeadlineFailsWithoutSubmitting) {
  auto [client, server] = testing::TcpPair();
  IoResult r = RunUntilComplete(*reactor_, RecvOnce(server.get(), Deadline::AtNs(1)));
  EXPECT_EQ(r.res, -ETIMEDOUT);
}

Task<void> CancelLater(int fd) {
  co_await Sleep(Deadline::AfterMs(20));
  Reactor::Current()->CancelFd(fd);
}

Task<IoResult> RecvCancelled(int fd) {
  Spawn(CancelLater(fd));
  co_return co_await RecvOnce(fd, Deadline::AfterMs(5000));
}

TEST_P(OpsTest, CancelFdEndsAWaitWithEcanceled) {
  auto [client, server] = testing::TcpPair();
  EXPECT_EQ(RunUntilComplete(*reactor_, RecvCancelled(server.get())).res, -ECANCELED);
}

Task<IoResult> ConnectTo(SocketAddress addr, int64_t timeout_ms) {
  IoResult s = OpenTcpSocket(addr.family());
  EXPECT_TRUE(s.ok());
  UniqueFd fd(s.res);
  co_return co_await Connect(fd.get(), addr.get(), addr.size(), Deadline::AfterMs(timeout_ms));
}

TEST_P(OpsTest, ConnectSucceedsAndRefusedIsReported) {
  uint16_t port = 0;
  UniqueFd listener = testing::ListenLoopback(&port);
  auto ok = SocketAddress::Parse("127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(RunUntilComplete(*reactor_, ConnectTo(*ok, 2000)).res, 0);
  listener.Reset();
  EXPECT_EQ(RunUntilComplete(*reactor_, ConnectTo(*ok, 2000)).res, -ECONNREFUSED);
}

TEST_P(OpsTest, ConnectTimesOutWhenTheServerDropsSyns) {
  // A listener whose accept queue is full drops new SYNs: the connect hangs.
  uint16_t port = 0;
  UniqueFd listener = testing::ListenLoopback(&port);
  ASSERT_EQ(listen(listener.get(), 0), 0);
  auto addr = SocketAddress::Parse("127.0.0.1:" + std::to_string(port));
  std::vector<UniqueFd> fillers;
  for (int i = 0; i < 4; ++i) {
    fillers.emplace_back(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    connect(fillers.back().get(), addr->get(), addr->size());
  }
  usleep(50000);
  int64_t start = MonotonicNowNs();
  IoResult r = RunUntilComplete(*reactor_, ConnectTo(*addr, 100));
  EXPECT_EQ(r.res, -ETIMEDOUT);
  EXPECT_GE((MonotonicNowNs() - start) / 1'000'000, 95);
}

Task<IoResult> WaitReadable(int fd) {
  co_return co_await Poll(fd, POLLIN, Deadline::AfterMs(2000));
}

TEST_P(OpsTest, PollReportsReadiness) {
  auto [client, server] = testing::TcpPair();
  ASSERT_EQ(send(client.get(), "x", 1, 0), 1);
  IoResult r = RunUntilComplete(*reactor_, WaitReadable(server.get()));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value() & POLLIN);
}

Task<IoResult> ShutdownWrite(int fd) { co_return co_await Shutdown(fd, SHUT_WR); }

TEST_P(OpsTest, ShutdownSendsEof) {
  auto [client, server] = testing::TcpPair();
  EXPECT_EQ(RunUntilComplete(*reactor_, ShutdownWrite(client.get())).res, 0);
  char c;
  testing::SetBlocking(server.get());
  EXPECT_EQ(recv(server.get(), &c, 1, 0), 0);
}

Task<IoResult> CloseFd(int fd) { co_return co_await Close(fd); }

TEST_P(OpsTest, CloseThroughTheRing) {
  auto [client, server] = testing::TcpPair();
  int fd = client.Release();
  EXPECT_EQ(RunUntilComplete(*reactor_, CloseFd(fd)).res, 0);
  EXPECT_EQ(fcntl(fd, F_GETFD), -1);
}

Task<uint64_t> SpliceAll(int from, int to, size_t total) {
  int p[2];
  EXPECT_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  uint64_t moved = 0;
  while (moved < total) {
    IoResult in = co_await Splice(from, p[1], 1 << 20, from, POLLIN, Deadline::AfterMs(5000));
    if (in.res <= 0) break;
    size_t left = in.value();
    while (left > 0) {
      IoResult out = co_await Splice(p[0], to, left, to, POLLOUT, Deadline::AfterMs(5000));
      if (out.res <= 0) break;
      left -= out.value();
      moved += out.value();
    }
  }
  close(p[0]);
  close(p[1]);
  co_return moved;
}

TEST_P(OpsTest, SpliceMovesBytesBetweenSockets) {
  auto [a_client, a_server] = testing::TcpPair();
  auto [b_client, b_server] = testing::TcpPair();
  const size_t total = 8 << 20;
  std::string data(total, '\0');
  for (size_t i = 0; i < total; ++i) data[i] = static_cast<char>((i * 131) ^ (i >> 9));
  testing::SetBlocking(a_client.get());
  testing::SetBlocking(b_server.get());
  std::thread writer([&] { testing::WriteAll(a_client.get(), data.data(), data.size()); });
  std::string received;
  std::thread reader([&] {
    char buf[65536];
    while (received.size() < total) {
      ssize_t n = recv(b_server.get(), buf, sizeof(buf), 0);
      if (n <= 0) break;
      received.append(buf, static_cast<size_t>(n));
    }
  });
  uint64_t moved = RunUntilComplete(*reactor_, SpliceAll(a_server.get(), b_client.get(), total));
  writer.join();
  reader.join();
  EXPECT_EQ(moved, total);
  EXPECT_TRUE(received == data);
}

Task<IoResult> SpliceIdle(int from) {
  int p[2];
  EXPECT_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  IoResult r = co_await Splice(from, p[1], 4096, from, POLLIN, Deadline::AfterMs(40));
  close(p[0]);
  close(p[1]);
  co_return r;
}

TEST_P(OpsTest, SpliceWaitHasADeadline) {
  auto [client, server] = testing::TcpPair();
  EXPECT_EQ(RunUntilComplete(*reactor_, SpliceIdle(server.get())).res, -ETIMEDOUT);
}

Task<int> ManyConcurrentSleeps(int n) {
  Gate gate;
  int done = 0;
  auto one = [](Gate::Holder, int* done, int ms) -> Task<void> {
    co_await Sleep(Deadline::AfterMs(ms));
    ++*done;
  };
  for (int i = 0; i < n; ++i) Spawn(one(gate.Enter(), &done, i % 7));
  co_await gate.Wait();
  co_return done;
}

TEST_P(OpsTest, MoreOperationsThanSubmissionSlots) {
  // 5000 timers on a ring of 1024 entries: GetSqe flushes when the SQ is full.
  EXPECT_EQ(RunUntilComplete(*reactor_, ManyConcurrentSleeps(5000)), 5000);
  EXPECT_GT(reactor_->stats().sq_full_flushes, 0u);
}

// A Recv with a deadline whose SQE takes the last free slot: the linked timeout must
// not be split from it by a flush (it would be submitted alone and fail with EINVAL,
// leaving the Recv without a deadline).
Task<IoResult> RecvOnLastSlot(int fd, int fillers) {
  Gate gate;
  auto sleeper = [](Gate::Holder) -> Task<void> { co_await Sleep(Deadline::AfterMs(1)); };
  for (int i = 0; i < fillers; ++i) Spawn(sleeper(gate.Enter()));
  std::byte buf[16];
  IoResult r = co_await Recv(fd, buf, Deadline::AfterMs(100));
  co_await gate.Wait();
  co_return r;
}

TEST(OpsTinyRing, DeadlineSurvivesAFullSubmissionQueue) {
  ReactorOptions options;
  options.sq_entries = 4;
  auto reactor = Reactor::Create(options);
  ASSERT_TRUE(reactor.ok());
  for (int fillers = 0; fillers < 8; ++fillers) {
    auto [client, server] = testing::TcpPair();
    // The watchdog ends a Recv that lost its deadline, so a failure cannot hang.
    std::atomic<bool> done{false};
    std::thread watchdog([fd = client.get(), &done] {
      for (int i = 0; i < 300 && !done; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      (void)send(fd, "x", 1, MSG_NOSIGNAL);
    });
    int64_t start = MonotonicNowNs();
    IoResult r = RunUntilComplete(**reactor, RecvOnLastSlot(server.get(), fillers));
    int64_t ms = (MonotonicNowNs() - start) / 1'000'000;
    done = true;
    watchdog.join();
    EXPECT_EQ(r.res, -ETIMEDOUT) << "fillers " << fillers;
    EXPECT_LT(ms, 2000) << "fillers " << fillers;
  }
}

}  // namespace
}  // namespace ringproxy
