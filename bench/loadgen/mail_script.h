// The scripted IMAP / POP3 server of `loadgen imap-serve` and `loadgen pop3-serve`: the
// fast mail upstream of the mail benchmarks, so that what they measure is the proxy and
// not Dovecot's login. Pure: bytes in, reply bytes out, no I/O (the socket side is
// bench/loadgen/mail_serve.cc). It accepts every login (any user, any password) and
// answers just enough of each protocol for a proxy's upstream login and a client's
// logout:
//   IMAP: greeting, CAPABILITY, ID, NOOP, LOGIN (quoted strings, atoms and {n} / {n+}
//         literals, the synchronising ones answered with "+"), AUTHENTICATE PLAIN (with
//         an initial response or after "+ "), LOGOUT; any other command gets a tagged OK.
//   POP3: greeting, CAPA, USER, PASS, AUTH PLAIN (both forms), XOIP, NOOP, QUIT; any
//         other command gets +OK.
// It checks nothing a real server would (no passwords, no base64): a benchmark tool.
// Not a parser to copy: proto/imap and proto/pop3 are the real ones.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringproxy::loadgen {

class ScriptedMailServer {
 public:
  enum class Protocol : uint8_t { kImap, kPop3 };
  // A line longer than this (without literals) ends the session.
  static constexpr size_t kLineBytesMax = 8192;

  explicit ScriptedMailServer(Protocol protocol) : protocol_(protocol) {}

  // The greeting line, CRLF included.
  std::string_view Greeting() const;
  // Consumes what it can of `in` (whole lines; literal bytes as they come) and appends
  // the replies to *out. Returns the bytes consumed; the caller keeps the rest and
  // calls again with more appended.
  size_t Feed(std::string_view in, std::string* out);
  // After LOGOUT / QUIT (or a line too long): send *out, then close.
  bool closing() const { return closing_; }

 private:
  void ImapLine(std::string_view line, std::string* out);
  void ImapCommand(std::string* out);
  void Pop3Line(std::string_view line, std::string* out);

  Protocol protocol_;
  bool closing_ = false;
  // IMAP: the command being read (it may go on after literals).
  std::string tag_;
  std::string command_;        // upper case
  bool has_argument_ = false;  // AUTHENTICATE: an initial response came with it
  bool in_command_ = false;    // a literal ended the last line: the command continues
  uint64_t literal_left_ = 0;  // literal bytes still to skip
  // IMAP AUTHENTICATE / POP3 AUTH: the next line is the client's SASL response.
  bool sasl_response_ = false;
};

}  // namespace ringproxy::loadgen
