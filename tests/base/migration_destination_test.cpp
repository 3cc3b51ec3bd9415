// `vmctl migrate --to DEST`: socket paths, bare hosts, ssh:// URIs and their refusals.
#include "base/migration_destination.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace vmmd {
namespace {

const PathExists kNothingExists = [](const std::string&) { return false; };

SshDestination ssh(std::string_view text) {
  auto parsed = parseMigrationDestination(text, kNothingExists);
  EXPECT_TRUE(parsed) << text << ": " << parsed.error().message();
  if (!parsed) return {};
  EXPECT_TRUE(std::holds_alternative<SshDestination>(*parsed)) << text;
  return std::get<SshDestination>(*parsed);
}

std::string refusal(std::string_view text) {
  auto parsed = parseMigrationDestination(text, kNothingExists);
  EXPECT_FALSE(parsed) << text << " was accepted";
  return parsed ? "" : parsed.error().message();
}

TEST(MigrationDestination, AbsoluteSocketPathIsLocal) {
  auto parsed = parseMigrationDestination("/run/vmmd/vmmd.sock", kNothingExists);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(std::get<LocalDestination>(*parsed).socket, "/run/vmmd/vmmd.sock");
  EXPECT_EQ(describeDestination(*parsed), "/run/vmmd/vmmd.sock");
}

TEST(MigrationDestination, RelativePathsBecomeAbsolute) {
  auto cwd = std::filesystem::current_path().string();
  auto parsed = parseMigrationDestination("b/vmmd.sock", kNothingExists);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(std::get<LocalDestination>(*parsed).socket, cwd + "/b/vmmd.sock");
  // A bare word is a path when such a file exists here (asked of the real file system).
  auto dir = std::filesystem::temp_directory_path() / ("migdest-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "vmmd.sock") << "";
  std::filesystem::current_path(dir);
  auto existing = parseMigrationDestination("vmmd.sock");
  auto host = parseMigrationDestination("otherhost");
  std::filesystem::current_path(cwd);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(existing);
  EXPECT_EQ(std::get<LocalDestination>(*existing).socket, (dir / "vmmd.sock").string());
  ASSERT_TRUE(host);
  EXPECT_EQ(std::get<SshDestination>(*host).host, "otherhost");
}

TEST(MigrationDestination, BareHostIsRootOverSsh) {
  SshDestination d = ssh("db2.example.org");
  EXPECT_EQ(d.user, "root");
  EXPECT_EQ(d.host, "db2.example.org");
  EXPECT_EQ(d.port, 0);
  EXPECT_TRUE(d.socket.empty());
  EXPECT_EQ(d.display(), "ssh://root@db2.example.org");
  EXPECT_EQ(ssh("10.0.0.2").host, "10.0.0.2");
}

TEST(MigrationDestination, FullSshUri) {
  SshDestination d = ssh("ssh://admin@10.0.0.2:2222?socket=/run/b/vmmd.sock&keyfile=/root/.ssh/id_ed25519"
                         "&known_hosts=/etc/vmmd/known_hosts&no_verify=1&vmctl=/opt/vmmd/bin/vmctl");
  EXPECT_EQ(d.user, "admin");
  EXPECT_EQ(d.host, "10.0.0.2");
  EXPECT_EQ(d.port, 2222);
  EXPECT_EQ(d.socket, "/run/b/vmmd.sock");
  EXPECT_EQ(d.keyfile, "/root/.ssh/id_ed25519");
  EXPECT_EQ(d.known_hosts, "/etc/vmmd/known_hosts");
  EXPECT_TRUE(d.no_verify);
  EXPECT_EQ(d.vmctl, "/opt/vmmd/bin/vmctl");
  EXPECT_EQ(d.display(), "ssh://admin@10.0.0.2:2222?socket=/run/b/vmmd.sock");
}

TEST(MigrationDestination, SshUriDefaultsAndForms) {
  SshDestination d = ssh("ssh://host1");
  EXPECT_EQ(d.user, "root");
  EXPECT_EQ(d.port, 0);
  EXPECT_FALSE(d.no_verify);
  EXPECT_EQ(ssh("ssh://host1/").host, "host1");  // libvirt-style trailing slash
  EXPECT_FALSE(ssh("ssh://host1?no_verify=0").no_verify);
  SshDestination v6 = ssh("ssh://root@[fd00::2]:22");
  EXPECT_EQ(v6.host, "fd00::2");
  EXPECT_EQ(v6.port, 22);
  EXPECT_EQ(v6.display(), "ssh://root@[fd00::2]:22");
  // %-escapes in values: a path with characters a query cannot carry plainly.
  SshDestination escaped = ssh("ssh://h?socket=/run/a%26b%23%25/vmmd.sock");
  EXPECT_EQ(escaped.socket, "/run/a&b#%/vmmd.sock");
  EXPECT_EQ(escaped.display(), "ssh://root@h?socket=/run/a%26b%23%25/vmmd.sock");  // reads back the same
  EXPECT_EQ(ssh("root@h:22").port, 22);  // the bare form may name the user and port too
}

TEST(MigrationDestination, NothingBecomesAnSshOption) {
  EXPECT_NE(refusal("ssh://-oProxyCommand=x").find("starts with '-'"), std::string::npos);
  EXPECT_NE(refusal("-oProxyCommand=x").find("starts with '-'"), std::string::npos);
  EXPECT_NE(refusal("ssh://-l@host").find("user name '-l' starts with '-'"), std::string::npos);
  EXPECT_NE(refusal("ssh://host?keyfile=-i").find("not an absolute path"), std::string::npos);
  EXPECT_NE(refusal("ssh://host?known_hosts=/a b").find("character ssh would reinterpret"), std::string::npos);
  EXPECT_NE(refusal("ssh://host?keyfile=/k%25h").find("character ssh would reinterpret"), std::string::npos);
  EXPECT_NE(refusal("ssh://ho st").find("has a character other than"), std::string::npos);
  EXPECT_NE(refusal("ssh://host;rm").find("has a character other than"), std::string::npos);
  EXPECT_NE(refusal("ssh://us$er@host").find("user name"), std::string::npos);
  EXPECT_NE(refusal("ssh://host?socket=/a%0Ab").find("control character"), std::string::npos);
}

TEST(MigrationDestination, MalformedOnesNameTheProblem) {
  EXPECT_NE(refusal("").find("empty"), std::string::npos);
  EXPECT_NE(refusal("tcp://host:4444").find("unsupported scheme 'tcp'"), std::string::npos);
  EXPECT_NE(refusal("ssh://").find("no host"), std::string::npos);
  EXPECT_NE(refusal("ssh://@host").find("empty user name"), std::string::npos);
  EXPECT_NE(refusal("ssh://host:").find("':' without a port"), std::string::npos);
  EXPECT_NE(refusal("ssh://host:0").find("port '0'"), std::string::npos);
  EXPECT_NE(refusal("ssh://host:65536").find("port '65536'"), std::string::npos);
  EXPECT_NE(refusal("ssh://host:22x").find("port '22x'"), std::string::npos);
  EXPECT_NE(refusal("ssh://[fd00::2").find("without ']'"), std::string::npos);
  EXPECT_NE(refusal("ssh://[fd00::2]x").find("after the IPv6 address"), std::string::npos);
  EXPECT_NE(refusal("ssh://host/system").find("unexpected path '/system'"), std::string::npos);
  EXPECT_NE(refusal("ssh://host?sokcet=/x").find("unknown parameter 'sokcet'"), std::string::npos);
  EXPECT_NE(refusal("ssh://host?socket").find("has no '=VALUE'"), std::string::npos);
  EXPECT_NE(refusal("ssh://host?socket=").find("has no value"), std::string::npos);
  EXPECT_NE(refusal("ssh://host?socket=/a&socket=/b").find("given twice"), std::string::npos);
  EXPECT_NE(refusal("ssh://host?socket=run/x").find("not an absolute path"), std::string::npos);
  EXPECT_NE(refusal("ssh://host?no_verify=yes").find("neither 0 nor 1"), std::string::npos);
  EXPECT_NE(refusal("ssh://host?socket=/a%2").find("bad %-escape"), std::string::npos);
  EXPECT_NE(refusal("ssh://host#frag").find("fragment"), std::string::npos);
  EXPECT_NE(refusal("/run/x\n").find("control character"), std::string::npos);
  // Every message names the destination it is about.
  EXPECT_EQ(refusal("ssh://host:99999").rfind("destination 'ssh://host:99999': ", 0), 0u);
}

}  // namespace
}  // namespace vmmd
