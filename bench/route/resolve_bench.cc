// Route resolutions per second on one core, in three regimes: per-core cache hit,
// memcached hit, lookup miss. Needs a memcached and a lookupd running (see
// bench/route/run_resolve_bench, which starts them on other CPUs). Reports wall-clock
// rate and this process's CPU time per resolution (getrusage), per regime.
//
//   route_resolve_bench --memcached 127.0.0.1:P --lookupd 127.0.0.1:Q [--count N]
//                       [--concurrency C] [--users U]
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "core/log.h"
#include "core/ops.h"
#include "core/reactor.h"
#include "core/sync.h"
#include "fmt/format.h"
#include "route/router.h"

namespace ringproxy {
namespace {

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Phase {
  std::string name;
  RouterOptions router;
  bool use_memcache;
};

Task<int> Worker(Router* router, int users, int count, int offset, Gate::Holder) {
  int failed = 0;
  for (int i = 0; i < count; ++i) {
    ResolveRequest r;
    r.login = fmt::format("user{}", (offset + i) % users + 1);
    r.protocol = "imap";
    r.client_ip = "198.51.100.7";
    r.local_ip = "127.0.0.1";
    ResolveResult res = co_await router->Resolve(std::move(r));
    if (res.status != ResolveStatus::kOk) ++failed;
  }
  co_return failed;
}

Task<int> Run(Router* router, int users, int count, int concurrency) {
  Gate gate;
  int failed = 0;
  auto one = [](Router* router, int users, int count, int offset, int* failed,
                Gate::Holder h) -> Task<void> {
    *failed += co_await Worker(router, users, count, offset, std::move(h));
  };
  for (int c = 0; c < concurrency; ++c) {
    Spawn(one(router, users, count / concurrency, c * 7919, &failed, gate.Enter()));
  }
  co_await gate.Wait();
  co_await router->Drain();
  co_return failed;
}

}  // namespace
}  // namespace ringproxy

int main(int argc, char** argv) {
  using namespace ringproxy;
  std::string memcached, lookupd;
  int count = 200000, concurrency = 64, users = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    if (f == "--memcached")
      memcached = argv[i + 1];
    else if (f == "--lookupd")
      lookupd = argv[i + 1];
    else if (f == "--count")
      count = atoi(argv[i + 1]);
    else if (f == "--concurrency")
      concurrency = atoi(argv[i + 1]);
    else if (f == "--users")
      users = atoi(argv[i + 1]);
  }
  if (memcached.empty() || lookupd.empty()) {
    fprintf(stderr, "usage: %s --memcached HOST:PORT --lookupd HOST:PORT [--count N]\n", argv[0]);
    return 2;
  }
  log::SetLevel(log::Level::kWarn);
  auto reactor = Reactor::Create(ReactorOptions{});
  if (!reactor.ok()) return 1;
  absl::StatusOr<CacheServer> server = ParseCacheServer(memcached);
  if (!server.ok()) {
    fprintf(stderr, "resolve_bench: --memcached %s: %s\n", memcached.c_str(),
            std::string(server.status().message()).c_str());
    return 2;
  }
  LookupHandler handler;
  handler.text = lookupd;
  handler.address = *SocketAddress::Parse(lookupd);

  RouterOptions local_hit;  // everything stays in the per-core cache after warm-up
  RouterOptions memcache_hit;
  memcache_hit.local_ttl_ms = 0;  // no per-core cache: every resolution asks memcached
  RouterOptions lookup_miss;
  lookup_miss.local_ttl_ms = 0;
  lookup_miss.caching = false;  // no memcached: every resolution asks lookupd
  const Phase phases[] = {{"per-core cache hit", local_hit, true},
                          {"memcached hit", memcache_hit, true},
                          {"lookup miss", lookup_miss, false}};
  printf("{\"results\": [");
  bool first = true;
  int total_failed = 0;
  for (const Phase& p : phases) {
    MemcacheOptions mo;
    mo.servers = {*server};
    MemcacheClient mc(mo);
    LookupOptions lo;
    lo.handlers = {handler};
    LookupClient lc(lo);
    Router router(p.router, p.use_memcache ? &mc : nullptr, &lc);
    // Warm-up: fills memcached (and the per-core cache where it is on).
    int failed = RunUntilComplete(**reactor, Run(&router, users, users * 2, 16));
    const int n = p.name == "lookup miss" ? count / 4 : count;
    const double cpu0 = CpuSeconds();
    const int64_t t0 = MonotonicNowNs();
    failed += RunUntilComplete(**reactor, Run(&router, users, n, concurrency));
    const double wall = static_cast<double>(MonotonicNowNs() - t0) / 1e9;
    const double cpu = CpuSeconds() - cpu0;
    RunUntilComplete(**reactor, mc.Close());
    lc.Close();
    fprintf(stderr,
            "%-20s %9.0f resolutions/s  %6.2f us CPU each  (%d failed, local %lu, "
            "memcached %lu, lookups %lu)\n",
            p.name.c_str(), n / wall, cpu * 1e6 / n, failed,
            static_cast<unsigned long>(router.stats().local_hits),
            static_cast<unsigned long>(router.stats().memcache_hits),
            static_cast<unsigned long>(router.stats().lookups));
    printf(
        "%s{\"phase\": \"%s\", \"resolutions_per_s\": %.0f, \"cpu_us_per_resolution\": %.2f, "
        "\"failed\": %d}",
        first ? "" : ", ", p.name.c_str(), n / wall, cpu * 1e6 / n, failed);
    first = false;
    total_failed += failed;
  }
  printf("]}\n");
  return total_failed == 0 ? 0 : 1;
}
