// Runs a scenario on N threads, measures the target process, prints the result.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <thread>

#include "bench/loadgen/loadgen.h"
#include "bench/loadgen/procstat.h"
#include "bench/loadgen/tls_client.h"
#include "core/ops.h"
#include "core/shard.h"
#include "core/signals.h"
#include "core/status_util.h"
#include "fmt/format.h"

namespace ringproxy::loadgen {
namespace {

void SleepUntil(int64_t ns) {
  int64_t now = MonotonicNowNs();
  if (ns > now) std::this_thread::sleep_for(std::chrono::nanoseconds(ns - now));
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<int>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

struct Measured {
  double elapsed_s = 0;
  bool measured = false;
  ProcessUsage before;
  ProcessUsage after;  // idle: while held
};

// The figures both the JSON object and the summary line report, computed once.
struct Derived {
  double ops_per_s = 0;
  double mb_per_s = 0;
  double gib = 0;           // both directions
  double cpu_s = 0;         // the target's, when measured
  double rss_per_conn = 0;  // idle, when measured and connections opened
};

Derived Derive(const Stats& s, const Measured& m) {
  Derived d;
  const auto bytes = static_cast<double>(s.bytes_sent + s.bytes_received);
  if (m.elapsed_s > 0) {
    d.ops_per_s = static_cast<double>(s.ops) / m.elapsed_s;
    d.mb_per_s = bytes / m.elapsed_s / 1e6;
  }
  d.gib = bytes / (1 << 30);
  if (m.measured) {
    d.cpu_s = m.after.cpu_seconds - m.before.cpu_seconds;
    if (s.opened > 0) {
      d.rss_per_conn =
          (static_cast<double>(m.after.rss_bytes) - static_cast<double>(m.before.rss_bytes)) /
          static_cast<double>(s.opened);
    }
  }
  return d;
}

// "tls": what the handshakes were; resumed_fraction proves (or not) that --resume worked.
std::string TlsJson(const Options& o, const Stats& s) {
  const uint64_t handshakes = s.tls_full + s.tls_resumed;
  const char* version = "any";
  if (o.tls_version != 0) version = o.tls_version == 12 ? "1.2" : "1.3";
  std::string j = fmt::format(
      ",\"tls\":{{\"version\":\"{}\",\"resume\":{},\"sni\":{},\"verify\":{},\"handshakes\":{},"
      "\"full\":{},\"resumed\":{},\"resumed_fraction\":{:.4f},\"negotiated\":{{",
      version, o.resume, JsonString(o.sni), !o.ca_file.empty(), handshakes, s.tls_full,
      s.tls_resumed,
      handshakes > 0 ? static_cast<double>(s.tls_resumed) / static_cast<double>(handshakes) : 0.0);
  bool first = true;
  for (const auto& [what, n] : s.tls_negotiated) {
    j += fmt::format("{}{}:{}", first ? "" : ",", JsonString(what), n);
    first = false;
  }
  return j + "}}";
}

std::string ToJson(const Options& o, const Stats& s, const Measured& m) {
  const Derived d = Derive(s, m);
  std::string j = fmt::format(
      "{{\"scenario\":{},\"label\":{},\"target\":{},\"threads\":{},\"connections\":{},"
      "\"size\":{},\"rate\":{:.1f},\"elapsed_s\":{:.3f},\"ops\":{},\"ops_per_s\":{:.1f},\"bytes_"
      "sent\":{},"
      "\"bytes_received\":{},\"verified_bytes\":{},\"mb_per_s\":{:.2f},\"connects\":{},"
      "\"connect_failures\":{}",
      JsonString(o.scenario), JsonString(o.label), JsonString(o.target_text), o.threads,
      o.connections, o.size, o.rate, m.elapsed_s, s.ops, d.ops_per_s, s.bytes_sent,
      s.bytes_received, s.verified_bytes, d.mb_per_s, s.connects, s.connect_failures);
  if (s.latency_ns.count() > 0) {
    const Histogram& h = s.latency_ns;
    j += fmt::format(
        ",\"latency_us\":{{\"count\":{},\"mean\":{:.1f},\"min\":{:.1f},\"p50\":{:.1f},"
        "\"p90\":{:.1f},\"p99\":{:.1f},\"p999\":{:.1f},\"max\":{:.1f}}}",
        h.count(), h.mean() / 1e3, h.min() / 1e3, h.Quantile(0.5) / 1e3, h.Quantile(0.9) / 1e3,
        h.Quantile(0.99) / 1e3, h.Quantile(0.999) / 1e3, h.max() / 1e3);
  }
  if (o.scenario == "idle") {
    j += fmt::format(",\"opened\":{},\"closed_early\":{}", s.opened, s.closed_early);
  }
  if (o.tls) j += TlsJson(o, s);
  j += fmt::format(",\"errors_total\":{},\"errors\":{{", s.errors_total());
  bool first = true;
  for (const auto& [k, v] : s.errors) {
    j += fmt::format("{}{}:{}", first ? "" : ",", JsonString(k), v);
    first = false;
  }
  j += "}";
  if (m.measured) {
    j += fmt::format(
        ",\"target_pid\":{},\"target_cpu_s\":{:.3f},\"target_rss_before\":{},"
        "\"target_rss_after\":{}",
        o.measure_pid, d.cpu_s, m.before.rss_bytes, m.after.rss_bytes);
    if (d.gib > 0 && o.scenario != "idle")
      j += fmt::format(",\"target_cpu_s_per_gib\":{:.4f}", d.cpu_s / d.gib);
    if (s.ops > 0 && o.scenario != "idle") {
      j += fmt::format(",\"target_cpu_us_per_op\":{:.2f}",
                       d.cpu_s * 1e6 / static_cast<double>(s.ops));
    }
    if (o.scenario == "idle" && s.opened > 0) {
      j += fmt::format(",\"rss_per_conn\":{:.1f}", d.rss_per_conn);
    }
  }
  return j + "}";
}

std::string Summary(const Options& o, const Stats& s, const Measured& m) {
  const Derived d = Derive(s, m);
  std::string line = fmt::format("{} {}: {:.1f}s", o.scenario, o.target_text, m.elapsed_s);
  if (o.scenario == "bulk") {
    line += fmt::format(", {:.1f} MB/s ({} MB verified)", d.mb_per_s, s.verified_bytes / 1000000);
  } else if (o.scenario == "tcp-echo" || o.scenario == "http" || o.scenario == "imap-login" ||
             o.scenario == "pop3-login" || o.scenario == "tls-handshake") {
    line += fmt::format(", {:.0f} ops/s, p50 {:.1f} us, p99 {:.1f} us", d.ops_per_s,
                        s.latency_ns.Quantile(0.5) / 1e3, s.latency_ns.Quantile(0.99) / 1e3);
  } else if (o.scenario == "idle") {
    line +=
        fmt::format(", {} of {} open, {} closed early", s.opened, o.connections, s.closed_early);
  }
  if (o.tls) {
    line +=
        fmt::format(", {} TLS handshakes ({} resumed)", s.tls_full + s.tls_resumed, s.tls_resumed);
  }
  if (m.measured) {
    if (o.scenario == "idle") {
      if (s.opened > 0) line += fmt::format(", target RSS +{:.0f} B/conn", d.rss_per_conn);
    } else {
      line += fmt::format(", target CPU {:.2f}s", d.cpu_s);
      if (o.scenario == "bulk" && d.gib > 0)
        line += fmt::format(" ({:.3f} s/GiB)", d.cpu_s / d.gib);
      if (o.scenario != "bulk" && s.ops > 0)
        line += fmt::format(" ({:.1f} us/op)", d.cpu_s * 1e6 / static_cast<double>(s.ops));
    }
  }
  line += fmt::format(", {} errors", s.errors_total());
  for (const auto& [k, v] : s.errors) line += fmt::format(" [{} x{}]", k, v);
  return line;
}

// A thread's scenario with what --tls needs around it, made and freed on the thread
// (the buffer ring belongs to its reactor).
Task<void> RunThread(ThreadContext* ctx, ScenarioFn scenario) {
  std::unique_ptr<TlsClient> tls;
  if (ctx->options->tls) {
    absl::StatusOr<std::unique_ptr<TlsClient>> made =
        TlsClient::Create(*ctx->options, ctx->control->tls_context, ctx->connections);
    if (!made.ok()) {
      ctx->stats.Error(fmt::format("tls: {}", MessageOf(made.status())), 0);
      ctx->control->threads_ready.fetch_add(1);  // idle: the main thread waits for all
      co_return;
    }
    tls = *std::move(made);
    ctx->tls = tls.get();
  }
  // The measured window (the target's CPU, the elapsed time) opens at start_ns: no
  // operation may come before it. Servers and idle connections have no window yet.
  const Options& o = *ctx->options;
  if (!IsServer(o.scenario) && o.scenario != "idle" && MonotonicNowNs() < ctx->control->start_ns) {
    co_await Sleep(Deadline::AtNs(ctx->control->start_ns));
  }
  co_await scenario(ctx);
  ctx->tls = nullptr;
}

}  // namespace

ScenarioFn FindScenario(std::string_view name) {
  static constexpr std::pair<std::string_view, ScenarioFn> kScenarios[] = {
      {"bulk", RunBulk},
      {"tcp-echo", RunTcpEcho},
      {"idle", RunIdle},
      {"http", RunHttp},
      {"imap-login", RunImapLogin},
      {"pop3-login", RunPop3Login},
      {"serve", RunServe},
      {"imap-serve", RunImapServe},
      {"pop3-serve", RunPop3Serve},
      {"tls-handshake", RunTlsHandshake},
  };
  for (const auto& [n, fn] : kScenarios) {
    if (n == name) return fn;
  }
  return nullptr;
}

int RunLoadgen(const Options& o) {
  RunControl control;
  std::vector<std::unique_ptr<ThreadContext>> contexts;
  for (int i = 0; i < o.threads; ++i) {
    auto ctx = std::make_unique<ThreadContext>();
    ctx->options = &o;
    ctx->control = &control;
    ctx->index = i;
    ctx->connections = o.connections / o.threads + (i < o.connections % o.threads ? 1 : 0);
    ctx->count = o.count == 0
                     ? 0
                     : o.count / o.threads + (i < static_cast<int>(o.count % o.threads) ? 1 : 0);
    contexts.push_back(std::move(ctx));
  }
  const bool serve = IsServer(o.scenario);
  absl::StatusOr<SignalFd> signals = SignalFd::Create({SIGINT, SIGTERM});
  Measured m;
  control.start_ns = MonotonicNowNs() + 50'000'000;
  const bool timed = o.duration_s > 0 && o.scenario != "idle";
  control.end_ns = timed ? control.start_ns + static_cast<int64_t>(o.duration_s * 1e9)
                         : std::numeric_limits<int64_t>::max();
  if (o.measure_pid > 0) {
    m.measured = true;
    m.before = ReadUsage(o.measure_pid);
    if (m.before.processes == 0) {
      fprintf(stderr, "loadgen: no process %d to measure\n", o.measure_pid);
      return 1;
    }
  }
  if (o.tls) {
    absl::StatusOr<std::shared_ptr<const TlsClientContext>> tls = MakeTlsClientContext(o);
    if (!tls.ok()) {
      fprintf(stderr, "loadgen: %s\n", std::string(MessageOf(tls.status())).c_str());
      return 1;
    }
    control.tls_context = *std::move(tls);
  }
  const ScenarioFn scenario = FindScenario(o.scenario);  // checked by ParseOptions
  std::vector<std::unique_ptr<Shard>> threads;
  for (int i = 0; i < o.threads; ++i) {
    ThreadContext* ctx = contexts[static_cast<size_t>(i)].get();
    int cpu = o.cpus.empty() ? -1 : o.cpus[static_cast<size_t>(i) % o.cpus.size()];
    auto shard = Shard::Start(i, cpu, ReactorOptions{},
                              [ctx, scenario](Shard&) { return RunThread(ctx, scenario); });
    if (!shard.ok()) {
      fprintf(stderr, "loadgen: %s\n", std::string(MessageOf(shard.status())).c_str());
      control.stop = true;
      control.release = true;
      return 1;
    }
    threads.push_back(std::move(*shard));
  }
  if (serve) {
    while (control.threads_ready.load() < o.threads) usleep(1000);
    fprintf(stderr, "loadgen: %s on %s with %d threads\n",
            o.scenario == "serve" ? "echo server" : o.scenario.c_str(), o.listen_text.c_str(),
            o.threads);
    // Until SIGINT/SIGTERM, or for --duration seconds when one was given.
    const int64_t stop_at = o.duration_s > 0
                                ? MonotonicNowNs() + static_cast<int64_t>(o.duration_s * 1e9)
                                : std::numeric_limits<int64_t>::max();
    while (MonotonicNowNs() < stop_at) {
      if (signals.ok() && signals->ReadOne() != 0) break;
      usleep(20000);
    }
    control.stop = true;
  } else if (o.scenario == "idle") {
    const int64_t give_up =
        MonotonicNowNs() + static_cast<int64_t>((o.connect_timeout_s + o.io_timeout_s) * 1e9 *
                                                (1 + o.connections / std::max(o.batch, 1)));
    while (control.threads_ready.load() < o.threads && MonotonicNowNs() < give_up) usleep(10000);
    control.start_ns = MonotonicNowNs();
    // Let allocators and the target settle before reading its memory.
    usleep(1'000'000);
    if (m.measured) m.after = ReadUsage(o.measure_pid);
    SleepUntil(control.start_ns + static_cast<int64_t>(o.hold_s * 1e9));
    control.release = true;
  } else {
    SleepUntil(control.start_ns);
    if (m.measured) m.before = ReadUsage(o.measure_pid);
  }
  for (auto& t : threads) t->Join();
  int64_t finished = MonotonicNowNs();
  if (!serve && o.scenario != "idle") {
    if (m.measured) m.after = ReadUsage(o.measure_pid);
    m.elapsed_s = static_cast<double>(std::min(finished, control.end_ns) - control.start_ns) / 1e9;
  } else {
    m.elapsed_s = static_cast<double>(finished - control.start_ns) / 1e9;
  }
  Stats total;
  for (auto& ctx : contexts) total.Merge(ctx->stats);
  if (serve) {
    fprintf(stderr, "loadgen: %s served %lu connections\n",
            o.scenario == "serve" ? "echo server" : o.scenario.c_str(),
            static_cast<unsigned long>(total.connects));
    return total.errors_total() == 0 ? 0 : 3;
  }
  std::string json = ToJson(o, total, m);
  printf("%s\n", json.c_str());
  fflush(stdout);
  fprintf(stderr, "%s\n", Summary(o, total, m).c_str());
  if (!o.json_path.empty()) {
    FILE* f = fopen(o.json_path.c_str(), "a");
    if (f != nullptr) {
      fprintf(f, "%s\n", json.c_str());
      fclose(f);
    }
  }
  if (total.connects == 0) {
    fprintf(stderr, "loadgen: target %s unreachable (no connection succeeded)\n",
            o.target_text.c_str());
    return 1;
  }
  return total.errors_total() == 0 ? 0 : 3;
}

}  // namespace ringproxy::loadgen
