// Helpers for tests that drive the runtime over real loopback sockets.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

#include "core/reactor.h"
#include "core/socket.h"
#include "gtest/gtest.h"

namespace ringproxy::testing {

inline std::unique_ptr<Reactor> MakeReactor(bool defer_taskrun = true) {
  ReactorOptions options;
  options.defer_taskrun = defer_taskrun;
  options.single_issuer = defer_taskrun;
  auto r = Reactor::Create(options);
  if (!r.ok()) {
    ADD_FAILURE() << "Reactor::Create: " << std::string(r.status().message());
    return nullptr;
  }
  return std::move(*r);
}

// A loopback listener on an ephemeral port (blocking, for test plumbing).
inline UniqueFd ListenLoopback(uint16_t* port) {
  auto addr = SocketAddress::Parse("127.0.0.1:0");
  auto fd = ListenTcp(*addr, ListenOptions{128, false});
  EXPECT_TRUE(fd.ok());
  *port = LocalPort(fd->get());
  return std::move(*fd);
}

// A blocking connection to 127.0.0.1:port.
inline UniqueFd ConnectLoopback(uint16_t port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  return fd;
}

// A connected TCP pair (client, server) over loopback, both non-blocking.
inline std::pair<UniqueFd, UniqueFd> TcpPair() {
  uint16_t port = 0;
  UniqueFd listener = ListenLoopback(&port);
  UniqueFd client = ConnectLoopback(port);
  int fl = fcntl(listener.get(), F_GETFL);
  fcntl(listener.get(), F_SETFL, fl & ~O_NONBLOCK);
  UniqueFd server(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(server.valid());
  for (int fd : {client.get(), server.get()}) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  return {std::move(client), std::move(server)};
}

inline void SetBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK); }

// Blocking helpers for the peer side of a test (run in a plain thread).
inline bool WriteAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

inline std::string ReadToEof(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace ringproxy::testing
