#include <benchmark/benchmark.h>

#include "route/balancer.h"

namespace ringproxy {
namespace {

UpstreamGroupConfig Group(Balance balance, int n) {
  UpstreamGroupConfig g;
  g.balance = balance;
  for (int i = 0; i < n; ++i) {
    std::string text = "10.0.0." + std::to_string(i + 1) + ":143";
    g.servers.push_back({text, *SocketAddress::Parse(text), 1, ""});
  }
  return g;
}

void BM_Plan(benchmark::State& state, Balance balance) {
  auto g = Group(balance, static_cast<int>(state.range(0)));
  UpstreamBalancer b(g, 0);
  auto client = *SocketAddress::Parse("192.0.2.55:40000");
  uint32_t out[64];
  for (auto _ : state) benchmark::DoNotOptimize(b.Plan(client, 1, out));
}
BENCHMARK_CAPTURE(BM_Plan, round_robin, Balance::kRoundRobin)->Arg(2)->Arg(16);
BENCHMARK_CAPTURE(BM_Plan, ip_hash, Balance::kIpHash)->Arg(2)->Arg(16);

}  // namespace
}  // namespace ringproxy

BENCHMARK_MAIN();
