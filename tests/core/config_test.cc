#include "core/config.h"

#include <string>

#include "core/reactor.h"
#include "gtest/gtest.h"

namespace ringproxy {
namespace {

std::string Message(const absl::Status& s) { return std::string(s.message()); }

// What proto/ registers for "tcp", reduced to what core's tests need.
const ConfigSchema& Schema() {
  static const ConfigSchema* schema = [] {
    auto* s = new ConfigSchema();
    s->AddListenerProtocol("tcp", [](ConfigTable& t, const Config&) -> ExtensionPtr {
      if (!t.Has("upstream")) t.Error("upstream", "required key is missing");
      return nullptr;
    });
    return s;
  }();
  return *schema;
}

absl::StatusOr<ConfigPtr> ParseConfig(std::string_view text, std::string_view path) {
  return ringproxy::ParseConfig(text, path, Schema());
}

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
servers = ["127.0.0.1:143", "[::1]:143 weight=5 id=mbox2"]
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
  EXPECT_EQ(config.upstreams[0].servers[0].weight, 1);
  EXPECT_EQ(config.upstreams[0].servers[1].weight, 5);
  EXPECT_EQ(config.upstreams[0].servers[0].id, "");
  EXPECT_EQ(config.upstreams[0].servers[1].id, "mbox2");
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
        BadCase{"coalesce_range", "[runtime]\ncoalesce_us = 20000\n",
                "bad.toml:2: runtime.coalesce_us: expected an integer in 0..10000, got 20000"},
        BadCase{"cpu_twice", "[runtime]\ncpus = [0,\n  0]\n",
                "bad.toml:3: runtime.cpus: CPU 0 is listed twice"},
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
                "port must be 1..65535"},
        BadCase{"port_zero", "[[upstream]]\nname = \"u\"\nservers = [\"1.2.3.4:0\"]\n",
                "bad.toml:3: upstream[0].servers: bad address '1.2.3.4:0': port must be 1..65535"},
        BadCase{"listen_port_zero",
                "[[listener]]\nname = \"a\"\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:0\"\n",
                "bad.toml:4: listener[0].listen: bad address '127.0.0.1:0': port must be 1..65535"},
        BadCase{"empty_choice",
                "[[upstream]]\nname = \"u\"\nservers = [\"1.2.3.4:9\"]\n"
                "balance = \"\"\n",
                "bad.toml:4: upstream[0].balance: expected"},
        BadCase{"empty_level", "[log]\nlevel = \"\"\n",
                "bad.toml:2: log.level: expected one of debug, info, warn, error, off; got ''"},
        BadCase{"buffers_too_big", "[runtime]\nbuffer_count = 32768\nbuffer_size = 1048576\n",
                "bad.toml:3: runtime.buffer_size: buffer_count x buffer_size = 32768 MiB per "
                "shard; at most 1024 MiB"},
        BadCase{"bad_weight", "[[upstream]]\nname = \"u\"\nservers = [\"1.2.3.4:9 weight=0\"]\n",
                "bad.toml:3: upstream[0].servers: '1.2.3.4:9 weight=0': expected"},
        BadCase{"bad_option", "[[upstream]]\nname = \"u\"\nservers = [\"1.2.3.4:9 backup\"]\n",
                "'1.2.3.4:9 backup': expected \"host:port\" and the options \"weight=N\""},
        BadCase{"empty_id", "[[upstream]]\nname = \"u\"\nservers = [\"1.2.3.4:9 id=\"]\n",
                "'1.2.3.4:9 id=': expected"},
        BadCase{"bad_balance",
                "[[upstream]]\nname = \"u\"\nbalance = \"random\"\nservers = [\"1.2.3.4:9\"]\n",
                "expected round_robin, least_conn or ip_hash, got 'random'"},
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
        // The IPv4-mapped spelling is the same address: both bound, one never served.
        BadCase{
            "duplicate_listen_mapped",
            "[[upstream]]\nname = \"u\"\nservers = [\"127.0.0.1:1\"]\n"
            "[[listener]]\nname = \"a\"\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:5\"\n"
            "upstream = \"u\"\n"
            "[[listener]]\nname = \"b\"\nprotocol = \"tcp\"\nlisten = \"[::ffff:127.0.0.1]:5\"\n"
            "upstream = \"u\"\n",
            "address 127.0.0.1:5 is used by another listener"},
        // Empty names and references: --check passed them, and the first connection
        // aborted (protocol) or read balancers[-1] (upstream).
        BadCase{"empty_protocol",
                "[[upstream]]\nname = \"u\"\nservers = [\"127.0.0.1:9\"]\n"
                "[[listener]]\nname = \"a\"\nprotocol = \"\"\nlisten = \"127.0.0.1:5\"\n"
                "upstream = \"u\"\n",
                "bad.toml:6: listener[0].protocol: must not be empty"},
        BadCase{"empty_upstream",
                "[[upstream]]\nname = \"u\"\nservers = [\"127.0.0.1:9\"]\n"
                "[[listener]]\nname = \"a\"\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:5\"\n"
                "upstream = \"\"\n",
                "bad.toml:8: listener[0].upstream: must not be empty"},
        BadCase{"empty_listen", "[[listener]]\nname = \"a\"\nprotocol = \"tcp\"\nlisten = \"\"\n",
                "bad.toml:4: listener[0].listen: must not be empty"},
        BadCase{"empty_listener_name",
                "[[listener]]\nname = \"\"\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:5\"\n",
                "bad.toml:2: listener[0].name: must not be empty"},
        BadCase{"empty_upstream_name", "[[upstream]]\nname = \"\"\nservers = [\"127.0.0.1:9\"]\n",
                "bad.toml:2: upstream[0].name: must not be empty"},
        BadCase{"duplicate_id",
                "[[upstream]]\nname = \"u\"\n"
                "servers = [\"127.0.0.1:9 id=n1\", \"127.0.0.2:9 id=n1\"]\n",
                "bad.toml:3: upstream[0].servers: '127.0.0.2:9 id=n1': id=n1 is given to another "
                "server of this group"},
        BadCase{"listener_not_array", "listener = 3\n",
                "listener: expected an array of tables [[listener]]"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ConfigTest, ADirectoryIsNotAConfigFile) {
  auto c = LoadConfig("/tmp", Schema());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(Message(c.status()).find("/tmp: not a regular file"), std::string::npos)
      << Message(c.status());
}

TEST(ConfigTest, AListenerIdleTimeoutMayBeAWeek) {
  auto c = ParseConfig(
      "[[upstream]]\nname = \"u\"\nservers = [\"127.0.0.1:9\"]\n"
      "[[listener]]\nname = \"a\"\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:5\"\n"
      "upstream = \"u\"\nidle_timeout_ms = 604800000\n",
      "week.toml");
  ASSERT_TRUE(c.ok()) << Message(c.status());
  EXPECT_EQ((*c)->listeners[0].idle_timeout_ms, 604'800'000);
}

TEST(ConfigTest, MissingFileIsReported) {
  auto c = LoadConfig("/nonexistent/ringproxy.toml", Schema());
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

// A module's section, a protocol's own keys and a sub-table of listeners: each read by
// its reader, kept in the snapshot, and held to the same rules (unknown keys, lines).
struct Extra : ConfigExtension {
  int64_t x = 0;
  std::string words;
};

TEST(ConfigTest, ModulesReadTheirOwnSectionsProtocolsAndTables) {
  ConfigSchema schema;
  schema.AddSection("extra", [](ConfigTable& t, const Config&) -> ExtensionPtr {
    auto e = std::make_shared<Extra>();
    t.Int("x", &e->x, 0, 10);
    return e;
  });
  schema.AddListenerProtocol("echo", [](ConfigTable& t, const Config& so_far) -> ExtensionPtr {
    auto e = std::make_shared<Extra>();
    t.String("greeting", &e->words, true);
    // Sections come before listeners.
    e->x = so_far.sections.Get<Extra>("extra")->x;
    return e;
  });
  schema.AddListenerTable("sub", [](ConfigTable& t, const Config&) -> ExtensionPtr {
    auto e = std::make_shared<Extra>();
    t.String("words", &e->words);
    if (e->words == "bad") t.Error("words", "must not be bad");
    return e;
  });
  const char* text = R"([extra]
x = 7

[[listener]]
name = "e"
protocol = "echo"
listen = "127.0.0.1:1"
greeting = "hi"

[listener.sub]
words = "some"
)";
  auto c = ParseConfig(text, "m.toml", schema);
  ASSERT_TRUE(c.ok()) << Message(c.status());
  const ListenerConfig& l = (*c)->listeners[0];
  EXPECT_EQ(l.protocol, "echo");
  EXPECT_EQ(static_cast<const Extra*>(l.protocol_settings.get())->words, "hi");
  EXPECT_EQ(static_cast<const Extra*>(l.protocol_settings.get())->x, 7);
  EXPECT_EQ(l.extensions.Get<Extra>("sub")->words, "some");
  EXPECT_EQ((*c)->sections.Get<Extra>("extra")->x, 7);

  std::string bad = std::string(text) + "typo = 1\n";
  auto b = ParseConfig(bad, "m.toml", schema);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(Message(b.status()).find("m.toml:12: listener[0].sub.typo: unknown key"),
            std::string::npos)
      << Message(b.status());
  std::string refused = std::string(text);
  refused.replace(refused.find("\"some\""), 6, "\"bad\"");
  auto r = ParseConfig(refused, "m.toml", schema);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Message(r.status()).find("m.toml:11: listener[0].sub.words: must not be bad"),
            std::string::npos)
      << Message(r.status());
  // A protocol nobody registered names the ones that are.
  auto u =
      ParseConfig("[[listener]]\nname = \"l\"\nprotocol = \"smtp\"\nlisten = \"127.0.0.1:1\"\n",
                  "m.toml", schema);
  ASSERT_FALSE(u.ok());
  EXPECT_NE(
      Message(u.status()).find("m.toml:3: listener[0].protocol: expected \"echo\", got 'smtp'"),
      std::string::npos)
      << Message(u.status());
}

}  // namespace
}  // namespace ringproxy
