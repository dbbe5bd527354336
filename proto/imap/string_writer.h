// IMAP strings written to an upstream (RFC 9051 `astring` / `string`): a quoted string
// when the value can be one, else the caller sends a literal. Pure.
#pragma once

#include <string>
#include <string_view>

namespace ringproxy::imap {

// A quoted string holds any 7-bit byte but NUL, CR and LF (8-bit text needs UTF8=ACCEPT
// on the upstream, which a proxy cannot assume before login).
bool CanQuote(std::string_view value);
// Appends `"value"` with `\` and `"` escaped; the value must pass CanQuote.
void AppendQuoted(std::string_view value, std::string* out);
// Appends a literal header, `{n}` or (non-synchronising) `{n+}`, with its CRLF.
void AppendLiteralHeader(size_t bytes, bool non_synchronising, std::string* out);

}  // namespace ringproxy::imap
