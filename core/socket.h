// Socket plumbing: owned descriptors, addresses, listeners and outbound sockets.
// Creation and options are plain syscalls (cheap, never blocking); waiting is done
// through the ring (core/ops.h).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/deadline.h"
#include "core/result.h"
#include "core/task.h"

namespace ringproxy {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) Reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// An IPv4 or IPv6 address with port.
class SocketAddress {
 public:
  SocketAddress() = default;
  // Parses "1.2.3.4:80", "[::1]:80" or "name:80"; names are resolved (blocking: call
  // only from the control plane, e.g. while loading config).
  // `min_port` 1 for addresses in a config (port 0 would mean "any free port").
  // A name with several addresses is an error here (which one was meant?).
  static absl::StatusOr<SocketAddress> Parse(std::string_view text, uint16_t min_port = 0);
  // The same, with every address of a name, in the resolver's order, each once.
  static absl::StatusOr<std::vector<SocketAddress>> ParseAll(std::string_view text,
                                                             uint16_t min_port = 0);
  static SocketAddress FromSockaddr(const sockaddr* sa, socklen_t len);

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* mutable_get() { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const { return size_; }
  socklen_t* mutable_size() { return &size_; }
  static constexpr socklen_t capacity() { return sizeof(Storage); }
  int family() const { return storage_.sa.sa_family; }
  uint16_t port() const;
  void set_port(uint16_t port);
  // The address bytes without the port (4 or 16 bytes); for hashing.
  std::span<const uint8_t> host_bytes() const;
  std::string ToString() const;    // "1.2.3.4:80" / "[::1]:80"
  std::string HostString() const;  // "1.2.3.4" / "::1"
  // An IP literal ("1.2.3.4", "::1", "[::1]") with `port`; nullopt for a host name.
  static std::optional<SocketAddress> FromNumeric(std::string_view host, uint16_t port);
  // An IPv4 client of a dual-stack listener ("::ffff:10.1.2.3") as the IPv4 address it
  // is, so that IPv4 CIDR lists, hashes and logs see one form. Others stay as they are.
  void UnmapV4();
  bool operator==(const SocketAddress& o) const;

 private:
  // IPv4 and IPv6 only: 28 bytes, not sockaddr_storage's 128. Every session frame,
  // parked connections included, holds its peer's.
  union Storage {
    sockaddr sa;
    sockaddr_in in4;
    sockaddr_in6 in6;
  };
  Storage storage_{};
  socklen_t size_ = 0;
};

struct ListenOptions {
  int backlog = 4096;
  bool reuse_port = true;
  int send_buffer = 0;  // SO_SNDBUF, inherited by accepted sockets (0: kernel default)
};

// Fails when another socket listens on `address` already: SO_REUSEPORT lets every
// process of the same user bind it too and share its connections, so a second instance
// started by mistake would take half of them instead of failing.
absl::Status CheckAddressFree(const SocketAddress& address);

// socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen; non-blocking, close-on-exec.
absl::StatusOr<UniqueFd> ListenTcp(const SocketAddress& address, const ListenOptions& options);

// A non-blocking TCP socket for an outbound connection, or -errno.
IoResult OpenTcpSocket(int family);

// The address a socket is bound to (a v4-mapped IPv6 address as IPv4); nullopt when
// getsockname fails.
std::optional<SocketAddress> LocalAddress(int fd);
// The port a bound socket listens on (for tests that bind port 0).
uint16_t LocalPort(int fd);

void SetNoDelay(int fd);

// Sends all of `data` (looping over short sends) or fails; returns bytes sent.
Task<IoResult> SendAll(int fd, std::span<const std::byte> data, Deadline deadline);

inline std::span<const std::byte> AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

}  // namespace ringproxy
