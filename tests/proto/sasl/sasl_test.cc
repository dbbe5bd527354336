// SASL codecs (proto/sasl/sasl.h): RFC 4648's test vectors, strictness, PLAIN read and
// written, and each limit crossed by one.
#include "proto/sasl/sasl.h"

#include <string>

#include "gtest/gtest.h"

namespace ringproxy::sasl {
namespace {

std::string Encode(std::string_view in) {
  std::string out;
  Base64Encode(in, &out);
  return out;
}

TEST(SaslTest, Base64Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (auto [plain, encoded] : vectors) {
    EXPECT_EQ(Encode(plain), encoded);
    std::string out;
    ASSERT_TRUE(Base64Decode(encoded, &out)) << encoded;
    EXPECT_EQ(out, plain);
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  std::string back;
  ASSERT_TRUE(Base64Decode(Encode(all), &back));
  EXPECT_EQ(back, all);
}

TEST(SaslTest, Base64IsStrict) {
  for (const char* bad : {"Zg", "Zg=", "Zg===", "Z===", "====", "Zm9v Yg==", "Zm9v\r\n",
                          "Zh==", "Zm9=", "Zm-v", "Zm_v", "Zg==Zg==", "=Zg="}) {
    std::string out = "keep";
    EXPECT_FALSE(Base64Decode(bad, &out)) << bad;
    EXPECT_EQ(out, "keep") << bad;
  }
}

TEST(SaslTest, PlainReadAndWritten) {
  std::string b64;
  WritePlain("", "john@example.com", "correct horse", &b64);
  EXPECT_EQ(b64, Encode(std::string("\0john@example.com\0correct horse", 31)));
  PlainCredentials c;
  ASSERT_EQ(ParsePlain(b64, {}, &c), PlainError::kNone);
  EXPECT_EQ(c.authzid, "");
  EXPECT_EQ(c.authcid, "john@example.com");
  EXPECT_EQ(c.password, "correct horse");

  b64.clear();
  WritePlain("admin", "john", "", &b64);
  ASSERT_EQ(ParsePlain(b64, {}, &c), PlainError::kNone);
  EXPECT_EQ(c.authzid, "admin");
  EXPECT_EQ(c.password, "");
}

TEST(SaslTest, PlainFaults) {
  PlainCredentials c;
  EXPECT_EQ(ParsePlain("not base64!", {}, &c), PlainError::kBadBase64);
  EXPECT_EQ(ParsePlain(Encode("john"), {}, &c), PlainError::kBadFormat);
  EXPECT_EQ(ParsePlain(Encode(std::string("\0john", 5)), {}, &c), PlainError::kBadFormat);
  EXPECT_EQ(ParsePlain(Encode(std::string("\0john\0pw\0x", 10)), {}, &c), PlainError::kBadFormat);
  EXPECT_EQ(ParsePlain(Encode(std::string("\0\0pw", 4)), {}, &c), PlainError::kEmptyAuthcid);
  EXPECT_EQ(ParsePlain("", {}, &c), PlainError::kBadFormat);
}

TEST(SaslTest, PlainLimitsCrossedByOne) {
  PlainLimits limits{.login_bytes_max = 8, .password_bytes_max = 4};
  PlainCredentials c;
  std::string b64;
  auto plain = [&](std::string_view z, std::string_view a, std::string_view p) {
    b64.clear();
    WritePlain(z, a, p, &b64);
    return ParsePlain(b64, limits, &c);
  };
  EXPECT_EQ(plain("", "12345678", "1234"), PlainError::kNone);
  EXPECT_EQ(plain("", "123456789", "1234"), PlainError::kLoginTooLong);
  EXPECT_EQ(plain("123456789", "1", "1234"), PlainError::kLoginTooLong);
  EXPECT_EQ(plain("", "1", "12345"), PlainError::kPasswordTooLong);
  EXPECT_TRUE(c.password.empty());  // nothing kept from a refused message
}

TEST(SaslTest, LoginPrompts) {
  EXPECT_EQ(kLoginUserPrompt, Encode("Username:"));
  EXPECT_EQ(kLoginPasswordPrompt, Encode("Password:"));
}

}  // namespace
}  // namespace ringproxy::sasl
