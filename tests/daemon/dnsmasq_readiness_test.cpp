// When vmmd may SIGHUP a dnsmasq it just started (daemon/network/dnsmasq_readiness.h), with real
// processes standing in for dnsmasq: /bin/sh writing the pid file (or not) the way dnsmasq does.
#include "daemon/network/dnsmasq_readiness.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fstream>

#include "tests/support/temp_dir.h"

extern char** environ;

namespace vmmd::daemon {
namespace {

using test_support::TempDir;

// A child running `sh -c script`; killed and reaped at the end of the test.
class Child {
 public:
  explicit Child(const std::string& script) {
    const char* argv[] = {"/bin/sh", "-c", script.c_str(), nullptr};
    EXPECT_EQ(::posix_spawn(&pid_, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  }
  ~Child() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

TEST(DnsmasqReadinessTest, ReadyOnceThePidFileNamesTheProcess) {
  TempDir dir{"vmmd-dnsready"};
  std::string pid_file = dir.file("dnsmasq.pid");
  std::ofstream(pid_file) << "1\n";  // a stale one, naming another process
  // Like dnsmasq: a while of startup, then unlink and write its own pid, then its loop.
  Child child("sleep 0.2; rm -f " + pid_file + "; echo $$ > " + pid_file + "; exec sleep 30");
  EXPECT_FALSE(pidFileNames(pid_file, child.pid()));
  auto startup = waitForDnsmasqReady(pid_file, child.pid(), 10000);
  ASSERT_TRUE(startup.ok()) << startup.error().message();
  EXPECT_EQ(*startup, DnsmasqStartup::kReady);
  EXPECT_TRUE(pidFileNames(pid_file, child.pid()));
  EXPECT_EQ(readPidFile(pid_file), child.pid());
}

TEST(DnsmasqReadinessTest, ExitedWhenItEndsBeforeWritingThePidFile) {
  TempDir dir{"vmmd-dnsready"};
  Child child("exit 2");
  auto startup = waitForDnsmasqReady(dir.file("dnsmasq.pid"), child.pid(), 10000);
  ASSERT_TRUE(startup.ok()) << startup.error().message();
  EXPECT_EQ(*startup, DnsmasqStartup::kExited);
}

TEST(DnsmasqReadinessTest, TimesOutWhenNoPidFileComes) {
  TempDir dir{"vmmd-dnsready"};
  Child child("exec sleep 30");
  auto startup = waitForDnsmasqReady(dir.file("dnsmasq.pid"), child.pid(), 100);
  ASSERT_TRUE(startup.ok()) << startup.error().message();
  EXPECT_EQ(*startup, DnsmasqStartup::kTimedOut);
}

TEST(DnsmasqReadinessTest, PidFilesThatNameNoProcess) {
  TempDir dir{"vmmd-dnsready"};
  std::string pid_file = dir.file("dnsmasq.pid");
  EXPECT_EQ(readPidFile(pid_file), std::nullopt);  // missing
  for (const char* text : {"", "\n", "0\n", "-5\n", "abc\n"}) {
    std::ofstream(pid_file) << text;
    EXPECT_EQ(readPidFile(pid_file), std::nullopt) << text;
  }
}

TEST(DnsmasqReadinessTest, CaughtSignalsFromProc) {
  // sh with a trap catches SIGHUP; one without leaves it at the default (which ends it).
  Child trapping("trap 'echo hup' HUP; while :; do sleep 1; done");
  Child plain("exec sleep 30");
  // The trap is set a moment after the spawn: wait for it through /proc, as vmmd would not.
  for (int i = 0; i < 2000 && !catchesSignal(trapping.pid(), SIGHUP); ++i) ::usleep(1000);
  EXPECT_TRUE(catchesSignal(trapping.pid(), SIGHUP));
  EXPECT_FALSE(catchesSignal(plain.pid(), SIGHUP));
  EXPECT_FALSE(catchesSignal(plain.pid(), 0));
  EXPECT_FALSE(catchesSignal(-1, SIGHUP));
}

}  // namespace
}  // namespace vmmd::daemon
