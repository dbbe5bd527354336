// Key placement. ketama is checked against Debian's libmemcached itself, loaded at
// run time (no build dependency): same server list, same key -> same server, for
// thousands of keys; plus a fixed vector recorded from it. zimbra mode is checked
// against a fixed vector computed by an independent implementation of the hash.
#include "cache/placement.h"

#include <dlfcn.h>

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ringproxy {
namespace {

std::vector<CacheServer> Servers(const std::vector<std::pair<std::string, uint16_t>>& list) {
  std::vector<CacheServer> out;
  for (auto& [host, port] : list) {
    CacheServer s;
    s.host = host;
    s.port = port;
    s.text = host + ":" + std::to_string(port);
    out.push_back(s);
  }
  return out;
}

auto All = [](size_t) { return true; };

TEST(PlacementTest, HashesMatchKnownValues) {
  EXPECT_EQ(OneAtATimeHash("key0"), 0xdfee628682e57b06u);
  EXPECT_EQ(KetamaHash("key0"), 0xf202f421u);
}

TEST(PlacementTest, KetamaMatchesARecordedLibmemcachedVector) {
  // libmemcached 1.1.4, servers 127.0.0.1:21211..21213, KETAMA_WEIGHTED (recorded by
  // storing each key with memcached_set and finding it on exactly that server).
  KeyPlacement p(Servers({{"127.0.0.1", 21211}, {"127.0.0.1", 21212}, {"127.0.0.1", 21213}}),
                 Distribution::kKetama);
  const int want[20] = {21212, 21213, 21211, 21212, 21211, 21213, 21211, 21211, 21211, 21212,
                        21211, 21211, 21212, 21213, 21212, 21211, 21213, 21212, 21211, 21213};
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(p.Pick("key" + std::to_string(i), All), want[i] - 21211) << "key" << i;
  }
  EXPECT_EQ(p.points(), 480u);
}

TEST(PlacementTest, ZimbraModeMatchesAFixedVector) {
  KeyPlacement p(Servers({{"10.0.0.1", 11211}, {"10.0.0.2", 11211}, {"10.0.0.3", 11211}}),
                 Distribution::kZimbra);
  // The fork's ngx_memcache_perl_hash on amd64 (ngx_uint_t is 64 bits), computed with
  // Python integers masked to 64 bits. The 32-bit hash puts the first, third, fourth and
  // sixth keys elsewhere.
  struct Case {
    const char* key;
    uint64_t hash;
    int server;
  } cases[] = {
      {"route:proto=imap;user=john@example.com", 0x7d3877fc04ac0c91u, 0},
      {"alias:user=jd;ip=127.0.0.1", 0xefae7de3e6b325deu, 2},
      {"throttle:user=john@example.com", 0x41c08dafdbcf7b82u, 1},
      {"route:proto=httpssl;id=11111111-aaaa-4bbb-8ccc-000000000001", 0xdaafcdece14eae2du, 0},
      {"whitelist:ip=10.0.0.7", 0x1025e635277d32e5u, 2},
      {"throttle:proto=i,ip=192.0.2.55", 0x1ede11a0e9fcd0b4u, 0},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(OneAtATimeHash(c.key), c.hash) << c.key;
    EXPECT_EQ(p.Pick(c.key, All), c.server) << c.key;
  }
  // A bad server's keys go to the next one in order (wrapping).
  auto without2 = [](size_t i) { return i != 2; };
  EXPECT_EQ(p.Pick("alias:user=jd;ip=127.0.0.1", without2), 0);
  EXPECT_EQ(p.Pick("throttle:user=john@example.com", [](size_t i) { return i == 1; }), 1);
  EXPECT_EQ(p.Pick("x", [](size_t) { return false; }), -1);
}

TEST(PlacementTest, KetamaMovesOnlyTheDeadServersKeys) {
  KeyPlacement p(Servers({{"10.0.0.1", 11211}, {"10.0.0.2", 11211}, {"10.0.0.3", 11211}}),
                 Distribution::kKetama);
  auto without1 = [](size_t i) { return i != 1; };
  int moved = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string key = "k" + std::to_string(i);
    int before = p.Pick(key, All);
    int after = p.Pick(key, without1);
    ASSERT_NE(after, 1);
    if (before != 1) {
      EXPECT_EQ(before, after) << key;  // keys of live servers stay put
    } else {
      ++moved;
    }
  }
  EXPECT_GT(moved, 700);  // about a third
  EXPECT_LT(moved, 1300);
}

// Debian's libmemcached, loaded at run time. The functions used are its stable C API.
class Libmemcached {
 public:
  Libmemcached() {
    handle_ = dlopen("libmemcached.so.11", RTLD_NOW);
    if (handle_ == nullptr) return;
    create_ = reinterpret_cast<void* (*)(const char*, size_t)>(dlsym(handle_, "memcached"));
    behavior_set_ =
        reinterpret_cast<int (*)(void*, int, uint64_t)>(dlsym(handle_, "memcached_behavior_set"));
    hash_ = reinterpret_cast<uint32_t (*)(const void*, const char*, size_t)>(
        dlsym(handle_, "memcached_generate_hash"));
    free_ = reinterpret_cast<void (*)(void*)>(dlsym(handle_, "memcached_free"));
  }
  ~Libmemcached() {
    if (handle_ != nullptr) dlclose(handle_);
  }
  bool ok() const { return create_ && behavior_set_ && hash_ && free_; }

  // Server index for each key under KETAMA_WEIGHTED with `servers` in this order.
  std::vector<int> Place(const std::vector<CacheServer>& servers,
                         const std::vector<std::string>& keys) {
    std::string conf;
    for (const CacheServer& s : servers) {
      if (!conf.empty()) conf += " ";
      conf += "--SERVER=" + s.host + ":" + std::to_string(s.port);
    }
    void* m = create_(conf.data(), conf.size());
    if (m == nullptr) {
      ADD_FAILURE() << "libmemcached rejected the configuration: " << conf;
      return std::vector<int>(keys.size(), -2);
    }
    constexpr int kKetamaWeighted = 16;
    behavior_set_(m, kKetamaWeighted, 1);
    std::vector<int> out;
    for (const std::string& k : keys) out.push_back(static_cast<int>(hash_(m, k.data(), k.size())));
    free_(m);
    return out;
  }

 private:
  void* handle_ = nullptr;
  void* (*create_)(const char*, size_t) = nullptr;
  int (*behavior_set_)(void*, int, uint64_t) = nullptr;
  uint32_t (*hash_)(const void*, const char*, size_t) = nullptr;
  void (*free_)(void*) = nullptr;
};

TEST(PlacementTest, KetamaEqualsLibmemcachedForManyKeysAndServerLists) {
  Libmemcached lib;
  // tools/test installs libmemcached-tools (and with it this library): missing is a
  // broken setup, not a reason to pass.
  ASSERT_TRUE(lib.ok()) << "libmemcached.so.11 not loadable: apt-get install libmemcached-tools";
  std::mt19937 rng(7);
  std::vector<std::string> keys;
  for (int i = 0; i < 5000; ++i) {
    std::string k = "route:proto=imap;user=user" + std::to_string(rng()) + "@example.com";
    k.resize(1 + rng() % 250, static_cast<char>('a' + rng() % 26));
    keys.push_back(k);
  }
  keys.push_back(std::string("caf\xc3\xa9-\xff", 7));  // bytes >= 0x80
  const std::vector<std::vector<std::pair<std::string, uint16_t>>> lists = {
      {{"127.0.0.1", 21211}, {"127.0.0.1", 21212}},
      {{"127.0.0.1", 11211}, {"127.0.0.1", 21211}, {"127.0.0.1", 21212}},
      {{"10.1.1.3", 11211},
       {"10.1.1.1", 11211},
       {"10.1.1.2", 11212},
       {"10.1.1.9", 11213},
       {"10.1.1.5", 11211}},
  };
  for (const auto& list : lists) {
    std::vector<CacheServer> servers = Servers(list);
    KeyPlacement p(servers, Distribution::kKetama);
    std::vector<int> want = lib.Place(servers, keys);
    int mismatches = 0;
    for (size_t i = 0; i < keys.size(); ++i) mismatches += p.Pick(keys[i], All) != want[i];
    EXPECT_EQ(mismatches, 0) << servers.size() << " servers";
  }
  // 25 equal servers: libmemcached's float rounding gives each 156 points, not 160.
  std::vector<std::pair<std::string, uint16_t>> many;
  for (int i = 0; i < 25; ++i) many.push_back({"10.2.0." + std::to_string(i + 1), 11211});
  std::vector<CacheServer> servers = Servers(many);
  KeyPlacement p(servers, Distribution::kKetama);
  EXPECT_EQ(p.points(), 25u * 156);
  std::vector<int> want = lib.Place(servers, keys);
  int mismatches = 0;
  for (size_t i = 0; i < keys.size(); ++i) mismatches += p.Pick(keys[i], All) != want[i];
  EXPECT_EQ(mismatches, 0);
}

TEST(PlacementTest, ParseCacheServerKeepsTheHostAsWritten) {
  absl::StatusOr<CacheServer> v4 = ParseCacheServer("127.0.0.1:11311");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 11311);
  EXPECT_EQ(v4->text, "127.0.0.1:11311");
  EXPECT_EQ(v4->address.ToString(), "127.0.0.1:11311");
  absl::StatusOr<CacheServer> v6 = ParseCacheServer("[::1]:11211");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "[::1]");
  EXPECT_EQ(v6->port, 11211);
  EXPECT_FALSE(ParseCacheServer("127.0.0.1").ok());
  // A name is resolved when the config is read; one that does not resolve is an error
  // (.invalid never resolves, RFC 6761; "memcached" would where such a host exists).
  EXPECT_FALSE(ParseCacheServer("no-such-host.invalid:11211").ok());
}

}  // namespace
}  // namespace ringproxy
