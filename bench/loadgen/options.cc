#include <charconv>
#include <cstdlib>
#include <cstring>

#include "absl/status/status.h"
#include "bench/loadgen/loadgen.h"
#include "core/status_util.h"
#include "fmt/format.h"

namespace ringproxy::loadgen {

std::string Usage() {
  return "usage: loadgen SCENARIO [options]\n"
         "scenarios:\n"
         "  bulk      stream the verified pattern to an echo upstream through the target,\n"
         "            checking every byte that comes back (--size = send chunk)\n"
         "  tcp-echo  closed-loop request/response of --size bytes; latency per exchange\n"
         "  http      HTTP/1.1 requests (keep-alive, pipelining, open or closed loop)\n"
         "  imap-login  connect, greeting, LOGIN, LOGOUT; latency = connect to tagged OK\n"
         "  pop3-login  connect, greeting, USER, PASS, QUIT; latency = connect to PASS +OK\n"
         "  idle      open --connections, optionally exchange --send-first bytes, hold them\n"
         "            for --hold seconds; with --measure-pid reports RSS per connection\n"
         "  tls-handshake  connect, TLS handshake, echo one --size message (default 16),\n"
         "            close; one operation per handshake (implies --tls)\n"
         "  serve     run an echo server (splice) on --listen, for benchmarks and tests\n"
         "  imap-serve, pop3-serve  a scripted mail server on --listen that accepts every\n"
         "            login (the fast upstream of the mail benchmarks)\n"
         "options:\n"
         "  --target HOST:PORT      where to connect (all scenarios but serve)\n"
         "  --listen HOST:PORT      where to listen (serve)\n"
         "  --threads N             threads, one reactor each (default 1)\n"
         "  --cpus LIST             pin thread i to the i-th CPU of LIST, e.g. 0 or 2,3\n"
         "  --connections N         total connections (default 1)\n"
         "  --duration S            seconds of measured load (default 10)\n"
         "  --count N               stop after N operations in total\n"
         "  --size BYTES            chunk or message size (default 65536)\n"
         "  --hold S                idle: seconds to hold (default 5)\n"
         "  --batch N               idle: connects in flight at once (default 500)\n"
         "  --send-first BYTES      idle: bytes to exchange before holding (default 0)\n"
         "  --greeting              idle: read the server's greeting line before holding\n"
         "  --rate R                open loop: R operations/s in total; latency is measured\n"
         "                          from each operation's scheduled start (default: closed loop)\n"
         "  --connect-timeout S     (default 5)   --io-timeout S (default 10)\n"
         "TLS (bulk, tcp-echo, idle, tls-handshake, imap-login, pop3-login):\n"
         "  --tls                 TLS over each connection (no verification without --ca)\n"
         "  --tls-version V       1.2 or 1.3 only (default: both allowed)\n"
         "  --sni NAME            server name to send (and to verify with --ca)\n"
         "  --ca FILE             verify the target's certificate chain and name (needs --sni)\n"
         "  --resume              offer the session of the connection slot's previous handshake\n"
         "http:\n"
         "  --path P (default /)  --host H  --keepalive 0|1 (default 1)  --pipeline N (default 1)\n"
         "  --request-size N      POST a body of N bytes instead of GET\n"
         "  --expect-size N       check each response body is N bytes  --expect-status S (200)\n"
         "  --expect-fill TEXT    check each response body is TEXT repeated from its first byte\n"
         "imap-login, pop3-login:\n"
         "  --users FILE          lines \"user password\"; else --user U (user<n>, "
         "n=1..--users-count)\n"
         "                        and --password P (default secret)\n"
         "  --measure-pid PID       measure CPU and RSS of this process tree\n"
         "  --label TEXT            copied into the JSON result\n"
         "  --json FILE             also append the JSON result line to FILE\n";
}

namespace {

template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  if constexpr (std::is_floating_point_v<T>) {
    char* end = nullptr;
    std::string s(text);
    double v = strtod(s.c_str(), &end);
    if (end == s.c_str() || *end != '\0' || v < 0) return false;
    *out = static_cast<T>(v);
    return true;
  } else {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
    return ec == std::errc() && end == text.data() + text.size();
  }
}

absl::Status CheckTlsOptions(const Options& o) {
  if (!o.tls) {
    if (o.tls_version != 0 || !o.sni.empty() || !o.ca_file.empty() || o.resume) {
      return absl::InvalidArgumentError("--tls-version, --sni, --ca and --resume need --tls");
    }
    return absl::OkStatus();
  }
  if (o.scenario != "bulk" && o.scenario != "tcp-echo" && o.scenario != "idle" &&
      o.scenario != "tls-handshake" && o.scenario != "imap-login" && o.scenario != "pop3-login" &&
      o.scenario != "http") {
    return absl::InvalidArgumentError(fmt::format(
        "--tls is for bulk, tcp-echo, idle, tls-handshake, imap-login, pop3-login and http, "
        "not {}",
        o.scenario));
  }
  if (!o.ca_file.empty() && o.sni.empty()) {
    return absl::InvalidArgumentError("--ca needs --sni: the name the certificate must carry");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  Options o;
  if (argc < 2) return absl::InvalidArgumentError("no scenario given");
  o.scenario = argv[1];
  bool duration_given = false;
  bool size_given = false;
  if (FindScenario(o.scenario) == nullptr) {
    return absl::InvalidArgumentError(fmt::format("unknown scenario '{}'", o.scenario));
  }
  for (int i = 2; i < argc; ++i) {
    std::string_view flag = argv[i];
    // The options without a value.
    if (flag == "--tls" || flag == "--resume" || flag == "--greeting") {
      (flag == "--tls" ? o.tls : flag == "--resume" ? o.resume : o.greeting) = true;
      continue;
    }
    if (i + 1 >= argc) return absl::InvalidArgumentError(fmt::format("{} needs a value", flag));
    std::string_view value = argv[++i];
    bool ok = true;
    if (flag == "--target" || flag == "--listen") {
      absl::StatusOr<SocketAddress> a = SocketAddress::Parse(value);
      if (!a.ok())
        return absl::InvalidArgumentError(fmt::format("{}: {}", flag, MessageOf(a.status())));
      if (flag == "--target") {
        o.target = *a;
        o.target_text = std::string(value);
      } else {
        o.listen = *a;
        o.listen_text = std::string(value);
      }
    } else if (flag == "--threads") {
      ok = ParseNumber(value, &o.threads) && o.threads > 0 && o.threads <= 1024;
    } else if (flag == "--cpus") {
      std::string_view rest = value;
      while (ok && !rest.empty()) {
        size_t comma = rest.find(',');
        int cpu = 0;
        ok = ParseNumber(rest.substr(0, comma), &cpu);
        o.cpus.push_back(cpu);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
    } else if (flag == "--connections") {
      ok = ParseNumber(value, &o.connections) && o.connections > 0;
    } else if (flag == "--duration") {
      ok = ParseNumber(value, &o.duration_s);
      duration_given = true;
    } else if (flag == "--count") {
      ok = ParseNumber(value, &o.count);
    } else if (flag == "--size") {
      ok = ParseNumber(value, &o.size) && o.size > 0 && o.size <= (1 << 20);
      size_given = true;
    } else if (flag == "--hold") {
      ok = ParseNumber(value, &o.hold_s);
    } else if (flag == "--batch") {
      ok = ParseNumber(value, &o.batch) && o.batch > 0;
    } else if (flag == "--send-first") {
      ok = ParseNumber(value, &o.send_first) && o.send_first <= (1 << 20);
    } else if (flag == "--rate") {
      ok = ParseNumber(value, &o.rate);
    } else if (flag == "--tls-version") {
      ok = value == "1.2" || value == "1.3";
      o.tls_version = value == "1.2" ? 12 : 13;
    } else if (flag == "--sni") {
      o.sni = std::string(value);
      ok = !o.sni.empty();
    } else if (flag == "--ca") {
      o.ca_file = std::string(value);
      ok = !o.ca_file.empty();
    } else if (flag == "--path") {
      o.path = std::string(value);
      ok = !o.path.empty() && o.path[0] == '/';
    } else if (flag == "--host") {
      o.host = std::string(value);
    } else if (flag == "--keepalive") {
      ok = value == "0" || value == "1";
      o.keepalive = value == "1";
    } else if (flag == "--pipeline") {
      ok = ParseNumber(value, &o.pipeline) && o.pipeline >= 1 && o.pipeline <= 1024;
    } else if (flag == "--request-size") {
      ok = ParseNumber(value, &o.request_size) && o.request_size <= (64 << 20);
    } else if (flag == "--expect-size") {
      ok = ParseNumber(value, &o.expect_size) && o.expect_size >= -1;
    } else if (flag == "--expect-fill") {
      ok = !value.empty();
      o.expect_fill = std::string(value);
    } else if (flag == "--expect-status") {
      ok = ParseNumber(value, &o.expect_status) && o.expect_status >= 100 && o.expect_status <= 999;
    } else if (flag == "--users") {
      o.users_file = std::string(value);
    } else if (flag == "--user") {
      o.user = std::string(value);
      ok = !o.user.empty();
    } else if (flag == "--password") {
      o.password = std::string(value);
    } else if (flag == "--users-count") {
      ok = ParseNumber(value, &o.users_count) && o.users_count >= 1;
    } else if (flag == "--connect-timeout") {
      ok = ParseNumber(value, &o.connect_timeout_s) && o.connect_timeout_s > 0;
    } else if (flag == "--io-timeout") {
      ok = ParseNumber(value, &o.io_timeout_s) && o.io_timeout_s > 0;
    } else if (flag == "--measure-pid") {
      ok = ParseNumber(value, &o.measure_pid) && o.measure_pid > 0;
    } else if (flag == "--label") {
      o.label = std::string(value);
    } else if (flag == "--json") {
      o.json_path = std::string(value);
    } else {
      return absl::InvalidArgumentError(fmt::format("unknown option {}", flag));
    }
    if (!ok) return absl::InvalidArgumentError(fmt::format("bad value for {}: '{}'", flag, value));
  }
  if (IsServer(o.scenario)) {
    if (!duration_given) o.duration_s = 0;  // serve until a signal
    if (o.listen.size() == 0) {
      return absl::InvalidArgumentError(fmt::format("{} needs --listen HOST:PORT", o.scenario));
    }
  } else if (o.target.size() == 0) {
    return absl::InvalidArgumentError(fmt::format("{} needs --target HOST:PORT", o.scenario));
  }
  if (o.duration_s <= 0 && o.count == 0 && o.scenario != "idle" && !IsServer(o.scenario)) {
    return absl::InvalidArgumentError("give --duration > 0 or --count > 0");
  }
  if (o.rate > 0 && o.pipeline > 1) {
    return absl::InvalidArgumentError("--rate (open loop) and --pipeline > 1 do not mix");
  }
  if (o.greeting && o.scenario != "idle") {
    return absl::InvalidArgumentError("--greeting is for idle");
  }
  if (o.host.empty()) o.host = o.target_text;
  if (o.scenario == "tls-handshake") {
    o.tls = true;
    if (!size_given) o.size = 16;
  }
  if (absl::Status s = CheckTlsOptions(o); !s.ok()) return s;
  if (!o.users_file.empty()) {
    FILE* f = fopen(o.users_file.c_str(), "r");
    if (f == nullptr) {
      return absl::InvalidArgumentError(
          fmt::format("--users {}: {}", o.users_file, strerror(errno)));
    }
    char line[1024];
    while (fgets(line, sizeof(line), f) != nullptr) {
      std::string_view l(line);
      while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.remove_suffix(1);
      if (l.empty() || l[0] == '#') continue;
      size_t sp = l.find_first_of(" \t");
      if (sp == std::string_view::npos) {
        o.users.emplace_back(std::string(l), o.password);
      } else {
        std::string_view pass = l.substr(sp + 1);
        while (!pass.empty() && (pass[0] == ' ' || pass[0] == '\t')) pass.remove_prefix(1);
        o.users.emplace_back(std::string(l.substr(0, sp)), std::string(pass));
      }
    }
    fclose(f);
    if (o.users.empty()) {
      return absl::InvalidArgumentError(fmt::format("--users {}: no users in it", o.users_file));
    }
  }
  return o;
}

void Stats::Error(std::string_view what, int err) {
  std::string key = err != 0 ? fmt::format("{}: {}", what, strerror(err)) : std::string(what);
  // A misbehaving target can produce endless distinct texts: keep the map bounded.
  constexpr size_t kMaxKinds = 50;
  if (errors.size() >= kMaxKinds && errors.count(key) == 0) key = "other errors";
  ++errors[key];
}

void Stats::Merge(const Stats& o) {
  ops += o.ops;
  bytes_sent += o.bytes_sent;
  bytes_received += o.bytes_received;
  connects += o.connects;
  connect_failures += o.connect_failures;
  verified_bytes += o.verified_bytes;
  latency_ns.Merge(o.latency_ns);
  for (const auto& [k, v] : o.errors) errors[k] += v;
  opened += o.opened;
  closed_early += o.closed_early;
  tls_full += o.tls_full;
  tls_resumed += o.tls_resumed;
  for (const auto& [k, v] : o.tls_negotiated) tls_negotiated[k] += v;
}

uint64_t Stats::errors_total() const {
  uint64_t n = 0;
  for (const auto& [k, v] : errors) n += v;
  return n;
}

}  // namespace ringproxy::loadgen
