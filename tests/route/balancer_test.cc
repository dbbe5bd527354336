#include "route/balancer.h"

#include <map>
#include <vector>

#include "gtest/gtest.h"
#include "route/upstream_connect.h"

namespace ringproxy {
namespace {

UpstreamGroupConfig Group(Balance balance, int n) {
  UpstreamGroupConfig g;
  g.name = "g";
  g.balance = balance;
  g.max_fails = 1;
  g.fail_timeout_ms = 1000;
  for (int i = 0; i < n; ++i) {
    std::string text = "127.0.0.1:" + std::to_string(1000 + i);
    g.servers.push_back({text, *SocketAddress::Parse(text), 1, ""});
  }
  return g;
}

std::vector<uint32_t> PlanOf(UpstreamBalancer& b, const std::string& client, int64_t now) {
  uint32_t out[8];
  size_t n = b.Plan(*SocketAddress::Parse(client), now, out);
  return std::vector<uint32_t>(out, out + n);
}

TEST(BalancerTest, RoundRobinRotatesAndListsTheRestForFailover) {
  auto g = Group(Balance::kRoundRobin, 3);
  UpstreamBalancer b(g, 0);
  EXPECT_EQ(PlanOf(b, "10.0.0.1:5", 0), (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(PlanOf(b, "10.0.0.1:5", 0), (std::vector<uint32_t>{1, 2, 0}));
  EXPECT_EQ(PlanOf(b, "10.0.0.1:5", 0), (std::vector<uint32_t>{2, 0, 1}));
  EXPECT_EQ(PlanOf(b, "10.0.0.1:5", 0), (std::vector<uint32_t>{0, 1, 2}));
}

// A reload that keeps the group's servers keeps their state: down marks and live
// connections (leases taken in the old generation end there and still count).
TEST(BalancerTest, AReloadWithTheSameServersKeepsTheirState) {
  auto g = Group(Balance::kLeastConn, 2);
  UpstreamBalancer old_gen(g, 0);
  old_gen.ReportFailure(0, 0);
  ServerLease held(&old_gen, 1);
  auto same = Group(Balance::kLeastConn, 2);
  UpstreamBalancer next(same, 0, &old_gen);
  EXPECT_TRUE(next.IsDown(0, 1));
  EXPECT_EQ(next.active(1), 1u);
  { ServerLease ended = std::move(held); }
  EXPECT_EQ(next.active(1), 0u);
  // Other servers, or other rules for marking them: a fresh start.
  auto other = Group(Balance::kLeastConn, 3);
  UpstreamBalancer fresh(other, 0, &next);
  EXPECT_FALSE(fresh.IsDown(0, 1));
  auto never_down = Group(Balance::kLeastConn, 2);
  never_down.max_fails = 0;
  UpstreamBalancer unmarked(never_down, 0, &next);
  EXPECT_FALSE(unmarked.IsDown(0, 1));
}

TEST(BalancerTest, ShardSeedSpreadsStartingPoints) {
  auto g = Group(Balance::kRoundRobin, 4);
  UpstreamBalancer b0(g, 0), b1(g, 1);
  EXPECT_NE(PlanOf(b0, "10.0.0.1:5", 0)[0], PlanOf(b1, "10.0.0.1:5", 0)[0]);
}

TEST(BalancerTest, IpHashIsStableAndIgnoresThePort) {
  auto g = Group(Balance::kIpHash, 5);
  UpstreamBalancer a(g, 0), b(g, 3);
  uint32_t first = PlanOf(a, "192.0.2.7:1000", 0)[0];
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(PlanOf(a, "192.0.2.7:" + std::to_string(2000 + i), 0)[0], first);
    EXPECT_EQ(PlanOf(b, "192.0.2.7:" + std::to_string(3000 + i), 0)[0], first);
  }
  // Different clients spread over the servers.
  std::map<uint32_t, int> hits;
  for (int i = 0; i < 500; ++i)
    hits[PlanOf(a, "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ":1",
                0)[0]]++;
  EXPECT_EQ(hits.size(), 5u);
  for (auto& [server, count] : hits) EXPECT_GT(count, 50) << server;
}

TEST(BalancerTest, IpHashIsZimbras) {
  // Zimbra's zmauth hash (seed 89, hash = (hash * 113 + byte) % 6271, server = hash % n),
  // so a client keeps the server Zimbra's own proxy sent it to.
  auto g5 = Group(Balance::kIpHash, 5);
  UpstreamBalancer b5(g5, 0);
  EXPECT_EQ(PlanOf(b5, "10.0.0.1:1", 0)[0], 0u);
  auto g7 = Group(Balance::kIpHash, 7);
  UpstreamBalancer b7(g7, 0);
  EXPECT_EQ(PlanOf(b7, "192.168.1.77:1", 0)[0], 2u);
  auto g4 = Group(Balance::kIpHash, 4);
  UpstreamBalancer b4(g4, 0);
  EXPECT_EQ(PlanOf(b4, "[2001:db8::1]:1", 0)[0], 0u);
  // A server that is down: the address is hashed again.
  b5.ReportFailure(0, 0);
  EXPECT_EQ(PlanOf(b5, "10.0.0.1:1", 0)[0], 1u);
}

TEST(BalancerTest, IpHashFailsOverAlongTheHashChain) {
  // 10.0.0.2 over 5 servers hashes to 1, then 3, then 0: a failed connect goes on to
  // where Zimbra's proxy sends the client next, the server it keeps once 1 is down.
  auto g = Group(Balance::kIpHash, 5);
  UpstreamBalancer b(g, 0);
  const std::vector<uint32_t> plan = PlanOf(b, "10.0.0.2:1", 0);
  ASSERT_EQ(plan.size(), 5u);
  EXPECT_EQ(plan[0], 1u);
  EXPECT_EQ(plan[1], 3u);
  EXPECT_EQ(plan[2], 0u);
  b.ReportFailure(1, 0);
  EXPECT_EQ(PlanOf(b, "10.0.0.2:1", 0)[0], plan[1]);
  EXPECT_EQ(PlanOf(b, "10.0.0.2:1", 0).size(), 4u);  // each live server once
}

TEST(BalancerTest, WeightedRoundRobinIsSmooth) {
  auto g = Group(Balance::kRoundRobin, 2);
  g.servers[0].weight = 3;
  UpstreamBalancer b(g, 0);
  std::vector<uint32_t> picks;
  for (int i = 0; i < 8; ++i) picks.push_back(PlanOf(b, "10.0.0.1:5", 0)[0]);
  EXPECT_EQ(picks, (std::vector<uint32_t>{0, 0, 1, 0, 0, 0, 1, 0}));
  // A server that is down takes no turns; its weight goes to the others.
  b.ReportFailure(0, 0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(PlanOf(b, "10.0.0.1:5", 0), (std::vector<uint32_t>{1}));
}

TEST(BalancerTest, LeastConnCountsLeasesPerWeight) {
  auto g = Group(Balance::kLeastConn, 3);
  g.servers[2].weight = 2;
  UpstreamBalancer b(g, 0);
  // Each new connection goes where the load per unit of weight is least.
  std::map<uint32_t, std::vector<ServerLease>> leases;
  for (int i = 0; i < 8; ++i) {
    const uint32_t pick = PlanOf(b, "10.0.0.1:5", 0)[0];
    leases[pick].emplace_back(&b, pick);
  }
  EXPECT_EQ(leases[0].size(), 2u);
  EXPECT_EQ(leases[1].size(), 2u);
  EXPECT_EQ(leases[2].size(), 4u);
  EXPECT_EQ(b.active(2), 4u);
  // Server 1's connections end: it has the least load and is picked next.
  leases[1].clear();
  EXPECT_EQ(b.active(1), 0u);
  EXPECT_EQ(PlanOf(b, "10.0.0.1:5", 0)[0], 1u);
  leases.clear();
  EXPECT_EQ(b.active(0) + b.active(1) + b.active(2), 0u);
}

TEST(BalancerTest, LeastConnBreaksTiesByWeight) {
  // Nothing overlaps (every server at 0 connections): the weights decide, 3 to 1.
  auto g = Group(Balance::kLeastConn, 2);
  g.servers[0].weight = 3;
  UpstreamBalancer b(g, 0);
  int first = 0;
  for (int i = 0; i < 8; ++i) first += PlanOf(b, "10.0.0.1:5", 0)[0] == 0 ? 1 : 0;
  EXPECT_EQ(first, 6);
}

TEST(BalancerTest, PlanFromTakesNoTurn) {
  auto g = Group(Balance::kRoundRobin, 3);
  UpstreamBalancer b(g, 0);
  uint32_t out[8];
  EXPECT_EQ(PlanOf(b, "10.0.0.1:5", 0)[0], 0u);
  ASSERT_EQ(b.PlanFrom(2, 0, out), 3u);
  EXPECT_EQ(std::vector<uint32_t>(out, out + 3), (std::vector<uint32_t>{2, 0, 1}));
  EXPECT_EQ(PlanOf(b, "10.0.0.1:5", 0)[0], 1u);  // the turn after 0, as if no pin came
  b.ReportFailure(0, 0);
  ASSERT_EQ(b.PlanFrom(2, 0, out), 2u);
  EXPECT_EQ(std::vector<uint32_t>(out, out + 2), (std::vector<uint32_t>{2, 1}));
}

TEST(BalancerTest, FailedServerIsSkippedForFailTimeout) {
  auto g = Group(Balance::kRoundRobin, 3);
  UpstreamBalancer b(g, 0);
  const int64_t t0 = 1'000'000'000;
  b.ReportFailure(1, t0);
  EXPECT_TRUE(b.IsDown(1, t0));
  EXPECT_EQ(PlanOf(b, "10.0.0.1:5", t0), (std::vector<uint32_t>{0, 2}));
  // After fail_timeout_ms it is back.
  EXPECT_EQ(PlanOf(b, "10.0.0.1:5", t0 + 1'000'000'001).size(), 3u);
  b.ReportSuccess(1);
  EXPECT_FALSE(b.IsDown(1, t0));
}

TEST(BalancerTest, MaxFailsCountsConsecutiveFailures) {
  auto g = Group(Balance::kRoundRobin, 2);
  g.max_fails = 3;
  UpstreamBalancer b(g, 0);
  b.ReportFailure(0, 0);
  b.ReportFailure(0, 0);
  EXPECT_FALSE(b.IsDown(0, 0));
  b.ReportSuccess(0);
  b.ReportFailure(0, 0);
  b.ReportFailure(0, 0);
  EXPECT_FALSE(b.IsDown(0, 0));
  b.ReportFailure(0, 0);
  EXPECT_TRUE(b.IsDown(0, 0));
}

TEST(BalancerTest, WhenAllAreDownAllAreTried) {
  auto g = Group(Balance::kRoundRobin, 2);
  UpstreamBalancer b(g, 0);
  b.ReportFailure(0, 0);
  b.ReportFailure(1, 0);
  EXPECT_EQ(PlanOf(b, "10.0.0.1:5", 0).size(), 2u);
}

TEST(BalancerTest, MaxFailsZeroNeverMarksDown) {
  auto g = Group(Balance::kRoundRobin, 2);
  g.max_fails = 0;
  UpstreamBalancer b(g, 0);
  for (int i = 0; i < 10; ++i) b.ReportFailure(0, 0);
  EXPECT_FALSE(b.IsDown(0, 0));
}

TEST(UpstreamPlanTest, PinFirstMovesTheServerUpOrMakesRoomInAFullPlan) {
  UpstreamPlan plan;
  plan.size = 4;
  for (uint32_t i = 0; i < 4; ++i) plan.servers[i] = 10 + i;
  PinFirst(&plan, 12);
  EXPECT_EQ(std::vector<uint32_t>(plan.servers, plan.servers + plan.size),
            (std::vector<uint32_t>{12, 10, 11, 13}));
  PinFirst(&plan, 99);
  EXPECT_EQ(std::vector<uint32_t>(plan.servers, plan.servers + plan.size),
            (std::vector<uint32_t>{99, 12, 10, 11, 13}));
  // Full, without the pin: the last entry goes, nothing is written past the array.
  plan.size = std::size(plan.servers);
  for (uint32_t i = 0; i < plan.size; ++i) plan.servers[i] = i;
  PinFirst(&plan, 1000);
  ASSERT_EQ(plan.size, std::size(plan.servers));
  EXPECT_EQ(plan.servers[0], 1000u);
  EXPECT_EQ(plan.servers[1], 0u);
  EXPECT_EQ(plan.servers[plan.size - 1], plan.size - 2);
}

}  // namespace
}  // namespace ringproxy
