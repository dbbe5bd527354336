// lookupd: the reference route lookup service (docs/lookupd.md). A thin main over
// route/lookup_service.h and route/lookup_server.h.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/shard.h"
#include "core/signals.h"
#include "core/socket.h"
#include "core/status_util.h"
#include "route/lookup_server.h"
#include "route/lookup_service.h"

namespace {

void Usage(FILE* out) {
  fprintf(out,
          "usage: lookupd --routes FILE [--listen HOST:PORT] [options]\n"
          "  --routes FILE        domains, servers and accounts (TOML, docs/lookupd.md)\n"
          "  --listen HOST:PORT   default 127.0.0.1:7072\n"
          "  --threads N          serving threads (default 1)\n"
          "  --latency-ms N       added to every answer (default 0)\n"
          "  --error-rate P       share of requests answered HTTP 500 (0..1, default 0)\n"
          "  --close              one request per connection (HTTP/1.0 style)\n"
          "  --request-log FILE   append one line per request\n"
          "  --max-connections N  open connections at most, all threads (default 1024)\n"
          "  --check              load the routes file, report, exit\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ringproxy;
  std::string routes, listen = "127.0.0.1:7072", request_log;
  int threads = 1;
  bool check = false;
  LookupServerOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        fprintf(stderr, "lookupd: %s needs a value\n", a.c_str());
        exit(2);
      }
      return argv[++i];
    };
    if (a == "--routes")
      routes = value();
    else if (a == "--listen")
      listen = value();
    else if (a == "--threads")
      threads = atoi(value());
    else if (a == "--latency-ms")
      options.latency_ms = atoll(value());
    else if (a == "--error-rate")
      options.error_rate = atof(value());
    else if (a == "--close")
      options.close_after_reply = true;
    else if (a == "--request-log")
      request_log = value();
    else if (a == "--max-connections")
      options.max_connections = atoll(value());
    else if (a == "--check")
      check = true;
    else if (a == "--help" || a == "-h") {
      Usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "lookupd: unknown argument '%s'\n", a.c_str());
      Usage(stderr);
      return 2;
    }
  }
  if (routes.empty() || threads < 1 || options.error_rate < 0 || options.error_rate > 1 ||
      options.latency_ms < 0 || options.max_connections < 1) {
    Usage(stderr);
    return 2;
  }
  auto directory = Directory::Load(routes);
  if (!directory.ok()) {
    fprintf(stderr, "lookupd: %s\n", std::string(MessageOf(directory.status())).c_str());
    return 1;
  }
  if (check) {
    printf("%s: ok (%zu domains, %zu servers, %zu accounts)\n", routes.c_str(),
           (*directory)->domains.size(), (*directory)->servers.size(),
           (*directory)->accounts.size());
    return 0;
  }
  auto address = SocketAddress::Parse(listen);
  if (!address.ok()) {
    fprintf(stderr, "lookupd: --listen: %s\n", std::string(MessageOf(address.status())).c_str());
    return 1;
  }
  options.listen = *address;
  if (!request_log.empty()) {
    options.request_log_fd =
        open(request_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (options.request_log_fd < 0) {
      fprintf(stderr, "lookupd: %s: %s\n", request_log.c_str(), strerror(errno));
      return 1;
    }
  }
  auto signals = SignalFd::Create({SIGTERM, SIGINT});
  if (!signals.ok()) return 1;
  // Every thread binds its own socket with SO_REUSEPORT, which would share an address
  // another lookupd holds, and a thread that cannot bind would leave the others serving
  // nothing: find out now.
  if (absl::Status free = CheckAddressFree(options.listen); !free.ok()) {
    fprintf(stderr, "lookupd: %s\n", std::string(MessageOf(free)).c_str());
    return 1;
  }
  LookupServerStats stats;
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<Shard>> shards;
  for (int i = 0; i < threads; ++i) {
    auto shard =
        Shard::Start(i, -1, ReactorOptions{}, [&options, &directory, &stats, &stop](Shard&) {
          return ServeLookups(&options, *directory, &stats, &stop);
        });
    if (!shard.ok()) {
      fprintf(stderr, "lookupd: %s\n", std::string(MessageOf(shard.status())).c_str());
      stop = true;
      return 1;
    }
    shards.push_back(std::move(*shard));
  }
  RP_LOG(kInfo, "lookupd: serving {} accounts on {} with {} threads", (*directory)->accounts.size(),
         listen, threads);
  for (;;) {
    pollfd pfd{signals->fd(), POLLIN, 0};
    if (poll(&pfd, 1, -1) > 0 && signals->ReadOne() != 0) break;  // else EINTR
  }
  stop = true;
  for (auto& s : shards) s->Join();
  RP_LOG(kInfo,
         "lookupd: stopped after {} requests ({} errors injected, {} bad requests, {} "
         "connections refused)",
         stats.requests.load(), stats.errors_injected.load(), stats.bad_requests.load(),
         stats.connections_refused.load());
  return 0;
}
