// POP3 command lines (proto/pop3/command.h): keywords, arguments, PASS's whole rest,
// and each fault.
#include "proto/pop3/command.h"

#include <string>

#include "gtest/gtest.h"

namespace ringproxy::pop3 {
namespace {

TEST(Pop3CommandTest, KeywordsAndArguments) {
  Command c;
  ASSERT_EQ(ParseCommand("CAPA", &c), CommandError::kNone);
  EXPECT_EQ(c.keyword, "CAPA");
  EXPECT_EQ(c.arg_count, 0u);
  EXPECT_TRUE(c.KeywordIs("CAPA"));

  ASSERT_EQ(ParseCommand("user john@example.com", &c), CommandError::kNone);
  EXPECT_TRUE(c.KeywordIs("USER"));
  EXPECT_FALSE(c.KeywordIs("USE"));
  ASSERT_EQ(c.arg_count, 1u);
  EXPECT_EQ(c.args[0], "john@example.com");

  ASSERT_EQ(ParseCommand("AUTH PLAIN AGpvaG4Ac2VjcmV0", &c), CommandError::kNone);
  ASSERT_EQ(c.arg_count, 2u);
  EXPECT_EQ(c.args[0], "PLAIN");
  EXPECT_EQ(c.args[1], "AGpvaG4Ac2VjcmV0");

  ASSERT_EQ(ParseCommand("NOOP  ", &c), CommandError::kNone);  // trailing spaces
  EXPECT_EQ(c.arg_count, 0u);
  EXPECT_EQ(c.rest, " ");
}

TEST(Pop3CommandTest, PassKeepsSpacesInTheRest) {
  Command c;
  ASSERT_EQ(ParseCommand("PASS correct horse  battery", &c), CommandError::kNone);
  EXPECT_EQ(c.rest, "correct horse  battery");
  EXPECT_TRUE(c.more_args);  // split, it is three words
  ASSERT_EQ(ParseCommand("PASS  lead", &c), CommandError::kNone);
  EXPECT_EQ(c.rest, " lead");
}

TEST(Pop3CommandTest, Faults) {
  Command c;
  EXPECT_EQ(ParseCommand("", &c), CommandError::kEmpty);
  EXPECT_EQ(ParseCommand("   ", &c), CommandError::kEmpty);
  EXPECT_EQ(ParseCommand(" USER x", &c), CommandError::kBadKeyword);
  EXPECT_EQ(ParseCommand("US-ER x", &c), CommandError::kBadKeyword);
  EXPECT_EQ(ParseCommand(std::string(16, 'A'), &c), CommandError::kNone);
  EXPECT_EQ(ParseCommand(std::string(17, 'A'), &c), CommandError::kBadKeyword);
  EXPECT_EQ(ParseCommand("USER a\tb", &c), CommandError::kBadCharacter);
  EXPECT_EQ(ParseCommand(std::string("USER a\0b", 8), &c), CommandError::kBadCharacter);
  EXPECT_EQ(ParseCommand("USER a\rb", &c), CommandError::kBadCharacter);
  // A password is the rest of its line, whatever it holds but NUL and CR (the same as
  // IMAP takes in a quoted string or a literal; nginx's POP3 parser too).
  ASSERT_EQ(ParseCommand("PASS pa\tss\x7f word", &c), CommandError::kNone);
  EXPECT_EQ(c.rest, "pa\tss\x7f word");
  EXPECT_EQ(ParseCommand("pass x\ty", &c), CommandError::kNone);
  EXPECT_EQ(ParseCommand(std::string("PASS a\0b", 8), &c), CommandError::kBadCharacter);
  EXPECT_EQ(ParseCommand("PASS a\rb", &c), CommandError::kBadCharacter);
  EXPECT_EQ(ParseCommand("PASS\tx", &c), CommandError::kBadCharacter);
  EXPECT_EQ(ParseCommand("TOP 1 2", &c), CommandError::kNone);
  EXPECT_FALSE(c.more_args);
  EXPECT_EQ(ParseCommand("TOP 1 2 3", &c), CommandError::kNone);
  EXPECT_TRUE(c.more_args);
  EXPECT_EQ(ParseCommand("USER j\xc3\xb6rg", &c), CommandError::kNone);  // 8-bit is data
}

}  // namespace
}  // namespace ringproxy::pop3
