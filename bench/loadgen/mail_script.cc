#include "bench/loadgen/mail_script.h"

#include <algorithm>
#include <charconv>

namespace ringproxy::loadgen {
namespace {

constexpr std::string_view kImapCapabilities = "IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN";

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  }
  return out;
}

// The first word of `s` and what follows the space after it ("" when nothing does).
std::pair<std::string_view, std::string_view> SplitWord(std::string_view s) {
  const size_t sp = s.find(' ');
  if (sp == std::string_view::npos) return {s, {}};
  return {s.substr(0, sp), s.substr(sp + 1)};
}

// A literal header "{n}" or "{n+}" ending the line: its size and whether it is
// non-synchronising. false when the line does not end in one.
bool LiteralAtEnd(std::string_view line, uint64_t* size, bool* plus) {
  if (line.empty() || line.back() != '}') return false;
  const size_t open = line.rfind('{');
  if (open == std::string_view::npos) return false;
  std::string_view digits = line.substr(open + 1, line.size() - open - 2);
  *plus = !digits.empty() && digits.back() == '+';
  if (*plus) digits.remove_suffix(1);
  if (digits.empty()) return false;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *size);
  return ec == std::errc() && end == digits.data() + digits.size();
}

}  // namespace

std::string_view ScriptedMailServer::Greeting() const {
  if (protocol_ == Protocol::kImap) {
    return "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN] scripted upstream ready\r\n";
  }
  return "+OK scripted upstream ready\r\n";
}

size_t ScriptedMailServer::Feed(std::string_view in, std::string* out) {
  size_t used = 0;
  while (!closing_ && used < in.size()) {
    if (literal_left_ > 0) {
      const uint64_t n = std::min<uint64_t>(literal_left_, in.size() - used);
      used += n;
      literal_left_ -= n;
      continue;
    }
    const std::string_view rest = in.substr(used);
    const size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) {
      if (rest.size() > kLineBytesMax) {
        out->append(protocol_ == Protocol::kImap ? "* BYE line too long\r\n"
                                                 : "-ERR line too long\r\n");
        closing_ = true;
      }
      break;
    }
    std::string_view line = rest.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    used += nl + 1;
    if (protocol_ == Protocol::kImap) {
      ImapLine(line, out);
    } else {
      Pop3Line(line, out);
    }
  }
  return used;
}

void ScriptedMailServer::ImapLine(std::string_view line, std::string* out) {
  if (sasl_response_) {
    sasl_response_ = false;
    out->append(tag_);
    out->append(line == "*" ? " BAD AUTHENTICATE cancelled\r\n"
                            : " OK [CAPABILITY IMAP4rev1 LITERAL+ ID] Logged in\r\n");
    return;
  }
  if (!in_command_) {
    auto [tag, rest] = SplitWord(line);
    auto [name, arguments] = SplitWord(rest);
    if (tag.empty() || name.empty()) {
      out->append("* BAD expected a tag and a command\r\n");
      return;
    }
    tag_.assign(tag);
    command_ = Upper(name);
    // AUTHENTICATE PLAIN <initial response>: a second argument after the mechanism.
    has_argument_ = arguments.find(' ') != std::string_view::npos;
  }
  bool plus = false;
  if (LiteralAtEnd(line, &literal_left_, &plus)) {
    in_command_ = true;
    if (!plus) out->append("+ go ahead\r\n");
    return;
  }
  in_command_ = false;
  ImapCommand(out);
}

void ScriptedMailServer::ImapCommand(std::string* out) {
  const std::string& t = tag_;
  if (command_ == "CAPABILITY") {
    out->append("* CAPABILITY ").append(kImapCapabilities).append("\r\n");
    out->append(t).append(" OK CAPABILITY completed\r\n");
  } else if (command_ == "ID") {
    out->append("* ID NIL\r\n").append(t).append(" OK ID completed\r\n");
  } else if (command_ == "LOGIN") {
    out->append(t).append(" OK [CAPABILITY IMAP4rev1 LITERAL+ ID] Logged in\r\n");
  } else if (command_ == "AUTHENTICATE") {
    if (has_argument_) {
      out->append(t).append(" OK [CAPABILITY IMAP4rev1 LITERAL+ ID] Logged in\r\n");
    } else {
      out->append("+ \r\n");
      sasl_response_ = true;
    }
  } else if (command_ == "LOGOUT") {
    out->append("* BYE Logging out\r\n").append(t).append(" OK Logout completed\r\n");
    closing_ = true;
  } else {
    out->append(t).append(" OK ").append(command_).append(" completed\r\n");
  }
}

void ScriptedMailServer::Pop3Line(std::string_view line, std::string* out) {
  if (sasl_response_) {
    sasl_response_ = false;
    out->append(line == "*" ? "-ERR AUTH cancelled\r\n" : "+OK Logged in.\r\n");
    return;
  }
  auto [word, argument] = SplitWord(line);
  const std::string command = Upper(word);
  if (command == "USER" || command == "XOIP" || command == "NOOP") {
    out->append("+OK\r\n");
  } else if (command == "PASS") {
    out->append("+OK Logged in.\r\n");
  } else if (command == "AUTH") {
    if (argument.empty()) {
      out->append("+OK\r\nPLAIN\r\n.\r\n");
    } else if (argument.find(' ') != std::string_view::npos) {
      out->append("+OK Logged in.\r\n");  // AUTH PLAIN <initial response>
    } else {
      out->append("+ \r\n");
      sasl_response_ = true;
    }
  } else if (command == "CAPA") {
    out->append("+OK\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN\r\n.\r\n");
  } else if (command == "STAT") {
    out->append("+OK 0 0\r\n");
  } else if (command == "QUIT") {
    out->append("+OK Logging out.\r\n");
    closing_ = true;
  } else {
    out->append("+OK\r\n");
  }
}

}  // namespace ringproxy::loadgen
