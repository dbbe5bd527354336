// The lookup client against real lookupd processes: answers, failover and the skip
// interval, read timeouts (no failover), keep-alive reuse, and invalid answers; and
// lookupd's own answer to a malformed request.
#include "route/lookup_client.h"

#include <sys/socket.h>

#include <string>
#include <thread>
#include <vector>

#include "core/ops.h"
#include "gtest/gtest.h"
#include "tests/process_util.h"
#include "tests/test_util.h"

namespace ringproxy {
namespace {

LookupHandler Handler(uint16_t port) {
  LookupHandler h;
  h.text = "127.0.0.1:" + std::to_string(port);
  h.address = *SocketAddress::Parse(h.text);
  return h;
}

LookupQuery Query(std::string user, std::string protocol = "imap") {
  LookupQuery q;
  q.user = std::move(user);
  q.protocol = std::move(protocol);
  q.client_ip = "198.51.100.7";
  q.proxy_ip = "127.0.0.1";
  return q;
}

Task<std::vector<LookupResult>> Several(LookupClient* c, std::vector<LookupQuery> qs) {
  std::vector<LookupResult> out;
  for (LookupQuery& q : qs) out.push_back(co_await c->Lookup(std::move(q)));
  c->Close();
  co_return out;
}

class LookupClientTest : public ::testing::Test {
 protected:
  void SetUp() override { reactor_ = testing::MakeReactor(); }
  std::unique_ptr<Reactor> reactor_;
};

TEST_F(LookupClientTest, AnswersAndKeepsTheConnection) {
  testing::Lookupd d;
  ASSERT_TRUE(d.Start());
  LookupOptions o;
  o.handlers = {Handler(d.port())};
  LookupClient c(o);
  auto r = RunUntilComplete(
      *reactor_, Several(&c, {Query("jd"), Query("nobody"), Query("john@example.com", "pop3")}));
  EXPECT_EQ(r[0].status, LookupStatus::kOk);
  EXPECT_EQ(r[0].server, "127.0.0.1");
  EXPECT_EQ(r[0].port, 7143);
  EXPECT_EQ(r[0].user, "john@example.com");
  EXPECT_TRUE(r[0].cache_alias);
  EXPECT_EQ(r[1].status, LookupStatus::kLoginFailed);
  EXPECT_EQ(r[1].reason, "user not found:nobody@example.com");
  EXPECT_EQ(r[1].wait_s, 3);
  EXPECT_EQ(r[2].port, 7110);
  EXPECT_EQ(c.stats().connects, 1u);
  EXPECT_EQ(c.stats().reused, 2u);
  EXPECT_EQ(d.Requests(), 3);
}

// A web login is not escaped on the wire: one with CR LF in it would add a header of the
// client's choosing to the lookup request. It fails the lookup before anything is sent.
TEST_F(LookupClientTest, AWebUserWithCrLfNeverReachesTheService) {
  testing::Lookupd d;
  ASSERT_TRUE(d.Start());
  LookupOptions o;
  o.handlers = {Handler(d.port())};
  LookupClient c(o);
  LookupQuery q = Query("john\r\nX-Evil: 1", "http");
  q.escape_user = false;
  q.proxy_host = "mail.example.com";
  auto r = RunUntilComplete(*reactor_, Several(&c, {q}));
  EXPECT_EQ(r[0].status, LookupStatus::kInvalidRequest);
  EXPECT_EQ(r[0].reason, "control character in Auth-User");
  EXPECT_EQ(r[0].server, "");
  EXPECT_EQ(c.stats().connects, 0u);
  EXPECT_EQ(c.stats().invalid_requests, 1u);
  EXPECT_EQ(c.stats().unavailable, 0u);
  d.Stop();
  EXPECT_EQ(d.Requests(), 0);
  EXPECT_EQ(d.RequestLog(), "");
}

TEST_F(LookupClientTest, LookupdAnswersAMalformedRequestWith400AndLogsIt) {
  testing::Lookupd d;
  ASSERT_TRUE(d.Start());
  UniqueFd fd(socket(AF_INET, SOCK_STREAM, 0));
  auto addr = SocketAddress::Parse(d.address());
  ASSERT_TRUE(addr.ok());
  ASSERT_EQ(connect(fd.get(), addr->get(), addr->size()), 0);
  const std::string garbage = "GET\r\nAuth-User: x\r\n\r\n";
  ASSERT_TRUE(testing::WriteAll(fd.get(), garbage.data(), garbage.size()));
  EXPECT_EQ(testing::ReadToEof(fd.get()),
            "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  d.Stop();
  EXPECT_NE(d.RequestLog().find("malformed=bad start line"), std::string::npos) << d.RequestLog();
  EXPECT_EQ(d.Requests(), 0);
}

TEST_F(LookupClientTest, OneConnectionPerLookupWhenTheServiceCloses) {
  testing::Lookupd d;
  ASSERT_TRUE(d.Start({"--close"}));
  LookupOptions o;
  o.handlers = {Handler(d.port())};
  LookupClient c(o);
  auto r = RunUntilComplete(*reactor_, Several(&c, {Query("jd"), Query("jd"), Query("jd")}));
  for (auto& x : r) EXPECT_EQ(x.status, LookupStatus::kOk);
  EXPECT_EQ(c.stats().connects, 3u);
  EXPECT_EQ(c.stats().reused, 0u);
}

TEST_F(LookupClientTest, RefusedHandlerFailsOverAndIsSkippedForTheRetryInterval) {
  testing::Lookupd d;
  ASSERT_TRUE(d.Start());
  LookupOptions o;
  o.handlers = {Handler(testing::FreePort()), Handler(d.port())};
  o.retry_interval_ms = 60000;
  LookupClient c(o);
  // Round robin starts at handler 0 (dead), then 1, 0 (skipped now), 1...
  auto r = RunUntilComplete(*reactor_,
                            Several(&c, {Query("jd"), Query("jd"), Query("jd"), Query("jd")}));
  for (auto& x : r) EXPECT_EQ(x.status, LookupStatus::kOk);
  EXPECT_EQ(c.stats().handler_failures, 1u) << "the dead handler was tried once, then skipped";
  EXPECT_TRUE(c.HandlerSkipped(0));
  EXPECT_EQ(d.Requests(), 4);
}

TEST_F(LookupClientTest, SkippedHandlerIsTriedAgainAfterTheInterval) {
  testing::Lookupd d;
  ASSERT_TRUE(d.Start());
  LookupOptions o;
  o.handlers = {Handler(testing::FreePort()), Handler(d.port())};
  o.retry_interval_ms = 1;
  LookupClient c(o);
  // Round robin starts at 0 (dead), 1, 0 (dead again: the 1 ms skip has expired).
  for (int i = 0; i < 3; ++i) {
    auto r = RunUntilComplete(*reactor_, Several(&c, {Query("jd")}));
    EXPECT_EQ(r[0].status, LookupStatus::kOk);
    usleep(5000);
  }
  EXPECT_EQ(c.stats().handler_failures, 2u);
}

TEST_F(LookupClientTest, AllHandlersDownIsATemporaryFailure) {
  LookupOptions o;
  o.handlers = {Handler(testing::FreePort()), Handler(testing::FreePort())};
  LookupClient c(o);
  auto r = RunUntilComplete(*reactor_, Several(&c, {Query("jd"), Query("jd")}));
  EXPECT_EQ(r[0].status, LookupStatus::kUnavailable);
  EXPECT_EQ(r[0].reason, "no valid lookup handlers");
  EXPECT_EQ(r[1].status, LookupStatus::kUnavailable);  // both skipped now: no attempt
  EXPECT_EQ(c.stats().handler_failures, 2u);
}

TEST_F(LookupClientTest, ReadTimeoutFailsTheLookupWithoutFailover) {
  testing::Lookupd slow, fast;
  ASSERT_TRUE(slow.Start({"--latency-ms", "1000"}));
  ASSERT_TRUE(fast.Start());
  LookupOptions o;
  o.handlers = {Handler(slow.port()), Handler(fast.port())};
  o.timeout_ms = 200;
  LookupClient c(o);
  int64_t start = MonotonicNowNs();
  auto r = RunUntilComplete(*reactor_, Several(&c, {Query("jd")}));
  int64_t took_ms = (MonotonicNowNs() - start) / 1'000'000;
  EXPECT_EQ(r[0].status, LookupStatus::kUnavailable);
  EXPECT_NE(r[0].reason.find("no lookup response within 200 ms"), std::string::npos);
  EXPECT_GE(took_ms, 190);
  EXPECT_LT(took_ms, 900);
  EXPECT_EQ(fast.Requests(), 0) << "a read timeout must not fail over";
}

// Reads a blocking socket up to the blank line that ends a request head.
bool ReadRequestHead(int fd) {
  std::string head;
  char buf[1024];
  while (head.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    head.append(buf, static_cast<size_t>(n));
  }
  return true;
}

// A lookup service that answers the first request on a connection and keeps it. Then,
// when the next request arrives on it, it resets it (SO_LINGER 0) without an answer
// (`reset`: what a client sees when the service dropped an idle connection as the request
// went out), or it never answers it (a firewall that dropped the idle connection
// silently; the request is not even read). A second connection is answered. Ends when
// the client closes, or at shutdown(listener).
void AnswerOnceThenDrop(int listener, int* requests, bool reset) {
  lookup::Reply ok;
  ok.ok = true;
  ok.server = "10.0.0.7";
  ok.port = 7143;
  ok.user = "john@example.com";
  std::string reply;
  lookup::WriteReply(ok, /*keep_alive=*/true, &reply);
  UniqueFd first(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!first.valid() || !ReadRequestHead(first.get())) return;
  ++*requests;
  if (!testing::WriteAll(first.get(), reply.data(), reply.size())) return;
  if (reset) {
    if (!ReadRequestHead(first.get())) return;
    ++*requests;
    linger now{1, 0};
    setsockopt(first.get(), SOL_SOCKET, SO_LINGER, &now, sizeof(now));
    first.Reset();
  }
  UniqueFd second(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!second.valid() || !ReadRequestHead(second.get())) return;
  ++*requests;
  if (!testing::WriteAll(second.get(), reply.data(), reply.size())) return;
  testing::ReadToEof(second.get());
}

TEST_F(LookupClientTest, AKeptConnectionResetOnReuseIsRetriedOnceOnAFreshOne) {
  uint16_t port = 0;
  UniqueFd listener = testing::ListenLoopback(&port);
  testing::SetBlocking(listener.get());
  int requests = 0;
  std::thread service(AnswerOnceThenDrop, listener.get(), &requests, /*reset=*/true);
  LookupOptions o;
  o.handlers = {Handler(port)};
  LookupClient c(o);
  auto r = RunUntilComplete(*reactor_, Several(&c, {Query("jd"), Query("jd")}));
  shutdown(listener.get(), SHUT_RDWR);  // wakes accept() if no second connection came
  service.join();
  EXPECT_EQ(r[0].status, LookupStatus::kOk) << r[0].reason;
  EXPECT_EQ(r[1].status, LookupStatus::kOk) << r[1].reason;
  EXPECT_EQ(r[1].server, "10.0.0.7");
  EXPECT_EQ(c.stats().reused, 1u);
  EXPECT_EQ(c.stats().connects, 2u) << "one fresh connection for the retry";
  EXPECT_EQ(c.stats().unavailable, 0u);
  EXPECT_EQ(requests, 3);
}

Task<std::vector<LookupResult>> TwoApart(LookupClient* c, int64_t pause_ms) {
  std::vector<LookupResult> out;
  out.push_back(co_await c->Lookup(Query("jd")));
  co_await Sleep(Deadline::AfterMs(pause_ms));
  out.push_back(co_await c->Lookup(Query("jd")));
  c->Close();
  co_return out;
}

// A kept connection idle longer than max_idle_ms is not reused: one dropped silently
// on the way would cost the lookup its whole timeout.
TEST_F(LookupClientTest, AConnectionIdleLongerThanMaxIdleIsNotReused) {
  uint16_t port = 0;
  UniqueFd listener = testing::ListenLoopback(&port);
  testing::SetBlocking(listener.get());
  int requests = 0;
  std::thread service(AnswerOnceThenDrop, listener.get(), &requests, /*reset=*/false);
  LookupOptions o;
  o.handlers = {Handler(port)};
  o.timeout_ms = 1000;
  o.max_idle_ms = 100;
  LookupClient c(o);
  auto r = RunUntilComplete(*reactor_, TwoApart(&c, 300));
  shutdown(listener.get(), SHUT_RDWR);
  service.join();
  EXPECT_EQ(r[0].status, LookupStatus::kOk) << r[0].reason;
  EXPECT_EQ(r[1].status, LookupStatus::kOk) << r[1].reason;
  EXPECT_EQ(c.stats().reused, 0u);
  EXPECT_EQ(c.stats().connects, 2u);
  EXPECT_EQ(requests, 2);
}

TEST_F(LookupClientTest, AnInvalidResponseIsATemporaryFailure) {
  testing::Lookupd bad;
  ASSERT_TRUE(bad.Start({"--error-rate", "1"}));
  LookupOptions o;
  o.handlers = {Handler(bad.port())};
  LookupClient c(o);
  auto r = RunUntilComplete(*reactor_, Several(&c, {Query("jd")}));
  EXPECT_EQ(r[0].status, LookupStatus::kUnavailable);
  EXPECT_EQ(r[0].reason, "invalid lookup response: status other than 200");
}

}  // namespace
}  // namespace ringproxy
