// What the mail dialogue tests share: an upgrader that hands STARTTLS / STLS over to a
// second scripted stream (what the client says inside TLS), and base64.
#pragma once

#include <string>
#include <string_view>

#include "proto/mail_login.h"
#include "proto/sasl/sasl.h"
#include "tests/core/scripted_stream.h"

namespace ringproxy::testing {

class FakeUpgrader final : public mail::TlsUpgrader {
 public:
  explicit FakeUpgrader(ScriptedStream* secured) : secured_(secured) {}
  Task<ByteStream*> Upgrade(ByteStream* plain) override {
    ++upgrades;
    // What a real upgrade would feed to the TLS handshake: must be nothing, since
    // plaintext pipelined behind STARTTLS/STLS is dropped.
    left_in_plain = plain->buffered();
    co_return secured_;
  }
  int upgrades = 0;
  size_t left_in_plain = 0;

 private:
  ScriptedStream* secured_;
};

inline std::string B64(std::string_view s) {
  std::string out;
  sasl::Base64Encode(s, &out);
  return out;
}

}  // namespace ringproxy::testing
