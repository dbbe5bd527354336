// The lookup protocol codec: writing a request, reading and interpreting an answer (the
// proxy's side), and parsing a request (lookupd's side).
#include <benchmark/benchmark.h>

#include <string>

#include "route/lookup_codec.h"

namespace ringproxy::lookup {
namespace {

Request MailRequest() {
  Request r;
  r.user = "john doe@example.com";
  r.protocol = "imap";
  r.client_ip = "198.51.100.7";
  r.proxy_ip = "10.0.0.1";
  return r;
}

void BM_WriteRequest(benchmark::State& state) {
  const Request r = MailRequest();
  std::string out;
  for (auto _ : state) {
    out.clear();
    if (WriteRequest(r, "10.0.0.5:7072", kDefaultPath, true, &out) != RequestError::kNone) {
      state.SkipWithError("request refused");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_WriteRequest);

void BM_ReadAnswer(benchmark::State& state) {
  const std::string wire =
      "HTTP/1.1 200 OK\r\nDate: Sun, 22 Nov 2026 10:00:00 GMT\r\nAuth-Status: OK\r\n"
      "Auth-Server: 10.0.0.17\r\nAuth-Port: 7143\r\nAuth-Cache-Alias: TRUE\r\n"
      "Auth-User: john.doe@example.com\r\nContent-Length: 0\r\n\r\n";
  for (auto _ : state) {
    ParsedResponse p = ParseResponse(wire);
    Answer a = Interpret(p);
    benchmark::DoNotOptimize(a.port);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(BM_ReadAnswer);

void BM_ParseRequest(benchmark::State& state) {
  std::string wire;
  if (WriteRequest(MailRequest(), "10.0.0.5:7072", kDefaultPath, true, &wire) !=
      RequestError::kNone) {
    state.SkipWithError("request refused");
    return;
  }
  for (auto _ : state) {
    ParsedRequest p = ParseRequest(wire);
    benchmark::DoNotOptimize(p.Find("Auth-User").data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(BM_ParseRequest);

void BM_EscapeUnescape(benchmark::State& state) {
  std::string back;
  for (auto _ : state) {
    std::string e = EscapeMailAuth("john doe%x@example.com");
    benchmark::DoNotOptimize(UnescapeMailAuth(e, &back));
  }
}
BENCHMARK(BM_EscapeUnescape);

}  // namespace
}  // namespace ringproxy::lookup

BENCHMARK_MAIN();
