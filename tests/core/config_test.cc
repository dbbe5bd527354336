#include "core/config.h"

#include <string>

#include "core/reactor.h"
#include "gtest/gtest.h"

namespace ringproxy {
namespace {

std::string Message(const absl::Status& s) { return std::string(s.message()); }

constexpr char kValid[] = R"(
[runtime]
shards = 2
drain_timeout_ms = 1500

[log]
level = "warn"
access = false

[[upstream]]
name = "mail"
balance = "ip_hash"
servers = ["127.0.0.1:143", "[::1]:143"]
connect_timeout_ms = 250

[[listener]]
name = "imap-tcp"
protocol = "tcp"
listen = "127.0.0.1:1143"
upstream = "mail"
idle_timeout_ms = 9000
relay = "splice"
)";

TEST(ConfigTest, ParsesAValidFile) {
  auto c = ParseConfig(kValid, "t.toml");
  ASSERT_TRUE(c.ok()) << Message(c.status());
  const Config& config = **c;
  EXPECT_EQ(config.runtime.shards, 2);
  EXPECT_EQ(config.runtime.drain_timeout_ms, 1500);
  EXPECT_EQ(config.log.level, log::Level::kWarn);
  EXPECT_FALSE(config.log.access);
  ASSERT_EQ(config.upstreams.size(), 1u);
  EXPECT_EQ(config.upstreams[0].balance, Balance::kIpHash);
  ASSERT_EQ(config.upstreams[0].servers.size(), 2u);
  EXPECT_EQ(config.upstreams[0].servers[1].address.ToString(), "[::1]:143");
  EXPECT_EQ(config.upstreams[0].connect_timeout_ms, 250);
  ASSERT_EQ(config.listeners.size(), 1u);
  EXPECT_EQ(config.listeners[0].upstream_index, 0);
  EXPECT_EQ(config.listeners[0].idle_timeout_ms, 9000);
  EXPECT_EQ(config.listeners[0].address.port(), 1143);
  EXPECT_EQ(config.listeners[0].relay, RelayMode::kSplice);
}

TEST(ConfigTest, DefaultsApply) {
  auto c = ParseConfig(R"(
[[upstream]]
name = "u"
servers = ["127.0.0.1:1"]
[[listener]]
name = "l"
protocol = "tcp"
listen = "127.0.0.1:2"
upstream = "u"
)",
                       "d.toml");
  ASSERT_TRUE(c.ok()) << Message(c.status());
  EXPECT_EQ((*c)->runtime.shards, 0);
  EXPECT_EQ((*c)->runtime.drain_timeout_ms, 30000);
  EXPECT_EQ((*c)->upstreams[0].balance, Balance::kRoundRobin);
  EXPECT_EQ((*c)->upstreams[0].connect_timeout_ms, 5000);
  EXPECT_EQ((*c)->listeners[0].idle_timeout_ms, 600000);
  EXPECT_EQ((*c)->log.level, log::Level::kInfo);
  EXPECT_EQ((*c)->listeners[0].relay, RelayMode::kAuto);
}

struct BadCase {
  const char* name;
  const char* text;
  const char* expect;  // substring of the error, with file:line
};

class ConfigErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigErrorTest, NamesFileLineKeyAndExpectation) {
  auto c = ParseConfig(GetParam().text, "bad.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(Message(c.status()).find(GetParam().expect), std::string::npos)
      << "got: " << Message(c.status());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ConfigErrorTest,
    ::testing::Values(
        BadCase{"syntax", "[runtime\nshards = 1\n", "bad.toml:1:"},
        BadCase{"wrong_type", "[runtime]\nshards = \"two\"\n",
                "bad.toml:2: runtime.shards: expected an integer, got a string"},
        BadCase{"out_of_range", "[runtime]\n\nring_entries = 1\n",
                "bad.toml:3: runtime.ring_entries: expected an integer in 8..16384, got 1"},
        BadCase{"unknown_key", "[runtime]\nshardz = 1\n",
                "bad.toml:2: runtime.shardz: unknown key"},
        BadCase{"unknown_section", "[runtim]\n", "runtim: unknown key"},
        BadCase{"bad_level", "[log]\nlevel = \"loud\"\n",
                "bad.toml:2: log.level: expected one of debug, info, warn, error, off"},
        BadCase{"missing_servers", "[[upstream]]\nname = \"u\"\n",
                "bad.toml:1: upstream[0].servers: required key is missing"},
        BadCase{"bad_address", "[[upstream]]\nname = \"u\"\nservers = [\"127.0.0.1\"]\n",
                "bad.toml:3: upstream[0].servers: bad address '127.0.0.1': expected host:port"},
        BadCase{"bad_port", "[[upstream]]\nname = \"u\"\nservers = [\"1.2.3.4:99999\"]\n",
                "port must be 0..65535"},
        BadCase{"unknown_upstream",
                "[[listener]]\nname = \"l\"\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:1\"\n"
                "upstream = \"nope\"\n",
                "listener[0].upstream: unknown upstream 'nope' (defined: none)"},
        BadCase{"bad_protocol",
                "[[listener]]\nname = \"l\"\nprotocol = \"smtp\"\nlisten = \"127.0.0.1:1\"\n"
                "upstream = \"u\"\n",
                "bad.toml:3: listener[0].protocol: expected \"tcp\", got 'smtp'"},
        BadCase{"bad_relay",
                "[[listener]]\nname = \"l\"\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:1\"\n"
                "upstream = \"u\"\nrelay = \"zero\"\n",
                "bad.toml:6: listener[0].relay: expected auto, copy or splice, got 'zero'"},
        BadCase{"duplicate_listen",
                "[[upstream]]\nname = \"u\"\nservers = [\"127.0.0.1:1\"]\n"
                "[[listener]]\nname = \"a\"\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:5\"\n"
                "upstream = \"u\"\n"
                "[[listener]]\nname = \"b\"\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:5\"\n"
                "upstream = \"u\"\n",
                "address 127.0.0.1:5 is used by another listener"},
        BadCase{"listener_not_array", "listener = 3\n",
                "listener: expected an array of tables [[listener]]"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ConfigTest, MissingFileIsReported) {
  auto c = LoadConfig("/nonexistent/ringproxy.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(Message(c.status()).find("/nonexistent/ringproxy.toml: cannot open"),
            std::string::npos);
}

TEST(ConfigTest, ShardCpusAreCheckedAgainstTheMachine) {
  RuntimeConfig rt;
  rt.cpus = {100000 % 4096};
  EXPECT_FALSE(ResolveShardCpus(rt).ok());
  RuntimeConfig any;
  auto cpus = ResolveShardCpus(any);
  ASSERT_TRUE(cpus.ok());
  EXPECT_FALSE(cpus->empty());
  RuntimeConfig one;
  one.shards = 1;
  EXPECT_EQ(ResolveShardCpus(one)->size(), 1u);
}

// The completion queue is 4 x ring_entries and the kernel caps it at 65536 entries: a
// larger value must be refused when the file is read, not when a shard starts.
TEST(ConfigTest, RingEntriesBeyondTheKernelsCompletionQueueLimitIsAConfigError) {
  auto bad = ParseConfig("[runtime]\nring_entries = 32768\n", "t.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(Message(bad.status()).find("runtime.ring_entries"), std::string::npos)
      << Message(bad.status());
  auto good = ParseConfig("[runtime]\nring_entries = 16384\n", "t.toml");
  ASSERT_TRUE(good.ok()) << Message(good.status());
  // The largest accepted value is one the kernel takes.
  ReactorOptions options;
  options.sq_entries = static_cast<unsigned>((*good)->runtime.ring_entries);
  auto reactor = Reactor::Create(options);
  EXPECT_TRUE(reactor.ok()) << Message(reactor.status());
}

}  // namespace
}  // namespace ringproxy
