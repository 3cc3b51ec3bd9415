// NetworkManager with the real host pieces, as root, in a network namespace of this test
// process's own (unshare): taps on the bridge, static leases that a DHCP client gets from the
// real dnsmasq, the users query. Labels "net;daemon"; skipped (failed under CI) when not root.
#include "daemon/network/network_manager.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>
#include <uv.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "daemon/network/dnsmasq_readiness.h"
#include "tests/support/cannot_run.h"
#include "tests/support/temp_dir.h"

namespace vmmd::daemon {
namespace {

using test_support::TempDir;


std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A shell command's stdout and exit status.
std::pair<int, std::string> shell(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return {-1, ""};
  char buffer[512];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// sysfs shows the namespace that mounted it, not ours: ask netlink through ip(8).
bool linkExists(const std::string& name) { return shell("ip link show dev " + name + " 2>/dev/null").first == 0; }

class NetworkManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) VMMD_CANNOT_RUN("needs root (network namespaces, bridges, nftables)");
    if (!std::filesystem::exists("/usr/sbin/dnsmasq")) VMMD_CANNOT_RUN("dnsmasq is missing (scripts/install-deps.sh)");
    // Everything below happens in a network namespace of our own, gone with the process.
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    ASSERT_EQ(shell("ip link set lo up").first, 0);
    uv_loop_init(&loop_);
    auto store = Store::open(dir_.file("vmmd.db"));
    ASSERT_TRUE(store.ok()) << store.error().message();
    store_.emplace(std::move(*store));
    manager_ = std::make_unique<NetworkManager>(&loop_, *store_, NetworkManagerConfig{dir_.path()});
    auto doc = qmp::parseJson(R"({"name": "n1", "mode": "nat", "bridge": "vmmdn1", "domain": "lab",
        "ipv4": {"address": "10.33.0.1", "prefix": 24, "dhcp": {"start": "10.33.0.10", "end": "10.33.0.20"}}})");
    ASSERT_TRUE(doc.ok());
    ASSERT_TRUE(manager_->define(*doc).ok());
    auto started = manager_->start("n1");
    ASSERT_TRUE(started.ok()) << started.error().message();
  }
  void TearDown() override {
    if (!manager_) return;
    manager_->setUsersQuery(nullptr);
    (void)manager_->stop("n1");
    manager_.reset();
    uv_run(&loop_, UV_RUN_NOWAIT);
    uv_walk(&loop_, [](uv_handle_t* h, void*) { if (!uv_is_closing(h)) uv_close(h, nullptr); }, nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }

  std::string hostsFile() { return readFile(dir_.file("networks/n1/dnsmasq.hosts")); }

  TempDir dir_{"vmmd-net"};
  uv_loop_t loop_{};
  std::optional<Store> store_;
  std::unique_ptr<NetworkManager> manager_;
};

TEST_F(NetworkManagerTest, AttachGivesATapOnTheBridgeAndAStableStaticLease) {
  auto nic = manager_->attachNic("n1", "web1", "52:54:00:12:34:56");
  ASSERT_TRUE(nic.ok()) << nic.error().message();
  EXPECT_EQ(nic->bridge, "vmmdn1");
  EXPECT_EQ(nic->network, "n1");
  EXPECT_EQ(nic->ipv4, "10.33.0.10");
  EXPECT_TRUE(nic->tap.valid());
  auto [rc, flags] = shell("ip -j -d link show " + nic->tap_name);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(flags.find("\"master\":\"vmmdn1\""), std::string::npos) << flags;
  EXPECT_NE(flags.find("\"UP\""), std::string::npos) << flags;
  EXPECT_NE(flags.find("\"multi_queue\""), std::string::npos) << flags;
  EXPECT_NE(flags.find("\"vnet_hdr\""), std::string::npos) << flags;
  EXPECT_EQ(hostsFile(), "52:54:00:12:34:56,10.33.0.10,web1\n");

  // Not persistent: the tap goes with its last fd (the worker's exit).
  std::string tap = nic->tap_name;
  nic->tap.reset();
  EXPECT_FALSE(linkExists(tap));
  manager_->detachNic(tap);  // already gone: nothing to do, no error

  // The same NIC gets the same address again; another VM the next one; a MAC taken by another VM is refused.
  auto again = manager_->attachNic("n1", "web1", "52:54:00:12:34:56");
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(again->ipv4, "10.33.0.10");
  auto other = manager_->attachNic("n1", "db", "52:54:00:12:34:57");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->ipv4, "10.33.0.11");
  auto stolen = manager_->attachNic("n1", "db", "52:54:00:12:34:56");
  ASSERT_FALSE(stolen.ok());
  EXPECT_NE(stolen.error().message().find("leased to VM 'web1'"), std::string::npos) << stolen.error().message();
  manager_->detachNic(again->tap_name);  // removes the link even while we hold the fd
  EXPECT_FALSE(linkExists(again->tap_name));

  manager_->releaseVm("web1");
  EXPECT_EQ(hostsFile(), "52:54:00:12:34:57,10.33.0.11,db\n");
  auto info = manager_->info("n1");
  ASSERT_TRUE(info.ok());
  ASSERT_EQ((*info)["static_leases"].Size(), 1u);
  EXPECT_STREQ((*info)["static_leases"][0]["vm"].GetString(), "db");
}

// A VM started right after net-start has its NIC's lease loaded with a SIGHUP at once: start
// returns only once dnsmasq takes SIGHUP as "reload" rather than dying of it.
TEST_F(NetworkManagerTest, StartReturnsOnceDnsmasqTakesSighup) {
  auto info = manager_->info("n1");
  ASSERT_TRUE(info.ok()) << info.error().message();
  ASSERT_TRUE((*info)["dnsmasq"]["pid"].IsInt64());
  auto pid = static_cast<pid_t>((*info)["dnsmasq"]["pid"].GetInt64());
  EXPECT_TRUE(pidFileNames(dir_.file("networks/n1/dnsmasq.pid"), pid));
  EXPECT_TRUE(catchesSignal(pid, SIGHUP));
}

TEST_F(NetworkManagerTest, DhcpClientGetsItsStaticLease) {
  auto nic = manager_->attachNic("n1", "web1", "52:54:00:ab:cd:01");
  ASSERT_TRUE(nic.ok()) << nic.error().message();
  // A fake "guest": a second namespace on a veth whose host end is a port of the bridge.
  std::string script = dir_.file("udhcpc.sh");
  std::ofstream(script) << "#!/bin/sh\n[ \"$1\" = bound ] && echo \"leased $ip\" || true\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  std::string guest =
      "unshare -n sleep 30 >/dev/null 2>&1 & pid=$!; "
      "while [ \"$(readlink /proc/$pid/ns/net)\" = \"$(readlink /proc/self/ns/net)\" ]; do sleep 0.05; done; "
      "ip link add vguest type veth peer name eth0 netns $pid && ip link set vguest master vmmdn1 up && "
      "nsenter -t $pid -n ip link set eth0 address 52:54:00:ab:cd:01 up && "
      "nsenter -t $pid -n busybox udhcpc -f -q -n -t 10 -T 1 -i eth0 -s " + script + "; rc=$?; kill $pid; exit $rc";
  auto [rc, out] = shell(guest);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("leased 10.33.0.10"), std::string::npos) << out;
  EXPECT_EQ(manager_->leasedAddress("n1", "52:54:00:AB:CD:01"), "10.33.0.10");
  EXPECT_EQ(manager_->leasedAddress("n1", "52:54:00:ab:cd:02"), std::nullopt);
}

TEST_F(NetworkManagerTest, RefusesWhatIsNotThereAndWhatIsInUse) {
  auto missing = manager_->attachNic("nope", "web1", "52:54:00:12:34:56");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message(), "network 'nope' is not defined");
  EXPECT_EQ(manager_->checkNetworkDefined("nope").error().message(), "network 'nope' is not defined");
  EXPECT_TRUE(manager_->checkNetworkDefined("n1").ok());
  auto bad_mac = manager_->attachNic("n1", "web1", "not-a-mac");
  EXPECT_FALSE(bad_mac.ok());

  manager_->setUsersQuery([](const std::string& network) {
    return network == "n1" ? std::vector<std::string>{"web1", "db"} : std::vector<std::string>{};
  });
  auto stop = manager_->stop("n1");
  ASSERT_FALSE(stop.ok());
  EXPECT_EQ(stop.error().message(), "network 'n1' is in use by running VMs (web1, db); cannot stop it");
  auto undefine = manager_->undefine("n1");
  ASSERT_FALSE(undefine.ok());
  EXPECT_NE(undefine.error().message().find("web1, db"), std::string::npos);
  manager_->setUsersQuery(nullptr);
  ASSERT_TRUE(manager_->stop("n1").ok());
  auto inactive = manager_->attachNic("n1", "web1", "52:54:00:12:34:56");
  ASSERT_FALSE(inactive.ok());
  EXPECT_EQ(inactive.error().message(), "network 'n1' is not active (vmctl net-start n1)");
}

}  // namespace
}  // namespace vmmd::daemon
