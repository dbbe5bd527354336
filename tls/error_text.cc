#include "tls/error_text.h"

// options.h first: it carries the build's feature macros and struct layout choices.
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "absl/strings/str_cat.h"
#include "tls/context_setup.h"

namespace ringproxy {

namespace {

// wolfSSL_X509_verify_cert_error_string does not know the X509_V_ERR numbers it stores
// (it looks them up among its own error codes), so the common ones are named here.
const char* VerifyResultText(long code) {
  switch (code) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return "issuer not trusted";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return "bad signature";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "not yet valid";
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "expired";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return "self-signed";
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
      return "chain too long";
    case X509_V_ERR_INVALID_CA:
      return "issuer is not a CA";
    default:
      return nullptr;
  }
}

}  // namespace

std::string TlsErrorText(WOLFSSL* ssl, int ret) {
  if (ssl == nullptr) return "no session";
  int error = wolfSSL_get_error(ssl, ret);
  switch (error) {
    case WOLFSSL_ERROR_NONE:
      return "no error";
    case WOLFSSL_ERROR_WANT_READ:
      return "want read";
    case WOLFSSL_ERROR_WANT_WRITE:
      return "want write";
    case WOLFSSL_ERROR_ZERO_RETURN:
      return "peer sent close_notify";
    default:
      break;
  }
  std::string text = tls::WolfErrorText(error);
  long verify = wolfSSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    const char* why = VerifyResultText(verify);
    absl::StrAppend(&text, "; certificate ", why != nullptr ? why : "error", " (X509_V_ERR ",
                    verify, ")");
  }
  WOLFSSL_ALERT_HISTORY alerts;
  if (wolfSSL_get_alert_history(ssl, &alerts) == WOLFSSL_SUCCESS) {
    // Codes start at -1 ("none"); close_notify (0) is not a reason.
    if (alerts.last_rx.code > 0) {
      absl::StrAppend(&text, "; received alert ",
                      wolfSSL_alert_desc_string_long(alerts.last_rx.code));
    }
    if (alerts.last_tx.code > 0) {
      absl::StrAppend(&text, "; sent alert ", wolfSSL_alert_desc_string_long(alerts.last_tx.code));
    }
  }
  return text;
}

}  // namespace ringproxy
