#include "tls/client_hello.h"

namespace ringproxy::tls {

namespace {

constexpr uint8_t kRecordHandshake = 22;
constexpr uint8_t kClientHello = 1;
constexpr size_t kRecordHeaderBytes = 5;
constexpr size_t kRecordPayloadMax = 16384 + 2048;  // TLSCiphertext bound (RFC 5246 6.2.3)

constexpr uint16_t kExtServerName = 0x0000;
constexpr uint16_t kExtSignatureAlgorithms = 0x000d;
constexpr uint16_t kExtSupportedVersions = 0x002b;

// Reads the payload of consecutive handshake records as one byte stream, skipping the
// record headers: a ClientHello may be split over records.
class HandshakeReader {
 public:
  HandshakeReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool Byte(uint8_t* out) {
    while (record_left_ == 0) {
      if (!NextRecord()) return false;
    }
    if (pos_ >= size_) return false;
    *out = data_[pos_++];
    --record_left_;
    ++consumed_;
    return true;
  }
  bool U16(uint16_t* out) {
    uint8_t a, b;
    if (!Byte(&a) || !Byte(&b)) return false;
    *out = static_cast<uint16_t>(a << 8 | b);
    return true;
  }
  bool U24(uint32_t* out) {
    uint8_t a, b, c;
    if (!Byte(&a) || !Byte(&b) || !Byte(&c)) return false;
    *out = static_cast<uint32_t>(a) << 16 | static_cast<uint32_t>(b) << 8 | c;
    return true;
  }
  bool Skip(size_t n) {
    uint8_t ignored;
    for (size_t i = 0; i < n; ++i) {
      if (!Byte(&ignored)) return false;
    }
    return true;
  }
  // Handshake bytes read so far (record headers not counted).
  size_t consumed() const { return consumed_; }

 private:
  bool NextRecord() {
    if (size_ - pos_ < kRecordHeaderBytes) return false;
    const uint8_t* h = data_ + pos_;
    size_t length = static_cast<size_t>(h[3]) << 8 | h[4];
    if (h[0] != kRecordHandshake || h[1] != 3 || length == 0 || length > kRecordPayloadMax) {
      return false;
    }
    pos_ += kRecordHeaderBytes;
    record_left_ = length;
    return true;
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  size_t record_left_ = 0;
  size_t consumed_ = 0;
};

void NoteSuite(uint16_t suite, ClientHelloInfo* info) {
  switch (suite) {
    case 0xc02b:  // ECDHE-ECDSA-AES128-GCM-SHA256
    case 0xc02c:  // ECDHE-ECDSA-AES256-GCM-SHA384
    case 0xcca9:  // ECDHE-ECDSA-CHACHA20-POLY1305
      info->ecdsa_suite = true;
      break;
    case 0xc02f:  // ECDHE-RSA-AES128-GCM-SHA256
    case 0xc030:  // ECDHE-RSA-AES256-GCM-SHA384
    case 0xcca8:  // ECDHE-RSA-CHACHA20-POLY1305
      info->rsa_suite = true;
      break;
    default:
      break;
  }
}

void NoteScheme(uint16_t scheme, ClientHelloInfo* info) {
  if (scheme == 0x0403) info->ecdsa_p256_sha256 = true;
  if (scheme == 0x0503) info->ecdsa_p384_sha384 = true;
  if (scheme == 0x0603) info->ecdsa_p521_sha512 = true;
  // TLS 1.2 pairs (hash, signature): signature 3 is ECDSA, 1 is RSA PKCS#1.
  if (scheme >> 8 <= 6 && (scheme & 0xff) == 3) info->ecdsa_any = true;
  if (scheme >> 8 <= 6 && (scheme & 0xff) == 1) info->rsa_pkcs1 = true;
  if ((scheme >= 0x0804 && scheme <= 0x0806) || (scheme >= 0x0809 && scheme <= 0x080b)) {
    info->rsa_pss = true;
  }
}

// A list of `item_bytes`-sized items behind a length of `length_bytes`, all within
// `limit` bytes. Calls `note` for each 2-byte item (1-byte items are skipped).
template <typename Note>
bool ReadList(HandshakeReader* r, int length_bytes, size_t limit, Note note) {
  uint16_t length = 0;
  if (length_bytes == 1) {
    uint8_t l;
    if (!r->Byte(&l)) return false;
    length = l;
  } else if (!r->U16(&length)) {
    return false;
  }
  if (static_cast<size_t>(length) + length_bytes > limit || length % 2 != 0) return false;
  for (size_t i = 0; i < length; i += 2) {
    uint16_t item;
    if (!r->U16(&item)) return false;
    note(item);
  }
  return true;
}

// RFC 6066 §3: a list of (type, name); only the first entry is read, as wolfSSL does
// (one name per type), and only a host_name (type 0) counts.
bool ReadServerName(HandshakeReader* r, size_t limit, ClientHelloInfo* info) {
  uint16_t list, length;
  uint8_t type;
  if (limit < 5 || !r->U16(&list) || static_cast<size_t>(list) + 2 != limit || !r->Byte(&type) ||
      !r->U16(&length) || static_cast<size_t>(length) + 5 > limit) {
    return false;
  }
  if (type != 0) return true;
  info->has_server_name = true;
  if (length > sizeof(info->server_name)) return r->Skip(length);
  for (uint16_t i = 0; i < length; ++i) {
    uint8_t c;
    if (!r->Byte(&c)) return false;
    info->server_name[i] = static_cast<char>(c);
  }
  info->server_name_bytes = static_cast<uint8_t>(length);
  return true;
}

bool ReadExtensions(HandshakeReader* r, size_t limit, ClientHelloInfo* info) {
  uint16_t total;
  if (limit < 2 || !r->U16(&total) || static_cast<size_t>(total) + 2 != limit) return false;
  size_t end = r->consumed() + total;
  while (r->consumed() < end) {
    uint16_t type, length;
    if (end - r->consumed() < 4 || !r->U16(&type) || !r->U16(&length)) return false;
    if (length > end - r->consumed()) return false;
    size_t start = r->consumed();
    if (type == kExtSupportedVersions) {
      if (!ReadList(r, 1, length, [info](uint16_t v) {
            if (v == 0x0304) info->offers_tls13 = true;
          })) {
        return false;
      }
    } else if (type == kExtServerName) {
      if (!ReadServerName(r, length, info)) return false;
    } else if (type == kExtSignatureAlgorithms) {
      info->has_sigalgs = true;
      if (!ReadList(r, 2, length, [info](uint16_t s) { NoteScheme(s, info); })) return false;
    }
    size_t used = r->consumed() - start;
    if (used > length || !r->Skip(length - used)) return false;
  }
  return true;
}

}  // namespace

ClientHelloInfo ScanClientHello(const uint8_t* data, size_t size) {
  ClientHelloInfo info;
  HandshakeReader r(data, size);
  uint8_t type, session_id_bytes, compression_bytes;
  uint32_t length;
  uint16_t version;
  if (!r.Byte(&type) || type != kClientHello || !r.U24(&length)) return ClientHelloInfo();
  size_t start = r.consumed();
  if (!r.U16(&version) || !r.Skip(32) || !r.Byte(&session_id_bytes) || session_id_bytes > 32 ||
      !r.Skip(session_id_bytes)) {
    return ClientHelloInfo();
  }
  size_t left = length - (r.consumed() - start);
  if (r.consumed() - start > length ||
      !ReadList(&r, 2, left, [&info](uint16_t s) { NoteSuite(s, &info); }) ||
      !r.Byte(&compression_bytes) || !r.Skip(compression_bytes)) {
    return ClientHelloInfo();
  }
  size_t used = r.consumed() - start;
  if (used > length) return ClientHelloInfo();
  // Extensions are optional in a TLS 1.2 ClientHello.
  if (used < length && !ReadExtensions(&r, length - used, &info)) return ClientHelloInfo();
  if (r.consumed() - start != length) return ClientHelloInfo();
  info.complete = true;
  return info;
}

uint32_t ClientHelloInfo::Pack() const {
  const bool bits[] = {complete,  offers_tls13,      has_sigalgs,       ecdsa_suite,
                       rsa_suite, ecdsa_p256_sha256, ecdsa_p384_sha384, ecdsa_p521_sha512,
                       ecdsa_any, rsa_pss,           rsa_pkcs1};
  uint32_t packed = 1;
  for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); ++i) {
    if (bits[i]) packed |= 1u << (i + 1);
  }
  return packed;
}

ClientHelloInfo ClientHelloInfo::Unpack(uint32_t packed) {
  ClientHelloInfo info;
  if ((packed & 1) == 0) return info;
  bool* bits[] = {&info.complete,          &info.offers_tls13,      &info.has_sigalgs,
                  &info.ecdsa_suite,       &info.rsa_suite,         &info.ecdsa_p256_sha256,
                  &info.ecdsa_p384_sha384, &info.ecdsa_p521_sha512, &info.ecdsa_any,
                  &info.rsa_pss,           &info.rsa_pkcs1};
  for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); ++i) {
    *bits[i] = (packed >> (i + 1)) & 1;
  }
  return info;
}

CertChoice ChooseCertificate(const ClientHelloInfo& info, EcdsaCurve curve) {
  if (!info.complete) return CertChoice::kEcdsa;
  if (info.offers_tls13) {
    bool ecdsa = false;
    switch (curve) {
      case EcdsaCurve::kP256:
        ecdsa = info.ecdsa_p256_sha256;
        break;
      case EcdsaCurve::kP384:
        ecdsa = info.ecdsa_p384_sha384;
        break;
      case EcdsaCurve::kP521:
        ecdsa = info.ecdsa_p521_sha512;
        break;
      case EcdsaCurve::kOther:
        ecdsa = info.ecdsa_any;
        break;
    }
    if (ecdsa) return CertChoice::kEcdsa;
    return info.rsa_pss ? CertChoice::kRsa : CertChoice::kEcdsa;
  }
  if (info.ecdsa_suite && (!info.has_sigalgs || info.ecdsa_any)) return CertChoice::kEcdsa;
  return info.rsa_suite ? CertChoice::kRsa : CertChoice::kEcdsa;
}

}  // namespace ringproxy::tls
