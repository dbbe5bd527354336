// Indexes a directory of per-name certificate pairs by file name alone: nothing is read
// or parsed here, so a directory of thousands of names indexes in milliseconds at start
// and at reload. Each pair is read and parsed the first time a shard needs it
// (tls/server_context.cc); a broken pair is reported then, in the log.
//
// Naming convention (exactly this):
//   NAME.crt + NAME.key              the pair for NAME (PEM chain, leaf first; any key
//                                    type)
//   NAME.rsa.crt + NAME.rsa.key      optional second pair for the same NAME, with an RSA
//                                    key, for clients that cannot use the first (which
//                                    must then be ECDSA); needs NAME.crt/NAME.key
//   _.example.com.crt / .key         the wildcard *.example.com ("_" stands for "*"; a
//                                    literal "*.example.com.crt" is accepted too)
// NAME follows tls/server_name.h: matched case-insensitively, one trailing dot allowed.
// Files with other extensions and hidden files (".*") are ignored; symbolic links are
// followed (certbot's live/ directories are links). Errors at index time, each naming
// the file: a .crt without its .key or the reverse, a NAME that is not a valid host
// name, two files for one NAME (e.g. "A.com.crt" and "a.com.crt"), an RSA pair without
// the primary pair.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tls/server_name.h"

namespace ringproxy::tls {

struct CertPairPaths {
  std::string certificate;
  std::string key;
  bool empty() const { return certificate.empty(); }
};

struct CertDirEntry {
  std::string name;  // normalised pattern: "example.com" or "*.example.com"
  CertPairPaths primary;
  CertPairPaths rsa;  // empty when the name has one pair
};

struct CertDirIndex {
  std::vector<CertDirEntry> entries;
  ServerNameIndex names;  // pattern -> index into entries
};

absl::StatusOr<CertDirIndex> IndexCertDirectory(const std::string& directory);

}  // namespace ringproxy::tls
