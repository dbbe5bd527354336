#include "proto/pop3/upstream_login.h"

#include "core/bounded_reader.h"

namespace ringproxy::pop3 {

namespace {

using mail::UpstreamLoginOutcome;
using Status = mail::UpstreamLoginStatus;

class Exchange {
 public:
  Exchange(ByteStream* upstream, const UpstreamLoginSettings* settings,
           const UpstreamLoginRequest* request)
      : upstream_(upstream),
        settings_(*settings),
        request_(*request),
        reader_(upstream, settings->line_bytes_max, LineEnding::kLf),
        deadline_(Deadline::AfterMs(settings->timeout_ms)) {}

  Task<UpstreamLoginOutcome> Run();

 private:
  enum class Answer : uint8_t { kOk, kErr, kContinue, kEnded };
  // Sends `command` (with its CRLF) and reads one answer line into outcome_.reply_line.
  Task<Answer> Ask(std::string command);

  ByteStream* upstream_;
  const UpstreamLoginSettings& settings_;
  const UpstreamLoginRequest& request_;
  BoundedReader reader_;
  // One for the whole exchange, as for IMAP: a server answering each step just in time
  // must not hold the login for a timeout per step.
  const Deadline deadline_;
  UpstreamLoginOutcome outcome_;
};

Task<Exchange::Answer> Exchange::Ask(std::string command) {
  const Deadline deadline = deadline_;
  if (!command.empty()) {
    std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(command.data()),
                                     command.size());
    IoResult w = co_await WriteAll(upstream_, bytes, deadline);
    if (!w.ok()) {
      outcome_.status = w.cancelled() ? Status::kStopped : Status::kStreamError;
      co_return Answer::kEnded;
    }
  }
  std::string_view line;
  ReadStatus s = co_await reader_.ReadLine(deadline, &line);
  if (s != ReadStatus::kOk) {
    outcome_.status = mail::UpstreamStatusOf(s);
    co_return Answer::kEnded;
  }
  outcome_.reply_line = std::string(line) + "\r\n";
  if (line.starts_with("+OK")) co_return Answer::kOk;
  if (line.starts_with("+")) co_return Answer::kContinue;
  if (line.starts_with("-ERR")) co_return Answer::kErr;
  outcome_.status = Status::kProtocolError;
  co_return Answer::kEnded;
}

Task<UpstreamLoginOutcome> Exchange::Run() {
  const mail::Credentials& c = *request_.credentials;
  Answer greeting = co_await Ask(std::string());
  if (greeting == Answer::kEnded) co_return outcome_;
  if (greeting != Answer::kOk) {
    outcome_.status = Status::kBadGreeting;
    co_return outcome_;
  }
  if (settings_.send_xoip) {
    Answer a = co_await Ask("XOIP " + request_.client_ip + "\r\n");
    if (a == Answer::kEnded) co_return outcome_;
    if (a != Answer::kOk) {
      outcome_.status = Status::kIdFailed;
      co_return outcome_;
    }
  }
  // A value with CR or LF cannot travel in a POP3 line.
  if (mail::HasControl(request_.login) || c.password.find_first_of("\r\n") != std::string::npos) {
    outcome_.status = Status::kProtocolError;
    co_return outcome_;
  }
  // Only -ERR refuses the login; an answer of the wrong kind ("+OK" to AUTH, "+ " to
  // USER or to the password) is a server out of step: an internal error, not a refused
  // password that would hold the client for Auth-Wait and forget its route.
  const auto wrong = [](Answer a) {
    return a == Answer::kErr ? Status::kRefused : Status::kProtocolError;
  };
  Answer last = Answer::kEnded;
  if (c.mechanism == mail::Mechanism::kAuthenticatePlain) {
    Answer a = co_await Ask("AUTH PLAIN\r\n");
    if (a == Answer::kEnded) co_return outcome_;
    if (a != Answer::kContinue) {
      outcome_.status = wrong(a);
      co_return outcome_;
    }
    std::string response = mail::UpstreamPlainResponse(c, request_.login, request_.authzid_login);
    last = co_await Ask(response + "\r\n");
  } else {
    Answer a = co_await Ask("USER " + request_.login + "\r\n");
    if (a == Answer::kEnded) co_return outcome_;
    if (a != Answer::kOk) {
      outcome_.status = wrong(a);
      co_return outcome_;
    }
    last = co_await Ask("PASS " + c.password + "\r\n");
  }
  if (last == Answer::kEnded) co_return outcome_;
  outcome_.status = last == Answer::kOk ? Status::kOk : wrong(last);
  // Anything the server sent behind its reply follows it to the client, in order.
  outcome_.reply_line += reader_.Release();
  co_return outcome_;
}

}  // namespace

Task<UpstreamLoginOutcome> LoginUpstream(ByteStream* upstream,
                                         const UpstreamLoginSettings* settings,
                                         const UpstreamLoginRequest* request) {
  Exchange e(upstream, settings, request);
  UpstreamLoginOutcome outcome = co_await e.Run();
  co_return outcome;
}

}  // namespace ringproxy::pop3
