// Zimbra's memcached keys and route values: built or parsed once per resolution.
#include <benchmark/benchmark.h>

#include <string>

#include "route/keys.h"

namespace ringproxy::keys {
namespace {

void BM_MailAliasKey(benchmark::State& state) {
  for (auto _ : state) {
    std::string k = MailAlias("john.doe@example.com", "10.0.0.1");
    benchmark::DoNotOptimize(k.data());
  }
}
BENCHMARK(BM_MailAliasKey);

void BM_RouteByUserKey(benchmark::State& state) {
  for (auto _ : state) {
    std::string k = RouteByUser("imap", "john.doe@example.com");
    benchmark::DoNotOptimize(k.data());
  }
}
BENCHMARK(BM_RouteByUserKey);

void BM_UserThrottleKey(benchmark::State& state) {
  for (auto _ : state) {
    std::string k = UserThrottle("john doe%1@example.com");  // two bytes to escape
    benchmark::DoNotOptimize(k.data());
  }
}
BENCHMARK(BM_UserThrottleKey);

void BM_ParseRouteValue(benchmark::State& state) {
  const std::string value = state.range(0) == 4 ? "10.0.0.17:7143" : "[2001:db8::17]:7143";
  std::string host;
  uint16_t port = 0;
  for (auto _ : state) {
    bool ok = ParseRouteValue(value, &host, &port);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(host.data());
  }
}
BENCHMARK(BM_ParseRouteValue)->Arg(4)->Arg(6);

}  // namespace
}  // namespace ringproxy::keys

BENCHMARK_MAIN();
