// The HTTP/1.x head parsers and chunked decoder (proto/http/head.h) on typical traffic:
// a browser's request head (about 700 bytes, 13 fields) whole and arriving in 3 reads,
// an origin's response head, and a 64 KiB chunked body in 4 KiB chunks.
#include <string>

#include "benchmark/benchmark.h"
#include "proto/http/head.h"

namespace ringproxy::http {
namespace {

const std::string kRequest =
    "GET /service/home/~/?auth=co&loc=en_US&fmt=json HTTP/1.1\r\n"
    "Host: mail.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Referer: https://mail.example.com/\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: ZM_TEST=true; ZM_AUTH_TOKEN=0_5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b_69643d33363a"
    "61626364656667682d313233342d353637382d393031322d3334353637383930616263643b\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Priority: u=0, i\r\n\r\n";

const std::string kResponse =
    "HTTP/1.1 200 OK\r\nDate: Wed, 02 Dec 2026 12:00:00 GMT\r\n"
    "Content-Type: application/json;charset=utf-8\r\nContent-Length: 1024\r\n"
    "Cache-Control: no-store, no-cache\r\nX-Frame-Options: SAMEORIGIN\r\n"
    "Strict-Transport-Security: max-age=31536000\r\n\r\n";

void BM_RequestHead(benchmark::State& state) {
  RequestParser parser;
  RequestHead head;
  for (auto _ : state) {
    parser.Reset();
    benchmark::DoNotOptimize(parser.Parse(kRequest, &head));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRequest.size()));
}
BENCHMARK(BM_RequestHead);

void BM_RequestHeadInThreeReads(benchmark::State& state) {
  RequestParser parser;
  RequestHead head;
  const size_t third = kRequest.size() / 3;
  for (auto _ : state) {
    parser.Reset();
    benchmark::DoNotOptimize(parser.Parse(std::string_view(kRequest).substr(0, third), &head));
    benchmark::DoNotOptimize(parser.Parse(std::string_view(kRequest).substr(0, 2 * third), &head));
    benchmark::DoNotOptimize(parser.Parse(kRequest, &head));
  }
}
BENCHMARK(BM_RequestHeadInThreeReads);

void BM_ResponseHead(benchmark::State& state) {
  ResponseParser parser;
  ResponseHead head;
  for (auto _ : state) {
    parser.Reset();
    benchmark::DoNotOptimize(parser.Parse(kResponse, false, &head));
  }
}
BENCHMARK(BM_ResponseHead);

void BM_Chunked64KiB(benchmark::State& state) {
  std::string body;
  for (int i = 0; i < 16; ++i) body += "1000;ext=1\r\n" + std::string(4096, 'x') + "\r\n";
  body += "0\r\n\r\n";
  for (auto _ : state) {
    ChunkedDecoder d;
    std::string_view in = body;
    uint64_t bytes = 0;
    while (!in.empty() && !d.done()) {
      ChunkedDecoder::Step s = d.Next(in);
      bytes += s.data.size();
      in.remove_prefix(s.consumed);
    }
    benchmark::DoNotOptimize(bytes);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_Chunked64KiB);

}  // namespace
}  // namespace ringproxy::http

BENCHMARK_MAIN();
