// A re-attached worker's taps: which fd each NIC's tap is, from the argv vmmd gave it, and the
// interface a tun fd is attached to, from the kernel's fdinfo text.
#include "daemon/process/worker_taps.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "daemon/definition/definition_json.h"
#include "daemon/launch/worker_argv.h"

namespace vmmd::daemon {
namespace {

TEST(WorkerTaps, FdsOfTheNicsFromTheArgvVmmdWrites) {
  auto def = parseDefinition(R"({"schema": 1, "name": "t", "memory": 64, "kernel": "/k",
      "nics": [{"network": "default"}, {"ifname": "tap9"}, {"network": "lab"}]})");
  ASSERT_TRUE(def.ok()) << def.error().message();
  auto paths = workerPathsFor("/run/vmmd", "t");
  ASSERT_TRUE(paths.ok());
  WorkerFds fds;
  fds.taps = {7, 8, 11};
  auto fds_of = tapFdsInArgv(workerArgv(*def, *paths, fds));
  EXPECT_EQ(fds_of, (std::map<size_t, int>{{0, 7}, {1, 8}, {2, 11}}));
  // A NIC attached by name has no fd; other arguments are not NICs.
  EXPECT_EQ(tapFdsInArgv({"-netdev", "tap,id=net0,ifname=tap0,script=no", "-netdev", "tap,id=net1,fd=5",
                          "-chardev", "socket,id=net2,fd=6", "-netdev", "tap,id=net3,fd=x", "-netdev"}),
            (std::map<size_t, int>{{1, 5}}));
}

TEST(WorkerTaps, InterfaceNameFromFdinfo) {
  // As Linux 6.1 writes /proc/PID/fdinfo/N for a tun fd.
  EXPECT_EQ(tapNameInFdinfo("pos:\t0\nflags:\t02000002\nmnt_id:\t26\nino:\t1046\niff:\tvmmdt0\n"), "vmmdt0");
  EXPECT_EQ(tapNameInFdinfo("pos:\t0\nflags:\t02\nmnt_id:\t26\nino:\t1046\n"), std::nullopt);  // not attached
  EXPECT_EQ(tapNameInFdinfo("iff:\t\n"), std::nullopt);
  EXPECT_EQ(tapNameInFdinfo(""), std::nullopt);
}

TEST(WorkerTaps, AProcessWithoutThoseFdsHasNone) {
  EXPECT_TRUE(workerTaps(::getpid(), {"-netdev", "tap,id=net0,fd=1000"}).empty());
}

}  // namespace
}  // namespace vmmd::daemon
