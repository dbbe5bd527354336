// The memcached binary codec and key placement: what a route resolution pays before
// and after its memcached round trip.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "cache/memcache_codec.h"
#include "cache/placement.h"

namespace ringproxy::memcache {
namespace {

constexpr std::string_view kKey = "route:proto=imap;user=john.doe@example.com";

void BM_EncodeGetK(benchmark::State& state) {
  std::string out;
  for (auto _ : state) {
    out.clear();
    EncodeGet(Opcode::kGetK, kKey, 42, &out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_EncodeGetK);

void BM_EncodeIncrement(benchmark::State& state) {
  std::string out;
  for (auto _ : state) {
    out.clear();
    EncodeCounter(Opcode::kIncrement, "throttle:proto=i,ip=198.51.100.7", 1, 1, 3600, 7, &out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_EncodeIncrement);

// A GETK hit carrying a route value, as the client reads it.
void BM_ParseGetKHit(benchmark::State& state) {
  Message m;
  m.magic = kResponseMagic;
  m.opcode = Opcode::kGetK;
  m.opaque = 42;
  static constexpr char kFlags[4] = {0, 0, 0, 0};
  m.extras = std::string_view(kFlags, 4);
  m.key = kKey;
  m.value = "10.0.0.17:7143";
  std::string wire;
  EncodeResponse(m, &wire);
  const Limits limits;
  for (auto _ : state) {
    ParseResult r = ParseResponse(wire, limits);
    benchmark::DoNotOptimize(r.message.value.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(BM_ParseGetKHit);

// 64 pipelined responses in one buffer, parsed back to back.
void BM_ParsePipelined(benchmark::State& state) {
  std::string wire;
  for (uint32_t i = 0; i < 64; ++i) {
    Message m;
    m.magic = kResponseMagic;
    m.opcode = Opcode::kGetK;
    m.opaque = i;
    m.status_or_vbucket = i % 2 ? 0 : static_cast<uint16_t>(Status::kKeyNotFound);
    m.key = kKey;
    if (i % 2) m.value = "10.0.0.17:7143";
    EncodeResponse(m, &wire);
  }
  const Limits limits;
  for (auto _ : state) {
    std::string_view rest = wire;
    while (!rest.empty()) {
      ParseResult r = ParseResponse(rest, limits);
      benchmark::DoNotOptimize(r.message.opaque);
      rest.remove_prefix(r.consumed);
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * 64));
}
BENCHMARK(BM_ParsePipelined);

void BM_NormalizeLongKey(benchmark::State& state) {
  const std::string key = "route:proto=imap;user=" + std::string(300, 'a') + "@example.com";
  for (auto _ : state) benchmark::DoNotOptimize(NormalizeKey(key));
}
BENCHMARK(BM_NormalizeLongKey);

void BM_Placement(benchmark::State& state, Distribution d) {
  std::vector<CacheServer> servers;
  for (int i = 0; i < state.range(0); ++i) {
    CacheServer s;
    s.host = "10.0.0." + std::to_string(i + 1);
    s.text = s.host + ":11211";
    servers.push_back(s);
  }
  KeyPlacement placement(servers, d);
  for (auto _ : state) {
    benchmark::DoNotOptimize(placement.Pick(kKey, [](size_t) { return true; }));
  }
}
BENCHMARK_CAPTURE(BM_Placement, ketama, Distribution::kKetama)->Arg(2)->Arg(16);
BENCHMARK_CAPTURE(BM_Placement, zimbra, Distribution::kZimbra)->Arg(2)->Arg(16);

}  // namespace
}  // namespace ringproxy::memcache

BENCHMARK_MAIN();
