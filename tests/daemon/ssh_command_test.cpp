// The ssh command line of a migration's bridge: options from the destination's parameters, the
// host after "--", the remote command quoted for the remote shell.
#include "daemon/remote/ssh_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vmmd::daemon {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::string joined(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

TEST(SshCommand, Defaults) {
  SshDestination d;
  d.host = "h1";
  auto argv = sshBridgeArgv(d, "", "/usr/bin/vmctl");
  EXPECT_EQ(argv.front(), "ssh");
  std::string all = joined(argv);
  EXPECT_THAT(all, HasSubstr("-T "));
  EXPECT_THAT(all, HasSubstr("-o BatchMode=yes"));
  EXPECT_THAT(all, Not(HasSubstr("StrictHostKeyChecking")));
  EXPECT_THAT(all, Not(HasSubstr(" -p ")));
  EXPECT_THAT(all, Not(HasSubstr(" -i ")));
  ASSERT_GE(argv.size(), 5u);
  EXPECT_THAT(std::vector<std::string>(argv.end() - 5, argv.end()),
              ElementsAre("-l", "root", "--", "h1", "'/usr/bin/vmctl' stdio-bridge"));
}

TEST(SshCommand, Parameters) {
  SshDestination d;
  d.user = "admin";
  d.host = "10.0.0.2";
  d.port = 2222;
  d.socket = "/run/b/vmmd.sock";
  d.keyfile = "/k/id";
  d.known_hosts = "/k/known";
  auto argv = sshBridgeArgv(d, "", "vmctl");
  std::string all = joined(argv);
  EXPECT_THAT(all, HasSubstr("-p 2222"));
  EXPECT_THAT(all, HasSubstr("-i /k/id -o IdentitiesOnly=yes"));
  EXPECT_THAT(all, HasSubstr("-o UserKnownHostsFile=/k/known"));
  EXPECT_THAT(all, Not(HasSubstr("StrictHostKeyChecking")));
  EXPECT_EQ(argv.back(), "'vmctl' --socket '/run/b/vmmd.sock' stdio-bridge");
  EXPECT_EQ(argv[argv.size() - 3], "--");
  // The data connection bridges to the socket the destination named, with the vmctl it named.
  d.vmctl = "/opt/vmctl";
  EXPECT_EQ(sshBridgeArgv(d, "/run/b/vms/x/incoming.sock", "vmctl").back(),
            "'/opt/vmctl' --socket '/run/b/vms/x/incoming.sock' stdio-bridge");
}

TEST(SshCommand, NoVerify) {
  SshDestination d;
  d.host = "h";
  d.no_verify = true;
  std::string all = joined(sshBridgeArgv(d, "", "vmctl"));
  EXPECT_THAT(all, HasSubstr("-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"));
  d.known_hosts = "/k/known";  // a file given is still the one used
  all = joined(sshBridgeArgv(d, "", "vmctl"));
  EXPECT_THAT(all, HasSubstr("StrictHostKeyChecking=no"));
  EXPECT_THAT(all, Not(HasSubstr("/dev/null")));
}

TEST(SshCommand, ShellQuoting) {
  EXPECT_EQ(shellQuote("plain"), "'plain'");
  EXPECT_EQ(shellQuote("it's $(x) `y`"), "'it'\\''s $(x) `y`'");
  SshDestination d;
  d.host = "h";
  EXPECT_EQ(sshBridgeArgv(d, "/run/a b/'q'.sock", "vmctl").back(), "'vmctl' --socket '/run/a b/'\\''q'\\''.sock' stdio-bridge");
}

}  // namespace
}  // namespace vmmd::daemon
