// The IMAP command parser on what a login costs it: a LOGIN with atoms, one with
// synchronising literals, an ID with a client's list, and a LOGIN arriving one byte per
// read (the worst split a client can send).
#include <string>
#include <string_view>

#include "benchmark/benchmark.h"
#include "proto/imap/command_parser.h"

namespace {

using ringproxy::imap::CommandParser;
using ringproxy::imap::Event;

void ParseAll(benchmark::State& state, std::string_view in, size_t piece) {
  CommandParser p;
  for (auto _ : state) {
    size_t commands = 0;
    for (size_t at = 0; at < in.size(); at += piece) {
      std::string_view chunk = in.substr(at, piece);
      for (;;) {
        auto r = p.Parse(chunk);
        chunk.remove_prefix(r.consumed);
        if (r.event == Event::kNeedMore) break;
        if (r.event == Event::kCommand) ++commands;
      }
    }
    benchmark::DoNotOptimize(commands);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * in.size()));
}

const std::string kLogin = "a001 LOGIN john.doe@example.com \"correct horse battery\"\r\n";
const std::string kLiteralLogin =
    "a001 LOGIN {20}\r\njohn.doe@example.com {21}\r\ncorrect horse battery\r\n";
const std::string kId =
    "a001 ID (\"name\" \"Thunderbird\" \"version\" \"115.3.1\" \"os\" \"Linux\")\r\n";

void BM_LoginAtoms(benchmark::State& s) { ParseAll(s, kLogin, kLogin.size()); }
void BM_LoginLiterals(benchmark::State& s) { ParseAll(s, kLiteralLogin, kLiteralLogin.size()); }
void BM_Id(benchmark::State& s) { ParseAll(s, kId, kId.size()); }
void BM_LoginOneBytePerRead(benchmark::State& s) { ParseAll(s, kLogin, 1); }

BENCHMARK(BM_LoginAtoms);
BENCHMARK(BM_LoginLiterals);
BENCHMARK(BM_Id);
BENCHMARK(BM_LoginOneBytePerRead);

}  // namespace

BENCHMARK_MAIN();
