// prepareWorker with NICs on vmmd networks: the tap each network NIC got (NetworkManager::attachNic)
// goes to the worker as `-netdev tap,fd=N` at its place among the NICs. The fds stand in for taps
// (prepareWorker only passes them on); ifname NICs are left out: attaching one as root would make
// a tap on the host.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "daemon/definition/definition_json.h"
#include "daemon/supervisor/worker_resources.h"
#include "tests/support/temp_dir.h"

namespace vmmd::daemon {
namespace {

// The worker's /dev/kvm, passed like the real one.
Result<UniqueFd> noKvm(const std::string&, int flags) { return openPlainFile("/dev/null", flags); }

UniqueFd standInTap() { return UniqueFd(::eventfd(0, EFD_CLOEXEC)); }

// The value after each "-netdev".
std::vector<std::string> netdevs(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "-netdev") out.push_back(args[i + 1]);
  }
  return out;
}

class WorkerResourcesNetworks : public ::testing::Test {
 protected:
  VmDefinition definition(const std::string& nics) {
    auto def = parseDefinition(R"({"schema": 1, "name": "n1", "memory": 64, "kernel": "/dev/null", "serial": false, "nics": )" + nics + "}");
    EXPECT_TRUE(def.ok()) << def.error().message();
    return def.ok() ? *def : VmDefinition{};
  }
  WorkerPaths paths() {
    auto made = workerPathsFor(dir_.path() + "/run", "n1");
    EXPECT_TRUE(made.ok());
    std::filesystem::create_directories(made->dir);
    return *made;
  }
  test_support::TempDir dir_;
};

TEST_F(WorkerResourcesNetworks, EveryNetworkNicGetsItsTapAsAnFd) {
  VmDefinition def = definition(R"([{"network": "default", "mac": "52:54:00:00:00:01"},
                                     {"network": "lab", "mac": "52:54:00:00:00:02"}])");
  NetworkTaps taps;
  taps.emplace(0, standInTap());
  taps.emplace(1, standInTap());
  int second = taps[1].get();
  auto resources = prepareWorker(def, paths(), std::nullopt, openPlainFile, noKvm, std::move(taps));
  ASSERT_TRUE(resources.ok()) << resources.error().message();
  // QMP 3, pidfile 4, kernel 5, /dev/kvm 6, then the taps in NIC order.
  EXPECT_EQ(netdevs(resources->args), (std::vector<std::string>{"tap,id=net0,fd=7", "tap,id=net1,fd=8"}));
  std::vector<int> raw = resources->fds.raw();
  ASSERT_EQ(raw.size(), 6u);
  EXPECT_EQ(raw[5], second);  // the worker's fd 8 is that NIC's tap, not a copy of another
  auto device = std::find(resources->args.begin(), resources->args.end(), "virtio-net-pci,netdev=net1,mac=52:54:00:00:00:02");
  EXPECT_NE(device, resources->args.end());
}

TEST_F(WorkerResourcesNetworks, ANetworkNicWithoutATapIsRefusedNamingIt) {
  VmDefinition def = definition(R"([{"network": "default"}])");
  auto resources = prepareWorker(def, paths(), std::nullopt, openPlainFile, noKvm, {});
  ASSERT_FALSE(resources.ok());
  EXPECT_EQ(resources.error().message(), "nics[0]: no tap was made on network 'default'");
}

}  // namespace
}  // namespace vmmd::daemon
