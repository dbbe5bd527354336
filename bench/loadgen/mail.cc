// imap-login and pop3-login: the login storm of a mail edge. Each operation is a
// fresh connection: greeting, login, logout, close; latency runs from the connect (or
// from the scheduled start, in open loop) to the server accepting the login. With
// --tls (IMAPS, POP3S) each connection starts with a TLS handshake, inside the latency.
#include <memory>

#include "bench/loadgen/conn.h"
#include "bench/loadgen/loadgen.h"
#include "bench/loadgen/tls_client.h"
#include "core/ops.h"
#include "core/sync.h"
#include "fmt/format.h"

namespace ringproxy::loadgen {
namespace {

constexpr size_t kLineMax = 8192;

std::pair<std::string, std::string> UserFor(const Options& o, uint64_t n) {
  if (!o.users.empty()) return o.users[n % o.users.size()];
  return {fmt::format("{}{}", o.user, n % static_cast<uint64_t>(o.users_count) + 1), o.password};
}

// IMAP quoted string (RFC 3501): backslash-escape quote and backslash.
std::string Quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string Excerpt(std::string_view line) {
  std::string s(line.substr(0, 40));
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return s;
}

// BufferedConn's line interface over a TLS connection (--tls): lines are copied out of
// the stream's plaintext (a line may span records).
class TlsLineConn {
 public:
  explicit TlsLineConn(ByteStream* stream) : stream_(stream) {}

  Task<IoResult> ReadLine(std::string* line, size_t max, Deadline deadline) {
    line->clear();
    for (;;) {
      std::span<const std::byte> p = stream_->Peek();
      const std::string_view v(reinterpret_cast<const char*>(p.data()), p.size());
      const size_t nl = v.find('\n');
      const size_t take = nl == std::string_view::npos ? v.size() : nl + 1;
      line->append(v.substr(0, take));
      stream_->Consume(take);
      if (nl != std::string_view::npos) {
        line->pop_back();
        if (!line->empty() && line->back() == '\r') line->pop_back();
        co_return IoResult{static_cast<int32_t>(line->size())};
      }
      if (line->size() > max) co_return IoResult{-EPROTO};
      IoResult r = co_await stream_->Fill(deadline);
      if (r.res == 0) eof_ = true;
      if (r.res <= 0) co_return r;
    }
  }
  Task<IoResult> Write(std::string_view data, Deadline deadline) {
    return WriteAll(stream_, AsBytes(data), deadline);
  }
  bool eof() const { return eof_; }

 private:
  ByteStream* stream_;
  bool eof_ = false;
};

// Reads lines until the one tagged `tag`; returns it (or an error text). `deadline` is
// the session's: a target that keeps sending untagged lines cannot hold it longer.
template <typename Conn>
Task<bool> ReadTagged(ThreadContext* ctx, Conn* conn, std::string_view tag, std::string_view what,
                      Deadline deadline, std::string* line) {
  for (;;) {
    IoResult r = co_await conn->ReadLine(line, kLineMax, deadline);
    if (conn->eof()) {
      ctx->stats.Error(fmt::format("imap {}: connection closed", what), 0);
      co_return false;
    }
    if (!r.ok()) {
      ctx->stats.Error(fmt::format("imap {}", what), r.error());
      co_return false;
    }
    if (line->size() > tag.size() && line->compare(0, tag.size(), tag) == 0 &&
        (*line)[tag.size()] == ' ') {
      co_return true;
    }
  }
}

// One IMAP session on a fresh connection; false when it failed (counted already). The
// whole dialogue has one --io-timeout deadline; the latency is the login's, recorded
// once the session ended well.
template <typename Conn>
Task<bool> ImapSession(ThreadContext* ctx, Conn* conn, std::string user, std::string pass,
                       int64_t intended, std::string* line) {
  const Deadline deadline = IoDeadline(ctx);
  IoResult r = co_await conn->ReadLine(line, kLineMax, deadline);
  if (!r.ok() || conn->eof() || line->rfind("* OK", 0) != 0) {
    ctx->stats.Error(
        r.ok() ? fmt::format("imap greeting: '{}'", Excerpt(*line)) : std::string("imap greeting"),
        r.ok() ? 0 : r.error());
    co_return false;
  }
  std::string login = fmt::format("a LOGIN {} {}\r\n", Quoted(user), Quoted(pass));
  const IoResult sent = co_await conn->Write(login, deadline);
  if (!sent.ok()) {
    ctx->stats.Error("imap login: send failed", 0);
    co_return false;
  }
  ctx->stats.bytes_sent += login.size();
  if (!co_await ReadTagged(ctx, conn, "a", "login", deadline, line)) co_return false;
  if (line->rfind("a OK", 0) != 0) {
    ctx->stats.Error(fmt::format("imap login rejected: '{}'", Excerpt(*line)), 0);
    co_return false;
  }
  const int64_t logged_in = MonotonicNowNs();
  static constexpr std::string_view kLogout = "b LOGOUT\r\n";
  const IoResult logout = co_await conn->Write(kLogout, deadline);
  if (!logout.ok()) {
    ctx->stats.Error("imap logout: send failed", 0);
    co_return false;
  }
  if (!co_await ReadTagged(ctx, conn, "b", "logout", deadline, line)) co_return false;
  if (line->rfind("b OK", 0) != 0) {
    ctx->stats.Error(fmt::format("imap logout: '{}'", Excerpt(*line)), 0);
    co_return false;
  }
  ctx->stats.latency_ns.Record(static_cast<uint64_t>(logged_in - intended));
  co_return true;
}

// One POP3 exchange: send `command`, expect a +OK line.
template <typename Conn>
Task<bool> Pop3Step(ThreadContext* ctx, Conn* conn, std::string_view command, std::string_view what,
                    Deadline deadline, std::string* line) {
  if (!command.empty()) {
    const IoResult sent = co_await conn->Write(command, deadline);
    if (!sent.ok()) {
      ctx->stats.Error(fmt::format("pop3 {}: send failed", what), 0);
      co_return false;
    }
    ctx->stats.bytes_sent += command.size();
  }
  IoResult r = co_await conn->ReadLine(line, kLineMax, deadline);
  if (conn->eof()) {
    ctx->stats.Error(fmt::format("pop3 {}: connection closed", what), 0);
    co_return false;
  }
  if (!r.ok()) {
    ctx->stats.Error(fmt::format("pop3 {}", what), r.error());
    co_return false;
  }
  if (line->rfind("+OK", 0) != 0) {
    ctx->stats.Error(fmt::format("pop3 {}: '{}'", what, Excerpt(*line)), 0);
    co_return false;
  }
  co_return true;
}

template <typename Conn>
Task<bool> Pop3Session(ThreadContext* ctx, Conn* conn, std::string user, std::string pass,
                       int64_t intended, std::string* line) {
  const Deadline deadline = IoDeadline(ctx);  // the whole dialogue's, as for IMAP
  if (!co_await Pop3Step(ctx, conn, "", "greeting", deadline, line)) co_return false;
  if (!co_await Pop3Step(ctx, conn, fmt::format("USER {}\r\n", user), "user", deadline, line)) {
    co_return false;
  }
  if (!co_await Pop3Step(ctx, conn, fmt::format("PASS {}\r\n", pass), "pass", deadline, line)) {
    co_return false;
  }
  const int64_t logged_in = MonotonicNowNs();
  if (!co_await Pop3Step(ctx, conn, "QUIT\r\n", "quit", deadline, line)) co_return false;
  ctx->stats.latency_ns.Record(static_cast<uint64_t>(logged_in - intended));
  co_return true;
}

// One login over `conn` (IMAP or POP3); false when it failed (counted already).
template <typename Conn>
Task<bool> Session(ThreadContext* ctx, Conn* conn, bool imap, std::string user, std::string pass,
                   int64_t intended, std::string* line) {
  bool ok;  // not ?: with co_await in the arms (core/task.h)
  if (imap) {
    ok = co_await ImapSession(ctx, conn, std::move(user), std::move(pass), intended, line);
  } else {
    ok = co_await Pop3Session(ctx, conn, std::move(user), std::move(pass), intended, line);
  }
  co_return ok;
}

// --tls: the handshake (offering the slot's session with --resume), the login, close.
Task<bool> TlsSession(ThreadContext* ctx, UniqueFd fd, int slot, bool imap, std::string user,
                      std::string pass, int64_t intended, std::string* line) {
  std::unique_ptr<TlsConnection> tls = co_await ctx->tls->Handshake(ctx, std::move(fd), slot);
  if (tls == nullptr) co_return false;  // counted by Handshake
  TlsLineConn conn(&tls->stream());
  const bool ok =
      co_await Session(ctx, &conn, imap, std::move(user), std::move(pass), intended, line);
  if (ok && ctx->options->resume) ctx->tls->KeepSession(tls.get(), slot);
  co_await tls->Close();
  co_return ok;
}

Task<void> Logins(ThreadContext* ctx, int index, uint64_t* remaining, bool imap, Gate::Holder) {
  Pacer pacer(ctx, index);
  // Connection g of all threads' (g = index * threads + thread) starts 7919 * g accounts
  // in: starts 81 apart modulo 1000, whatever the thread count, so that 32 connections
  // of 100 logins each reach every one of 1000 accounts (bench/run's warm-up).
  const uint64_t g = static_cast<uint64_t>(index) * static_cast<uint64_t>(ctx->options->threads) +
                     static_cast<uint64_t>(ctx->index);
  uint64_t n = g * 7919u;
  std::string line;
  BufferedConn conn(UniqueFd{}, 16384);
  while (KeepGoing(ctx, pacer, remaining)) {
    const int64_t intended = co_await pacer.Next();
    UniqueFd fd = co_await ConnectTarget(ctx);
    if (!fd.valid()) {
      co_await Sleep(Deadline::AfterMs(10));
      continue;
    }
    auto [user, pass] = UserFor(*ctx->options, n++);
    bool ok;
    if (ctx->tls != nullptr) {
      ok = co_await TlsSession(ctx, std::move(fd), index, imap, std::move(user), std::move(pass),
                               intended, &line);
    } else {
      conn.Reset(std::move(fd));
      ok = co_await Session(ctx, &conn, imap, std::move(user), std::move(pass), intended, &line);
      conn.Reset(UniqueFd{});  // closed now, as the session ends
    }
    if (ok) ++ctx->stats.ops;
  }
}

Task<void> RunLogins(ThreadContext* ctx, bool imap) {
  Gate gate;
  uint64_t remaining = ctx->count;
  for (int i = 0; i < ctx->connections; ++i) Spawn(Logins(ctx, i, &remaining, imap, gate.Enter()));
  co_await gate.Wait();
}

}  // namespace

Task<void> RunImapLogin(ThreadContext* ctx) { co_await RunLogins(ctx, true); }
Task<void> RunPop3Login(ThreadContext* ctx) { co_await RunLogins(ctx, false); }

}  // namespace ringproxy::loadgen
