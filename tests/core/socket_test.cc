// SocketAddress text forms (core/socket.h): IPv4 is formatted by hand, so it is
// checked against inet_ntop over addresses with every digit count in every octet.
#include "core/socket.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace ringproxy {
namespace {

TEST(SocketAddressTest, Ipv4HostStringMatchesInetNtop) {
  const uint8_t octets[] = {0, 1, 9, 10, 42, 99, 100, 109, 110, 199, 200, 250, 255};
  int checked = 0;
  for (uint8_t a : octets) {
    for (uint8_t b : octets) {
      for (uint8_t c : {uint8_t{0}, uint8_t{7}, uint8_t{100}, uint8_t{255}}) {
        for (uint8_t d : {uint8_t{1}, uint8_t{10}, uint8_t{254}}) {
          sockaddr_in sin{};
          sin.sin_family = AF_INET;
          sin.sin_port = htons(8080);
          const uint8_t bytes[4] = {a, b, c, d};
          std::memcpy(&sin.sin_addr, bytes, 4);
          char want[INET_ADDRSTRLEN];
          ASSERT_NE(inet_ntop(AF_INET, &sin.sin_addr, want, sizeof want), nullptr);
          const SocketAddress addr =
              SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
          EXPECT_EQ(addr.HostString(), want);
          EXPECT_EQ(addr.ToString(), std::string(want) + ":8080");
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, 13 * 13 * 4 * 3);
}

TEST(SocketAddressTest, Ipv6HostStringIsCanonical) {
  auto addr = SocketAddress::Parse("[2001:db8:0:0:0:0:0:1]:993");
  ASSERT_TRUE(addr.ok()) << addr.status().message();
  EXPECT_EQ(addr->HostString(), "2001:db8::1");
  EXPECT_EQ(addr->ToString(), "[2001:db8::1]:993");
}

TEST(SocketAddressTest, AnIpv4MappedPeerBecomesIpv4AndOthersStay) {
  auto mapped = SocketAddress::FromNumeric("::ffff:10.1.2.3", 993);
  ASSERT_TRUE(mapped.has_value());
  ASSERT_EQ(mapped->family(), AF_INET6);
  mapped->UnmapV4();
  EXPECT_EQ(mapped->family(), AF_INET);
  EXPECT_EQ(mapped->ToString(), "10.1.2.3:993");
  EXPECT_TRUE(*mapped == *SocketAddress::FromNumeric("10.1.2.3", 993));
  auto v6 = SocketAddress::FromNumeric("2001:db8::1", 993);
  v6->UnmapV4();
  EXPECT_EQ(v6->ToString(), "[2001:db8::1]:993");
  auto v4 = SocketAddress::FromNumeric("192.0.2.1", 80);
  v4->UnmapV4();
  EXPECT_EQ(v4->family(), AF_INET);
  EXPECT_EQ(v4->ToString(), "192.0.2.1:80");
}

}  // namespace
}  // namespace ringproxy
