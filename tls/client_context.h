// Upstream TLS: ready-to-use client sessions (WOLFSSL*) for one upstream group, with the
// product's policy (tls/context_setup.h), SNI, ALPN and, when verify is on, the
// upstream's chain checked against the CA file and its name against server_name. No
// socket I/O: the caller sets the session's I/O callbacks and drives wolfSSL_connect.
//
// TlsClientContext is immutable and built on the control thread (the CA file is read
// and parsed there: a broken CA file is a start/reload error); TlsClientShardContext is
// per shard and owns the WOLFSSL_CTX its sessions are made from. Sessions keep a
// reference on that CTX (wolfSSL_new), so a shard context may go away before them.
//
// A refused upstream certificate fails wolfSSL_connect; TlsErrorText (tls/error_text.h)
// says why, e.g. for an unknown CA "certificate verify failed (-188); certificate issuer
// not trusted (X509_V_ERR 20); sent alert unknown_ca", for a wrong name "... name
// mismatch (-322) ...".
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "tls/settings.h"

struct WOLFSSL;
struct WOLFSSL_CTX;

namespace ringproxy {

class TlsClientContext {
 public:
  // Checks the settings and loads the CA file (or the system's CAs when empty).
  static absl::StatusOr<std::shared_ptr<const TlsClientContext>> Create(
      const TlsClientSettings& settings);
  const TlsClientSettings& settings() const { return settings_; }

 private:
  friend class TlsClientShardContext;
  TlsClientContext() = default;
  TlsClientSettings settings_;
  bool sni_ = false;       // server_name is a host name, not an IP address
  std::string alpn_list_;  // comma-separated, for wolfSSL_UseALPN
};

class TlsClientShardContext {
 public:
  static absl::StatusOr<std::unique_ptr<TlsClientShardContext>> Create(
      std::shared_ptr<const TlsClientContext> context);
  ~TlsClientShardContext();
  TlsClientShardContext(const TlsClientShardContext&) = delete;
  TlsClientShardContext& operator=(const TlsClientShardContext&) = delete;

  // A client session with SNI, ALPN and the name check set; the caller sets its I/O
  // callbacks and frees it with wolfSSL_free. nullptr (with a log line) when wolfSSL
  // cannot make one.
  WOLFSSL* NewSession();

  const TlsClientContext& context() const { return *context_; }

 private:
  explicit TlsClientShardContext(std::shared_ptr<const TlsClientContext> context)
      : context_(std::move(context)) {}
  std::shared_ptr<const TlsClientContext> context_;
  WOLFSSL_CTX* ctx_ = nullptr;
};

}  // namespace ringproxy
