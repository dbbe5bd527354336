#include "core/socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "absl/status/status.h"
#include "core/ops.h"
#include "fmt/format.h"

namespace ringproxy {

absl::StatusOr<SocketAddress> SocketAddress::Parse(std::string_view text, uint16_t min_port) {
  absl::StatusOr<std::vector<SocketAddress>> all = ParseAll(text, min_port);
  if (!all.ok()) return all.status();
  if (all->size() > 1) {
    std::string list;
    for (const SocketAddress& a : *all) list += (list.empty() ? "" : ", ") + a.HostString();
    return absl::InvalidArgumentError(
        fmt::format("bad address '{}': the name has {} addresses ({}); write the one to use", text,
                    all->size(), list));
  }
  return all->front();
}

absl::StatusOr<std::vector<SocketAddress>> SocketAddress::ParseAll(std::string_view text,
                                                                   uint16_t min_port) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return absl::InvalidArgumentError(
          fmt::format("bad address '{}': expected [ipv6]:port", text));
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return absl::InvalidArgumentError(fmt::format("bad address '{}': expected host:port", text));
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return absl::InvalidArgumentError(
          fmt::format("bad address '{}': write IPv6 addresses as [addr]:port", text));
    }
  }
  uint32_t port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535 ||
      port < min_port) {
    return absl::InvalidArgumentError(
        fmt::format("bad address '{}': port must be {}..65535", text, min_port));
  }
  if (host.empty()) {
    return absl::InvalidArgumentError(fmt::format("bad address '{}': empty host", text));
  }
  if (std::optional<SocketAddress> literal = FromNumeric(host, static_cast<uint16_t>(port))) {
    return std::vector<SocketAddress>{*literal};
  }
  std::string host_str(host);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host_str.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    return absl::InvalidArgumentError(
        fmt::format("bad address '{}': cannot resolve '{}': {}", text, host, gai_strerror(rc)));
  }
  std::vector<SocketAddress> out;
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
        ai->ai_addrlen > sizeof(Storage)) {
      continue;
    }
    SocketAddress a = FromSockaddr(ai->ai_addr, ai->ai_addrlen);
    a.set_port(static_cast<uint16_t>(port));
    const bool seen = std::any_of(out.begin(), out.end(), [&](const SocketAddress& b) {
      return b.size() == a.size() && memcmp(b.get(), a.get(), a.size()) == 0;
    });
    if (!seen) out.push_back(a);
  }
  freeaddrinfo(res);
  if (out.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("bad address '{}': '{}' has no IPv4 or IPv6 address", text, host));
  }
  return out;
}

SocketAddress SocketAddress::FromSockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress out;
  if (len > sizeof(out.storage_)) len = sizeof(out.storage_);
  memcpy(&out.storage_, sa, len);
  out.size_ = len;
  return out;
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

std::span<const uint8_t> SocketAddress::host_bytes() const {
  if (family() == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&storage_);
    return {reinterpret_cast<const uint8_t*>(&a->sin_addr), 4};
  }
  if (family() == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&storage_);
    return {reinterpret_cast<const uint8_t*>(&a->sin6_addr), 16};
  }
  return {};
}

void SocketAddress::set_port(uint16_t port) {
  if (family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  } else if (family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
  }
}

std::string SocketAddress::HostString() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family() == AF_INET) {
    // By hand: glibc's inet_ntop formats IPv4 with sprintf, a cost per connection.
    const auto* a = reinterpret_cast<const uint8_t*>(
        &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr);
    char* p = buf;
    for (int i = 0; i < 4; ++i) {
      const unsigned v = a[i];
      if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
      if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
      *p++ = static_cast<char>('0' + v % 10);
      if (i < 3) *p++ = '.';
    }
    return std::string(buf, static_cast<size_t>(p - buf));
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
              sizeof(buf));
  } else {
    return "unknown";
  }
  return buf;
}

std::string SocketAddress::ToString() const {
  if (family() == AF_INET) return fmt::format("{}:{}", HostString(), port());
  if (family() == AF_INET6) return fmt::format("[{}]:{}", HostString(), port());
  return "unknown";
}

std::optional<SocketAddress> SocketAddress::FromNumeric(std::string_view host, uint16_t port) {
  SocketAddress out;
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage_);
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.size_ = sizeof(sockaddr_in);
    return out;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
  memset(&out.storage_, 0, sizeof(out.storage_));
  if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out.size_ = sizeof(sockaddr_in6);
    return out;
  }
  return std::nullopt;
}

void SocketAddress::UnmapV4() {
  if (family() != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&storage_.in6.sin6_addr)) return;
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  v4.sin_port = storage_.in6.sin6_port;
  std::memcpy(&v4.sin_addr, storage_.in6.sin6_addr.s6_addr + 12, 4);
  storage_ = Storage{};
  storage_.in4 = v4;
  size_ = sizeof(sockaddr_in);
}

bool SocketAddress::operator==(const SocketAddress& o) const {
  return size_ == o.size_ && family() == o.family() && port() == o.port() &&
         std::equal(host_bytes().begin(), host_bytes().end(), o.host_bytes().begin(),
                    o.host_bytes().end());
}

absl::Status CheckAddressFree(const SocketAddress& address) {
  UniqueFd fd(socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::InternalError(fmt::format("socket(): {}", strerror(errno)));
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // TIME_WAIT is no owner
  if (bind(fd.get(), address.get(), address.size()) != 0) {
    return absl::UnavailableError(fmt::format("cannot bind {}: {}{}", address.ToString(),
                                              strerror(errno),
                                              errno == EADDRINUSE ? " (another process?)" : ""));
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> ListenTcp(const SocketAddress& address, const ListenOptions& options) {
  UniqueFd fd(socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return absl::InternalError(fmt::format("socket(): {}", strerror(errno)));
  }
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (options.reuse_port &&
      setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return absl::InternalError(fmt::format("setsockopt(SO_REUSEPORT): {}", strerror(errno)));
  }
  // Accepted sockets inherit TCP_NODELAY: proxied protocols are request/response.
  SetNoDelay(fd.get());
  if (options.send_buffer > 0 && setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &options.send_buffer,
                                            sizeof(options.send_buffer)) != 0) {
    return absl::InternalError(fmt::format("setsockopt(SO_SNDBUF): {}", strerror(errno)));
  }
  if (bind(fd.get(), address.get(), address.size()) != 0) {
    return absl::UnavailableError(
        fmt::format("cannot bind {}: {}", address.ToString(), strerror(errno)));
  }
  if (listen(fd.get(), options.backlog) != 0) {
    return absl::UnavailableError(
        fmt::format("cannot listen on {}: {}", address.ToString(), strerror(errno)));
  }
  return fd;
}

IoResult OpenTcpSocket(int family) {
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return {-errno};
  SetNoDelay(fd);
  return {fd};
}

std::optional<SocketAddress> LocalAddress(int fd) {
  SocketAddress a;
  *a.mutable_size() = SocketAddress::capacity();
  if (getsockname(fd, a.mutable_get(), a.mutable_size()) != 0) return std::nullopt;
  a.UnmapV4();
  return a;
}

uint16_t LocalPort(int fd) {
  std::optional<SocketAddress> a = LocalAddress(fd);
  return a ? a->port() : 0;
}

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

Task<IoResult> SendAll(int fd, std::span<const std::byte> data, Deadline deadline) {
  size_t sent = 0;
  while (sent < data.size()) {
    IoResult r = co_await Send(fd, data.subspan(sent), deadline);
    if (!r.ok()) co_return r;
    if (r.res == 0) co_return IoResult{-EPIPE};
    sent += r.value();
  }
  co_return IoResult{static_cast<int32_t>(sent)};
}

}  // namespace ringproxy
