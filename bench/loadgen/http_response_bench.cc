#include <benchmark/benchmark.h>

#include <string>

#include "bench/loadgen/http_response.h"

namespace ringproxy::loadgen {
namespace {

void BM_ReadResponse(benchmark::State& state, bool chunked) {
  std::string body(1024, 'x');
  std::string r = chunked ? "HTTP/1.1 200 OK\r\nServer: nginx\r\nTransfer-Encoding: chunked\r\n"
                            "Content-Type: text/plain\r\n\r\n400\r\n" +
                                body + "\r\n0\r\n\r\n"
                          : "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 1024\r\n"
                            "Content-Type: text/plain\r\nConnection: keep-alive\r\n\r\n" +
                                body;
  HttpResponseReader reader;
  for (auto _ : state) {
    reader.Reset();
    benchmark::DoNotOptimize(reader.Feed(r));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * r.size()));
}
BENCHMARK_CAPTURE(BM_ReadResponse, content_length, false);
BENCHMARK_CAPTURE(BM_ReadResponse, chunked, true);

}  // namespace
}  // namespace ringproxy::loadgen

BENCHMARK_MAIN();
