#include "tls/client_context.h"

// options.h first: it carries the build's feature macros and struct layout choices.
#include <arpa/inet.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "tls/context_setup.h"

namespace ringproxy {

namespace {

bool IsIpAddress(const std::string& name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

// Loads the trusted CAs into `ctx`: the CA file, or the system's store when none is set.
absl::Status LoadCas(WOLFSSL_CTX* ctx, const std::string& ca_file) {
  if (ca_file.empty()) {
    if (wolfSSL_CTX_load_system_CA_certs(ctx) != WOLFSSL_SUCCESS) {
      return absl::InvalidArgumentError(
          "verify is on, ca_file is empty and the system CA store could not be loaded");
    }
    return absl::OkStatus();
  }
  int ret = wolfSSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
  if (ret != WOLFSSL_SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ca_file '", ca_file, "': no usable PEM CA certificate: ", tls::WolfErrorText(ret)));
  }
  return absl::OkStatus();
}

absl::StatusOr<WOLFSSL_CTX*> NewClientCtx(const TlsClientSettings& settings, bool sni) {
  WOLFSSL_CTX* ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
  if (ctx == nullptr) return absl::ResourceExhaustedError("wolfSSL_CTX_new failed");
  absl::Status status = tls::ApplyPolicy(ctx, "upstream TLS");
  if (status.ok() && settings.verify) status = LoadCas(ctx, settings.ca_file);
  if (status.ok() && sni &&
      wolfSSL_CTX_UseSNI(ctx, WOLFSSL_SNI_HOST_NAME, settings.server_name.data(),
                         static_cast<unsigned short>(settings.server_name.size())) !=
          WOLFSSL_SUCCESS) {
    status = absl::InvalidArgumentError(
        absl::StrCat("server_name '", settings.server_name, "': wolfSSL refused it for SNI"));
  }
  if (!status.ok()) {
    wolfSSL_CTX_free(ctx);
    return status;
  }
  wolfSSL_CTX_set_verify(ctx, settings.verify ? WOLFSSL_VERIFY_PEER : WOLFSSL_VERIFY_NONE, nullptr);
  return ctx;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const TlsClientContext>> TlsClientContext::Create(
    const TlsClientSettings& settings) {
  std::shared_ptr<TlsClientContext> context(new TlsClientContext());
  context->settings_ = settings;
  // A fully qualified name's trailing dot is not part of the name: neither SNI (RFC 6066
  // 3) nor the certificate's names carry it.
  std::string& name = context->settings_.server_name;
  if (name.size() > 1 && name.back() == '.') name.pop_back();
  if (settings.verify && settings.server_name.empty()) {
    return absl::InvalidArgumentError(
        "verify is on but server_name is empty: the upstream's name could not be checked");
  }
  if (settings.server_name.size() > 253) {
    return absl::InvalidArgumentError("server_name longer than 253 bytes");
  }
  // RFC 6066 3: no IP literals in SNI. The name check still runs against the
  // certificate (IPv4 address entries match; this wolfSSL does not match IPv6 ones).
  context->sni_ = !name.empty() && !IsIpAddress(name);
  if (absl::Status s = tls::JoinAlpn(settings.alpn, &context->alpn_list_); !s.ok()) return s;
  // A trial CTX: a broken CA file is an error now, not at the first connection.
  absl::StatusOr<WOLFSSL_CTX*> ctx = NewClientCtx(context->settings_, context->sni_);
  if (!ctx.ok()) return ctx.status();
  wolfSSL_CTX_free(*ctx);
  return std::shared_ptr<const TlsClientContext>(std::move(context));
}

absl::StatusOr<std::unique_ptr<TlsClientShardContext>> TlsClientShardContext::Create(
    std::shared_ptr<const TlsClientContext> context) {
  if (context == nullptr) return absl::InvalidArgumentError("no TLS client context");
  absl::StatusOr<WOLFSSL_CTX*> ctx = NewClientCtx(context->settings_, context->sni_);
  if (!ctx.ok()) return ctx.status();
  std::unique_ptr<TlsClientShardContext> shard(new TlsClientShardContext(std::move(context)));
  shard->ctx_ = *ctx;
  return shard;
}

TlsClientShardContext::~TlsClientShardContext() {
  // Sessions hold their own references; the CTX is freed with the last of them.
  if (ctx_ != nullptr) wolfSSL_CTX_free(ctx_);
}

WOLFSSL* TlsClientShardContext::NewSession() {
  WOLFSSL* ssl = wolfSSL_new(ctx_);
  if (ssl == nullptr) {
    RP_LOG(kWarn, "tls: wolfSSL_new failed for an upstream session (out of memory?)");
    return nullptr;
  }
  const TlsClientSettings& s = context_->settings_;
  bool ok = !s.verify || wolfSSL_check_domain_name(ssl, s.server_name.c_str()) == WOLFSSL_SUCCESS;
  if (ok && !context_->alpn_list_.empty()) {
    ok = wolfSSL_UseALPN(ssl, const_cast<char*>(context_->alpn_list_.data()),
                         static_cast<unsigned int>(context_->alpn_list_.size()),
                         WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) == WOLFSSL_SUCCESS;
  }
  if (!ok) {
    RP_LOG(kWarn, "tls: cannot set up an upstream session (out of memory?)");
    wolfSSL_free(ssl);
    return nullptr;
  }
  wolfSSL_SetHsDoneCb(ssl, tls::TrimAfterHandshake, nullptr);
  return ssl;
}

}  // namespace ringproxy
