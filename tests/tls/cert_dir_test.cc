// Indexing a certificate directory by file name (tls/cert_dir.h): the naming convention,
// and an error naming the file for each way a directory can be wrong.
#include "tls/cert_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "core/status_util.h"
#include "tests/tls/tls_testing.h"

namespace ringproxy::tls {
namespace {

using ringproxy::testing::TempDir;

std::string Error(const TempDir& dir) {
  auto index = IndexCertDirectory(dir.path());
  return index.ok() ? "ok" : std::string(MessageOf(index.status()));
}

TEST(CertDirectory, IndexesPairsByNameWithoutReadingThem) {
  TempDir dir;
  dir.Write("example.com.crt", "");  // contents are not read at index time
  dir.Write("example.com.key", "");
  dir.Write("Mail.Example.com.crt", "");
  dir.Write("Mail.Example.com.key", "");
  dir.Write("mail.example.com.rsa.crt", "");
  dir.Write("mail.example.com.rsa.key", "");
  dir.Write("_.wild.test.crt", "");
  dir.Write("_.wild.test.key", "");
  dir.Write("*.star.test.crt", "");
  dir.Write("*.star.test.key", "");
  dir.Write("README", "ignored");
  dir.Write("chain.pem", "ignored");
  dir.Write(".hidden.crt", "ignored");
  mkdir((dir.path() + "/sub.crt").c_str(), 0700);  // a directory, not a file
  auto index = IndexCertDirectory(dir.path());
  rmdir((dir.path() + "/sub.crt").c_str());
  ASSERT_TRUE(index.ok()) << MessageOf(index.status());
  ASSERT_EQ(index->entries.size(), 4u);
  auto find = [&](std::string_view host) -> const CertDirEntry* {
    auto pick = index->names.Select(host, false);
    return pick.kind == ServerNameIndex::Kind::kNone ? nullptr : &index->entries[pick.value];
  };
  const CertDirEntry* mail = find("mail.example.com");
  ASSERT_NE(mail, nullptr);
  EXPECT_EQ(mail->name, "mail.example.com");
  EXPECT_EQ(mail->primary.certificate, dir.path() + "/Mail.Example.com.crt");
  EXPECT_EQ(mail->rsa.key, dir.path() + "/mail.example.com.rsa.key");
  EXPECT_TRUE(find("example.com")->rsa.empty());
  ASSERT_NE(find("a.wild.test"), nullptr);
  EXPECT_EQ(find("a.wild.test")->name, "*.wild.test");
  EXPECT_EQ(find("a.star.test")->name, "*.star.test");
  EXPECT_EQ(find("wild.test"), nullptr);
}

TEST(CertDirectory, FollowsSymbolicLinks) {
  TempDir dir, target;
  std::string crt = target.Write("real.crt", "x"), key = target.Write("real.key", "x");
  ASSERT_EQ(symlink(crt.c_str(), (dir.path() + "/linked.test.crt").c_str()), 0);
  ASSERT_EQ(symlink(key.c_str(), (dir.path() + "/linked.test.key").c_str()), 0);
  auto index = IndexCertDirectory(dir.path());
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(index->entries.size(), 1u);
  unlink((dir.path() + "/linked.test.crt").c_str());
  unlink((dir.path() + "/linked.test.key").c_str());
}

TEST(CertDirectory, EmptyDirectoryIsFine) {
  TempDir dir;
  auto index = IndexCertDirectory(dir.path());
  ASSERT_TRUE(index.ok());
  EXPECT_TRUE(index->entries.empty());
}

TEST(CertDirectory, EachMistakeNamesTheFile) {
  {
    TempDir dir;
    dir.Write("a.test.crt", "");
    EXPECT_NE(Error(dir).find("'a.test.crt' has no partner 'a.test.key'"), std::string::npos)
        << Error(dir);
  }
  {
    TempDir dir;
    dir.Write("a.test.key", "");
    EXPECT_NE(Error(dir).find("'a.test.key' has no partner 'a.test.crt'"), std::string::npos);
  }
  {
    TempDir dir;
    dir.Write("a.test.crt", "");
    dir.Write("a.test.key", "");
    dir.Write("a.test.rsa.crt", "");
    EXPECT_NE(Error(dir).find("'a.test.rsa.crt' has no partner 'a.test.rsa.key'"),
              std::string::npos);
  }
  {
    TempDir dir;
    dir.Write("b.test.rsa.crt", "");
    dir.Write("b.test.rsa.key", "");
    EXPECT_NE(Error(dir).find("'b.test.rsa.crt' is a second (RSA) pair"), std::string::npos)
        << Error(dir);
  }
  {
    TempDir dir;
    dir.Write("A.test.crt", "");
    dir.Write("a.test.crt", "");
    EXPECT_NE(Error(dir).find("'A.test.crt' and 'a.test.crt' name the same a.test"),
              std::string::npos)
        << Error(dir);
  }
  {
    TempDir dir;
    dir.Write("bad name.crt", "");
    dir.Write("bad name.key", "");
    EXPECT_NE(Error(dir).find("'bad name.crt': not a host name"), std::string::npos) << Error(dir);
  }
  {
    TempDir dir;
    dir.Write("_.com.crt", "");
    dir.Write("_.com.key", "");
    EXPECT_NE(Error(dir).find("wildcard base"), std::string::npos) << Error(dir);
  }
  EXPECT_NE(IndexCertDirectory("/nonexistent/dir").status().message().find("No such file"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace ringproxy::tls
