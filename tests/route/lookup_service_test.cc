// The reference lookup service's decisions (what Zimbra's NLE would answer).
#include "route/lookup_service.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/ascii.h"
#include "core/shard.h"
#include "gtest/gtest.h"
#include "route/lookup_server.h"
#include "tests/process_util.h"
#include "tests/test_util.h"

namespace ringproxy {
namespace {

std::shared_ptr<const Directory> Dir() {
  auto d = Directory::Load(getenv("LOOKUPD_ROUTES"));
  EXPECT_TRUE(d.ok()) << std::string(d.status().message());
  return *d;
}

Decision Ask(const Directory& dir, std::string headers) {
  static std::string wire;  // the parsed request points into it
  wire = "GET /service/extension/nginx-lookup HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n";
  lookup::ParsedRequest r = lookup::ParseRequest(wire);
  EXPECT_EQ(r.error, lookup::Error::kNone);
  return Decide(dir, r);
}

// A blocking connection to 127.0.0.1:port whose reads give up after 5 s.
UniqueFd Connect(uint16_t port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM, 0));
  auto addr = SocketAddress::Parse("127.0.0.1:" + std::to_string(port));
  timeval limit{5, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  if (!addr.ok() || connect(fd.get(), addr->get(), addr->size()) != 0) {
    ADD_FAILURE() << "cannot connect to " << port;
  }
  return fd;
}

// Sends `request` to a running lookupd and reads until it closes (5 s at most).
std::string Exchange(const testing::Lookupd& d, const std::string& request) {
  UniqueFd fd = Connect(d.port());
  if (!testing::WriteAll(fd.get(), request.data(), request.size())) {
    ADD_FAILURE() << "cannot send to lookupd";
    return "";
  }
  return testing::ReadToEof(fd.get());
}

// Reads one whole reply from a kept-alive connection ("" on a close or timeout).
std::string ReadReply(int fd) {
  std::string buf;
  char chunk[4096];
  while (lookup::ParseResponse(buf).error == lookup::Error::kNeedMore) {
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return "";
    buf.append(chunk, static_cast<size_t>(n));
  }
  return buf;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

const char kMail[] =
    "Auth-Method: username\r\nAuth-Pass: _password_\r\nAuth-Login-Attempt: 1\r\n"
    "Client-IP: 198.51.100.7\r\n";

TEST(LookupServiceTest, AliasesResolveToTheAccountAndItsServer) {
  auto dir = Dir();
  Decision d = Ask(*dir, std::string(kMail) +
                             "Auth-User: jd@example.com\r\nAuth-Protocol: imapssl\r\n"
                             "X-Proxy-IP: 127.0.0.1\r\n");
  ASSERT_TRUE(d.ok) << d.status;
  EXPECT_EQ(d.user, "john@example.com");
  EXPECT_EQ(d.server, "127.0.0.1");
  EXPECT_EQ(d.port, 7993);
  EXPECT_TRUE(d.cache_alias);  // the default domain
}

TEST(LookupServiceTest, UnqualifiedNamesTakeTheDomainOfTheVirtualIp) {
  auto dir = Dir();
  Decision d = Ask(*dir, std::string(kMail) +
                             "Auth-User: m\r\nAuth-Protocol: pop3\r\nX-Proxy-IP: 127.0.0.2\r\n");
  ASSERT_TRUE(d.ok) << d.status;
  EXPECT_EQ(d.user, "mary@other.org");
  EXPECT_EQ(d.server, "127.0.0.2");
  EXPECT_EQ(d.port, 7110);
  EXPECT_FALSE(d.cache_alias);  // not the default domain
  Decision j = Ask(*dir, std::string(kMail) +
                             "Auth-User: john\r\nAuth-Protocol: imap\r\nX-Proxy-IP: 10.9.9.9\r\n");
  EXPECT_EQ(j.user, "john@example.com");  // unknown VIP: the default domain
}

TEST(LookupServiceTest, WebByVirtualHostAndById) {
  auto dir = Dir();
  Decision d = Ask(*dir,
                   "Auth-Method: username\r\nAuth-User: m\r\nAuth-Protocol: http\r\n"
                   "X-Proxy-Host: MAIL.other.org\r\nX-Proxy-IP: 127.0.0.1\r\n");
  ASSERT_TRUE(d.ok) << d.status;
  EXPECT_EQ(d.user, "mary@other.org");
  EXPECT_EQ(d.port, 8080);
  Decision i = Ask(*dir,
                   "Auth-Method: zimbraId\r\nAuth-User: 11111111-aaaa-4bbb-8ccc-000000000001\r\n"
                   "Auth-Protocol: httpssl\r\n");
  ASSERT_TRUE(i.ok) << i.status;
  EXPECT_EQ(i.user, "john@example.com");
  EXPECT_EQ(i.port, 8443);
}

// Stock nginx's auth_http request (ngx_mail_auth_http_module): the client's mechanism
// as Auth-Method, no X-Proxy-IP; routed like "username", the answer in the fields nginx
// reads (Auth-Server, Auth-Port, Auth-User as the login it sends upstream).
TEST(LookupServiceTest, StockNginxMethodsRouteLikeUsername) {
  auto dir = Dir();
  for (const char* method : {"plain", "login"}) {
    Decision d = Ask(*dir, std::string("Auth-Method: ") + method +
                               "\r\nAuth-User: jd\r\nAuth-Pass: secret\r\n"
                               "Auth-Protocol: imap\r\nAuth-Login-Attempt: 1\r\n"
                               "Client-IP: 127.0.0.1\r\nClient-Host: [UNAVAILABLE]\r\n");
    ASSERT_TRUE(d.ok) << method << ": " << d.status;
    EXPECT_EQ(d.user, "john@example.com") << method;
    EXPECT_EQ(d.server, "127.0.0.1") << method;
    EXPECT_EQ(d.port, 7143) << method;
    EXPECT_TRUE(d.auth_pass.empty()) << method;  // no token: nginx keeps the client's
  }
  Decision pop = Ask(*dir,
                     "Auth-Method: plain\r\nAuth-User: user7\r\nAuth-Pass: x\r\n"
                     "Auth-Protocol: pop3\r\nClient-IP: 127.0.0.1\r\n");
  ASSERT_TRUE(pop.ok) << pop.status;
  EXPECT_EQ(pop.user, "user7@example.com");
  EXPECT_EQ(pop.port, 7110);
  // Mechanisms whose Auth-Pass is a digest to check (apop, cram-md5) stay refused:
  // lookupd checks no passwords.
  Decision apop = Ask(*dir,
                      "Auth-Method: apop\r\nAuth-User: jd\r\nAuth-Pass: d41d8cd9\r\n"
                      "Auth-Salt: <1.2@x>\r\nAuth-Protocol: pop3\r\n");
  EXPECT_FALSE(apop.ok);
  EXPECT_EQ(apop.status, "unsupported Auth-Method apop");
}

TEST(LookupServiceTest, Refusals) {
  auto dir = Dir();
  Decision nf =
      Ask(*dir, std::string(kMail) + "Auth-User: nobody@example.com\r\nAuth-Protocol: imap\r\n");
  EXPECT_FALSE(nf.ok);
  EXPECT_EQ(nf.status, "user not found:nobody@example.com");
  EXPECT_EQ(nf.wait_s, 3);
  Decision missing = Ask(*dir, "Auth-Method: username\r\nAuth-Protocol: imap\r\n");
  EXPECT_EQ(missing.status, "missing header field Auth-User");
  Decision no_port =
      Ask(*dir, std::string(kMail) + "Auth-User: mary@other.org\r\nAuth-Protocol: imapssl\r\n");
  EXPECT_FALSE(no_port.ok);
  EXPECT_NE(no_port.status.find("has no imapssl port"), std::string::npos);
  Decision not_admin =
      Ask(*dir,
          "Auth-Method: zimbraId\r\nAuth-User: 11111111-aaaa-4bbb-8ccc-000000000001\r\n"
          "Auth-Protocol: httpssl\r\nAuth-Zimbra-Admin: True\r\n");
  EXPECT_FALSE(not_admin.ok);
}

// A login that decodes to CR LF (or holds a bare LF) adds no header to the reply (a
// proxy would read "auth-wait: 0") and no line to the request log.
TEST(LookupServiceTest, ControlBytesInALoginReachNeitherTheReplyHeadersNorTheLog) {
  testing::Lookupd d;
  ASSERT_TRUE(d.Start());
  const std::string head =
      std::string("GET /service/extension/nginx-lookup HTTP/1.0\r\nHost: x\r\n") + kMail +
      "Auth-Protocol: imap\r\n";
  const std::string crlf = Exchange(d, head + "Auth-User: x@y%0D%0Aauth-wait:%200\r\n\r\n");
  lookup::ParsedResponse p = lookup::ParseResponse(crlf);
  ASSERT_EQ(p.error, lookup::Error::kNone) << crlf;
  int waits = 0;
  for (size_t i = 0; i < p.header_count; ++i)
    waits += EqualsIgnoreCase(p.headers[i].name, "Auth-Wait");
  EXPECT_EQ(waits, 1) << crlf;
  EXPECT_EQ(p.Find("Auth-Wait"), "3");
  EXPECT_EQ(p.Find("Auth-Status"), "user not found:x@y%0D%0Aauth-wait: 0");
  EXPECT_EQ(Lines(crlf).size(), 6u) << crlf;  // status, 4 headers, blank
  const std::string lf = Exchange(d, head + "Auth-User: a\nb@example.com\r\n\r\n");
  EXPECT_EQ(lookup::ParseResponse(lf).Find("Auth-Status"), "user not found:a%0Ab@example.com");
  EXPECT_EQ(Lines(lf).size(), 6u) << lf;
  // Nor can a name pass for more fields of the line (a web lookup sends it unescaped).
  Exchange(d, head + "Auth-User: eve result=OK route=10.6.6.6:443\" x=\r\n\r\n");
  d.Stop();
  const std::vector<std::string> log = Lines(d.RequestLog());
  ASSERT_EQ(log.size(), 3u) << d.RequestLog();
  for (const std::string& line : log) {
    EXPECT_NE(line.find(" method=username "), std::string::npos) << line;
    for (char c : line) EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20) << line;
  }
  EXPECT_EQ(log[2].find("result=OK"), std::string::npos) << log[2];
  EXPECT_EQ(log[2].find("route="), std::string::npos) << log[2];
  EXPECT_EQ(std::count(log[2].begin(), log[2].end(), '"'), 0) << log[2];
}

// Auth-Zimbra-Admin (spec §1.4): NLE reads it without regard to case; an admin lookup
// needs an admin account, and only with httpssl is the answer the admin port.
TEST(LookupServiceTest, AdminLookupsAnyCaseAndTheAdminPortOnlyWithHttpssl) {
  auto dir = Directory::Parse(
      "[[server]]\nname = \"m\"\naddress = \"10.0.0.1\"\nhttp = 8080\nhttpssl = 8443\n"
      "admin = 7071\n[[account]]\nname = \"boss@x.org\"\nserver = \"m\"\nadmin = true\n"
      "[[account]]\nname = \"joe@x.org\"\nserver = \"m\"\n",
      "r.toml");
  ASSERT_TRUE(dir.ok()) << dir.status();
  auto ask = [&](std::string user, std::string protocol, std::string admin) {
    return Ask(**dir, "Auth-Method: username\r\nAuth-User: " + user + "\r\nAuth-Protocol: " +
                          protocol + "\r\nAuth-Zimbra-Admin: " + admin + "\r\n");
  };
  for (const char* value : {"True", "true", "TRUE"}) {
    SCOPED_TRACE(value);
    Decision ssl = ask("boss@x.org", "httpssl", value);
    ASSERT_TRUE(ssl.ok) << ssl.status;
    EXPECT_EQ(ssl.port, 7071);
    Decision plain = ask("boss@x.org", "http", value);
    ASSERT_TRUE(plain.ok) << plain.status;
    EXPECT_EQ(plain.port, 8080);
    Decision joe = ask("joe@x.org", "httpssl", value);
    EXPECT_FALSE(joe.ok);
    EXPECT_EQ(joe.status, "account joe@x.org is not an admin");
  }
  Decision not_admin = ask("joe@x.org", "httpssl", "false");
  ASSERT_TRUE(not_admin.ok) << not_admin.status;
  EXPECT_EQ(not_admin.port, 8443);
  // "admin" is not a protocol a client names: NLE has no such port to give.
  Decision named = ask("joe@x.org", "admin", "false");
  EXPECT_FALSE(named.ok);
  EXPECT_EQ(named.status, "mailhost m has no admin port for user: joe@x.org");
  // NLE reads the method and the protocol without regard to case.
  Decision upper = Ask(**dir,
                       "Auth-Method: USERNAME\r\nAuth-User: joe@x.org\r\n"
                       "Auth-Protocol: HTTPSSL\r\n");
  ASSERT_TRUE(upper.ok) << upper.status;
  EXPECT_EQ(upper.port, 8443);
  Decision by_id = Ask(**dir,
                       "Auth-Method: ZimbraId\r\nAuth-User: nobody\r\n"
                       "Auth-Protocol: Http\r\n");
  EXPECT_EQ(by_id.status, "user not found:nobody");
}

// Auth-Zimbra-Zx (spec §1.5): a web lookup for the mailbox's zx port, which NLE
// hard-codes (8742, 8743 over TLS) and a server's zx/zxssl keys set here.
TEST(LookupServiceTest, ZxLookupsAnswerTheZxPort) {
  auto dir = Directory::Parse(
      "[[server]]\nname = \"m\"\naddress = \"10.0.0.1\"\nhttp = 8080\nhttpssl = 8443\n"
      "[[server]]\nname = \"n\"\naddress = \"10.0.0.2\"\nhttp = 8080\nzx = 9742\nzxssl = 9743\n"
      "[[account]]\nname = \"joe@x.org\"\nserver = \"m\"\n"
      "[[account]]\nname = \"ann@x.org\"\nserver = \"n\"\n",
      "r.toml");
  ASSERT_TRUE(dir.ok()) << dir.status();
  auto ask = [&](std::string user, std::string protocol, std::string zx) {
    return Ask(**dir, "Auth-Method: username\r\nAuth-User: " + user +
                          "\r\nAuth-Protocol: " + protocol + "\r\nAuth-Zimbra-Zx: " + zx + "\r\n");
  };
  const std::tuple<std::string, std::string, std::string, int> cases[] = {
      {"joe@x.org", "http", "True", 8742},     {"joe@x.org", "httpssl", "true", 8743},
      {"ann@x.org", "http", "TRUE", 9742},     {"ann@x.org", "httpssl", "True", 9743},
      {"joe@x.org", "httpssl", "false", 8443}, {"joe@x.org", "http", "", 8080},
  };
  for (const auto& [user, protocol, zx, port] : cases) {
    Decision d = ask(user, protocol, zx);
    ASSERT_TRUE(d.ok) << user << " " << protocol << " " << zx << ": " << d.status;
    EXPECT_EQ(d.port, port) << user << " " << protocol << " " << zx;
  }
  // Nor is "zx" a protocol a client names.
  EXPECT_FALSE(ask("ann@x.org", "zx", "false").ok);
}

// Only GET of the servlet's path is a lookup (a query string aside); anything else is
// refused, closed and logged as malformed, not answered as a lookup.
TEST(LookupServiceTest, OnlyAGetOfTheLookupPathIsALookup) {
  testing::Lookupd d;
  ASSERT_TRUE(d.Start());
  const std::string headers =
      std::string(" HTTP/1.1\r\nHost: x\r\n") + kMail +
      "Auth-User: jd@example.com\r\nAuth-Protocol: imap\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(Exchange(d, "POST /service/extension/nginx-lookup" + headers),
            "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nConnection: close\r\n"
            "Content-Length: 0\r\n\r\n");
  EXPECT_EQ(Exchange(d, "GET /service/extension/other" + headers),
            "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(Exchange(d, "GET /service/extension/nginx-lookupX" + headers).substr(0, 13),
            "HTTP/1.1 404 ");
  const std::string ok = Exchange(d, "GET /service/extension/nginx-lookup?x=1" + headers);
  EXPECT_EQ(lookup::ParseResponse(ok).Find("Auth-Status"), "OK") << ok;
  d.Stop();
  EXPECT_EQ(d.Requests(), 1) << d.RequestLog();
  const std::string log = d.RequestLog();
  EXPECT_NE(log.find("malformed=method not GET"), std::string::npos) << log;
  EXPECT_NE(log.find("malformed=unknown path"), std::string::npos) << log;
}

// The lookup server on its own shard, as lookupd runs it, once it listens on `port`.
absl::StatusOr<std::unique_ptr<Shard>> StartServer(const LookupServerOptions* o,
                                                   LookupServerStats* stats,
                                                   const std::atomic<bool>* stop, uint16_t port) {
  auto shard = Shard::Start(0, -1, ReactorOptions{}, [o, stats, stop](Shard&) {
    return ServeLookups(o, Dir(), stats, stop);
  });
  for (int i = 0; shard.ok() && i < 500 && !testing::Listening(port); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return shard;
}

// A client that sends a byte now and then cannot hold a connection: the whole request
// head has one deadline from its first byte (each byte used to restart the wait).
TEST(LookupServiceTest, ARequestHeadHasOneDeadlineFromItsFirstByte) {
  LookupServerOptions o;
  const uint16_t port = testing::FreePort();
  o.listen = *SocketAddress::Parse("127.0.0.1:" + std::to_string(port));
  o.idle_timeout_ms = 300;
  LookupServerStats stats;
  std::atomic<bool> stop{false};
  auto shard = StartServer(&o, &stats, &stop, port);
  ASSERT_TRUE(shard.ok());
  UniqueFd fd = Connect(port);
  const std::string head = "GET /service/extension/nginx-lookup HTTP/1.1\r\nX-Slow: aaaaaaaaaa";
  const auto start = std::chrono::steady_clock::now();
  std::thread slow([&head, &fd] {  // a byte every 50 ms (~3 s), until the server closes
    for (char c : head) {
      if (!testing::WriteAll(fd.get(), &c, 1)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  EXPECT_EQ(testing::ReadToEof(fd.get()), "");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  slow.join();
  EXPECT_GE(elapsed, std::chrono::milliseconds(250));
  EXPECT_LT(elapsed, std::chrono::milliseconds(1500));
  stop = true;
  (*shard)->Join();
}

// A stop during --latency-ms: the reply still goes out, then the connection closes
// instead of waiting (idle timeout: 10 minutes) for a next request.
TEST(LookupServiceTest, AStopDuringTheLatencyEndsTheConnectionAfterItsReply) {
  LookupServerOptions o;
  const uint16_t port = testing::FreePort();
  o.listen = *SocketAddress::Parse("127.0.0.1:" + std::to_string(port));
  o.idle_timeout_ms = 600'000;
  o.latency_ms = 300;
  LookupServerStats stats;
  std::atomic<bool> stop{false};
  auto shard = StartServer(&o, &stats, &stop, port);
  ASSERT_TRUE(shard.ok());
  UniqueFd fd = Connect(port);  // reads time out after 5 s
  const std::string request =
      std::string("GET /service/extension/nginx-lookup HTTP/1.1\r\nHost: x\r\n") + kMail +
      "Auth-User: jd\r\nAuth-Protocol: imap\r\n\r\n";
  ASSERT_TRUE(testing::WriteAll(fd.get(), request.data(), request.size()));
  // Inside the latency: the request has been read (counted before the wait).
  for (int i = 0; i < 500 && stats.requests.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(stats.requests.load(), 1u);
  stop = true;
  EXPECT_EQ(lookup::ParseResponse(ReadReply(fd.get())).Find("Auth-Status"), "OK");
  char c;
  EXPECT_EQ(recv(fd.get(), &c, 1, 0), 0) << "no close: the connection waits for a request";
  (*shard)->Join();
}

// Beyond --max-connections a new connection is closed at once; a slot freed is reused.
TEST(LookupServiceTest, ConnectionsBeyondTheCapAreClosedAtOnce) {
  testing::Lookupd d;
  ASSERT_TRUE(d.Start({"--max-connections", "2"}));
  const std::string request =
      std::string("GET /service/extension/nginx-lookup HTTP/1.1\r\nHost: x\r\n") + kMail +
      "Auth-User: jd\r\nAuth-Protocol: imap\r\n\r\n";
  std::vector<UniqueFd> held;
  for (int i = 0; i < 2; ++i) {  // answered and kept alive: both slots are taken
    held.push_back(Connect(d.port()));
    ASSERT_TRUE(testing::WriteAll(held.back().get(), request.data(), request.size()));
    ASSERT_NE(ReadReply(held.back().get()), "");
  }
  UniqueFd over = Connect(d.port());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(testing::ReadToEof(over.get()), "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  held.pop_back();  // frees a slot once lookupd has seen the close
  std::string reply;
  for (int i = 0; i < 100 && reply.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    UniqueFd again = Connect(d.port());
    if (testing::WriteAll(again.get(), request.data(), request.size()))
      reply = ReadReply(again.get());
  }
  EXPECT_EQ(lookup::ParseResponse(reply).Find("Auth-Status"), "OK") << reply;
}

TEST(LookupServiceTest, GssapiNeedsAdminCredentialsAndGetsAToken) {
  auto dir = Dir();
  Decision no = Ask(*dir,
                    "Auth-Method: gssapi\r\nAuth-User: john\r\nAuth-Protocol: imap\r\n"
                    "Auth-ID: john@EXAMPLE.COM\r\n");
  EXPECT_FALSE(no.ok);
  Decision yes = Ask(*dir,
                     "Auth-Method: gssapi\r\nAuth-User: john\r\nAuth-Protocol: imap\r\n"
                     "Auth-ID: john@EXAMPLE.COM\r\nAuth-Admin-User: zmnginx\r\n"
                     "Auth-Admin-Pass: pw\r\nX-Proxy-IP: 127.0.0.1\r\n");
  ASSERT_TRUE(yes.ok) << yes.status;
  EXPECT_EQ(yes.auth_id, "john@example.com");
  EXPECT_EQ(yes.auth_pass, "token-11111111-aaaa-4bbb-8ccc-000000000001");
}

// An address lookupd cannot have (another lookupd holds it: SO_REUSEPORT would share
// it silently) ends the process with an error, rather than leave it running unbound.
TEST(LookupServiceTest, AnAddressInUseEndsLookupdWithAnError) {
  testing::Lookupd first;
  ASSERT_TRUE(first.Start());
  const std::string command = std::string("timeout 10 ") + getenv("LOOKUPD_BIN") + " --routes " +
                              getenv("LOOKUPD_ROUTES") + " --listen " + first.address() +
                              " > /dev/null 2>&1";
  const int status = system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << "124: still running after 10 s";
}

TEST(LookupServiceTest, RoutesFileErrorsNameTheLine) {
  auto bad = Directory::Parse("[[account]]\nname = \"x@y\"\nserver = \"nope\"\n", "r.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(std::string(bad.status().message()), "r.toml:1: unknown server 'nope'");
}

// A misspelt key or a value of another type would read as absent: --check passed a file
// whose servers offered no port, or whose Auth-Wait was the default.
TEST(LookupServiceTest, UnknownKeysAndWrongTypesFailTheLoadNamingTheLine) {
  const std::string server = "[[server]]\nname = \"m\"\naddress = \"10.0.0.1\"\n";  // lines 1-3
  struct Case {
    std::string text;
    std::string error;
  };
  const Case cases[] = {
      {"auth_wait_s = \"3\"\n", "r.toml:1: auth_wait_s: expected an integer"},
      {"default_domian = \"x.org\"\n", "r.toml:1: unknown key 'default_domian'"},
      {server + "imap = \"18143\"\n", "r.toml:4: server.imap: expected an integer"},
      {server + "imaps = 993\n", "r.toml:4: server: unknown key 'imaps'"},
      {server + "[[account]]\nname = \"a@x.org\"\nserver = \"m\"\nadmin = \"true\"\n",
       "r.toml:7: account.admin: expected a boolean"},
      {server + "[[account]]\nname = \"a@x.org\"\nserver = \"m\"\naliases = [1]\n",
       "r.toml:7: account.aliases: expected an array of strings"},
      {"[[domain]]\nname = \"x.org\"\nvirtual_ip = [\"10.0.0.1\"]\n",
       "r.toml:3: domain: unknown key 'virtual_ip'"},
      {server + "[[account_range]]\ndomain = \"x.org\"\ncount = \"5\"\nserver = \"m\"\n",
       "r.toml:6: account_range.count: expected an integer"},
      {"server = 1\n", "r.toml:1: server: expected an array of tables"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    auto d = Directory::Parse(c.text, "r.toml");
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(std::string(d.status().message()), c.error);
  }
  // Server names are case-insensitive, as account names and domains are.
  EXPECT_TRUE(Directory::Parse("[[server]]\nname = \"MBOX1\"\naddress = \"10.0.0.1\"\n"
                               "[[account]]\nname = \"a@x.org\"\nserver = \"mbox1\"\n",
                               "r.toml")
                  .ok());
}

// A name, alias, id or server given twice would silently route to whichever came last.
TEST(LookupServiceTest, DuplicateNamesFailTheLoadNamingTheLine) {
  const std::string head =
      "[[server]]\nname = \"m\"\naddress = \"10.0.0.1\"\n"              // lines 1-3
      "[[account]]\nname = \"a@x.org\"\nid = \"1\"\nserver = \"m\"\n";  // lines 4-7
  struct Case {
    std::string tail;
    std::string error;
  };
  const Case cases[] = {
      {"[[account]]\nname = \"A@x.org\"\nserver = \"m\"\n",
       "r.toml:8: duplicate name 'a@x.org' (already account a@x.org)"},
      {"[[account]]\nname = \"b@x.org\"\nserver = \"m\"\naliases = [\"a@x.org\"]\n",
       "r.toml:8: duplicate name 'a@x.org' (already account a@x.org)"},
      {"[[account]]\nname = \"b@x.org\"\nserver = \"m\"\naliases = [\"b@x.org\"]\n",
       "r.toml:8: duplicate name 'b@x.org' (already account b@x.org)"},
      {"[[account]]\nname = \"b@x.org\"\nid = \"1\"\nserver = \"m\"\n",
       "r.toml:8: duplicate id '1' (already account a@x.org)"},
      {"[[account_range]]\nprefix = \"a\"\ndomain = \"x.org\"\ncount = 2\nserver = \"m\"\n"
       "[[account]]\nname = \"a2@x.org\"\nserver = \"m\"\n",
       "r.toml:8: duplicate name 'a2@x.org' (already account a2@x.org)"},
      {"[[server]]\nname = \"m\"\naddress = \"10.0.0.2\"\n", "r.toml:8: duplicate server 'm'"},
  };
  // ([[account]] tables load before [[account_range]] ones: the range is the repeat.)
  for (const Case& c : cases) {
    SCOPED_TRACE(c.tail);
    auto d = Directory::Parse(head + c.tail, "r.toml");
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(std::string(d.status().message()), c.error);
  }
  EXPECT_TRUE(Directory::Parse(head + "[[account]]\nname = \"b@x.org\"\nserver = \"m\"\n"
                                      "aliases = [\"c@x.org\"]\n",
                               "r.toml")
                  .ok());
}

}  // namespace
}  // namespace ringproxy
