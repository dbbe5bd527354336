// Host-name normalisation and SNI selection (tls/server_name.h): valid names, each rule
// crossed by one, and the order exact > wildcard > default > none.
#include "tls/server_name.h"

#include <gtest/gtest.h>

#include <string>

namespace ringproxy::tls {
namespace {

std::string Norm(std::string_view in, HostNameError* error = nullptr) {
  HostName out;
  HostNameError e = NormalizeHostName(in, &out);
  if (error != nullptr) *error = e;
  return e == HostNameError::kOk ? std::string(out.view())
                                 : "<" + std::string(HostNameErrorText(e)) + ">";
}

TEST(NormalizeHostName, LowersCaseAndStripsOneTrailingDot) {
  EXPECT_EQ(Norm("Mail.Example.COM"), "mail.example.com");
  EXPECT_EQ(Norm("example.com."), "example.com");
  EXPECT_EQ(Norm("a-b_c.example"), "a-b_c.example");
  EXPECT_EQ(Norm("localhost"), "localhost");
  EXPECT_EQ(Norm("1.2.3.4"), "1.2.3.4");
}

TEST(NormalizeHostName, RefusesEachBrokenRule) {
  HostNameError e;
  Norm("", &e);
  EXPECT_EQ(e, HostNameError::kEmpty);
  Norm(".", &e);
  EXPECT_EQ(e, HostNameError::kEmpty);
  Norm("example.com..", &e);
  EXPECT_EQ(e, HostNameError::kEmptyLabel);
  Norm(".example.com", &e);
  EXPECT_EQ(e, HostNameError::kEmptyLabel);
  Norm("a..b", &e);
  EXPECT_EQ(e, HostNameError::kEmptyLabel);
  Norm("exa mple.com", &e);
  EXPECT_EQ(e, HostNameError::kBadCharacter);
  Norm(std::string_view("a\0b.com", 7), &e);
  EXPECT_EQ(e, HostNameError::kBadCharacter);
  Norm("caf\xc3\xa9.fr", &e);
  EXPECT_EQ(e, HostNameError::kBadCharacter);
  Norm("*.example.com", &e);
  EXPECT_EQ(e, HostNameError::kBadCharacter);
}

TEST(NormalizeHostName, LengthLimitsExactlyAndOneOver) {
  std::string label63(63, 'a');
  EXPECT_EQ(Norm(label63 + ".com"), label63 + ".com");
  HostNameError e;
  Norm(label63 + "a.com", &e);
  EXPECT_EQ(e, HostNameError::kLabelTooLong);
  // 253 bytes: 3 labels of 63, dots, and a 61-byte label.
  std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  ASSERT_EQ(name253.size(), 253u);
  EXPECT_EQ(Norm(name253), name253);
  EXPECT_EQ(Norm(name253 + "."), name253);  // the trailing dot does not count
  Norm(name253 + "b", &e);
  EXPECT_EQ(e, HostNameError::kTooLong);
}

TEST(NormalizeHostName, IsIdempotent) {
  for (const char* in : {"A.B.c.", "x", "MAIL.example.org", "under_score.Example"}) {
    std::string once = Norm(in);
    EXPECT_EQ(Norm(once), once) << in;
  }
}

TEST(NormalizeNamePattern, AcceptsNamesAndOneLevelWildcards) {
  std::string out;
  bool wildcard = false;
  ASSERT_EQ(NormalizeNamePattern("*.Example.COM.", &out, &wildcard), HostNameError::kOk);
  EXPECT_EQ(out, "*.example.com");
  EXPECT_TRUE(wildcard);
  ASSERT_EQ(NormalizeNamePattern("Example.com", &out, &wildcard), HostNameError::kOk);
  EXPECT_EQ(out, "example.com");
  EXPECT_FALSE(wildcard);
  EXPECT_EQ(NormalizeNamePattern("*.com", &out, &wildcard), HostNameError::kWildcardTooBroad);
  EXPECT_EQ(NormalizeNamePattern("*", &out, &wildcard), HostNameError::kBadCharacter);
  EXPECT_EQ(NormalizeNamePattern("*.", &out, &wildcard), HostNameError::kEmpty);
  EXPECT_EQ(NormalizeNamePattern("a.*.com", &out, &wildcard), HostNameError::kBadCharacter);
  EXPECT_EQ(NormalizeNamePattern("**.example.com", &out, &wildcard), HostNameError::kBadCharacter);
}

class ServerNameIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(index_.Add("example.com", 0), ServerNameIndex::AddResult::kAdded);
    ASSERT_EQ(index_.Add("*.example.com", 1), ServerNameIndex::AddResult::kAdded);
    ASSERT_EQ(index_.Add("Mail.Example.com", 2), ServerNameIndex::AddResult::kAdded);
    ASSERT_EQ(index_.Add("*.b.example.com", 3), ServerNameIndex::AddResult::kAdded);
  }
  ServerNameIndex::Selection Pick(std::string_view host, bool has_default = true) {
    return index_.Select(host, has_default);
  }
  ServerNameIndex index_;
};

TEST_F(ServerNameIndexTest, ExactBeatsWildcard) {
  EXPECT_EQ(Pick("mail.example.com").kind, ServerNameIndex::Kind::kExact);
  EXPECT_EQ(Pick("mail.example.com").value, 2u);
  EXPECT_EQ(Pick("example.com").value, 0u);
}

TEST_F(ServerNameIndexTest, WildcardMatchesExactlyOneLabel) {
  EXPECT_EQ(Pick("www.example.com").kind, ServerNameIndex::Kind::kWildcard);
  EXPECT_EQ(Pick("www.example.com").value, 1u);
  EXPECT_EQ(Pick("x.b.example.com").value, 3u);
  // Two labels deeper than *.example.com and no *.c.example.com: default.
  EXPECT_EQ(Pick("a.c.example.com").kind, ServerNameIndex::Kind::kDefault);
  EXPECT_EQ(Pick("b.example.com").kind, ServerNameIndex::Kind::kWildcard);
}

TEST_F(ServerNameIndexTest, UnknownAndMissingNamesGetTheDefaultOrNothing) {
  EXPECT_EQ(Pick("other.org").kind, ServerNameIndex::Kind::kDefault);
  EXPECT_EQ(Pick("").kind, ServerNameIndex::Kind::kDefault);
  EXPECT_EQ(Pick("other.org", false).kind, ServerNameIndex::Kind::kNone);
  EXPECT_EQ(Pick("", false).kind, ServerNameIndex::Kind::kNone);
  EXPECT_EQ(Pick("com").kind, ServerNameIndex::Kind::kDefault);
}

TEST_F(ServerNameIndexTest, DuplicatesAndInvalidPatternsAreRefused) {
  EXPECT_EQ(index_.Add("EXAMPLE.com.", 9), ServerNameIndex::AddResult::kDuplicate);
  EXPECT_EQ(index_.Add("*.EXAMPLE.com", 9), ServerNameIndex::AddResult::kDuplicate);
  EXPECT_EQ(index_.Add("bad name", 9), ServerNameIndex::AddResult::kInvalid);
  EXPECT_EQ(index_.Add("*.com", 9), ServerNameIndex::AddResult::kInvalid);
  EXPECT_EQ(index_.size(), 4u);
}

}  // namespace
}  // namespace ringproxy::tls
