// vmmd's command line: defaults, absolute paths, errors that name the option.
#include "daemon/server/options.h"

#include <gtest/gtest.h>

namespace vmmd::daemon {
namespace {

TEST(DaemonOptions, Defaults) {
  auto o = parseDaemonOptions({"vmmd"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->state_dir, "/var/lib/vmmd");
  EXPECT_EQ(o->run_dir, "/run/vmmd");
  EXPECT_EQ(o->socket, "/run/vmmd/vmmd.sock");
  EXPECT_FALSE(o->group);
  EXPECT_FALSE(o->foreground);
  EXPECT_FALSE(o->release_cgroups);
}

// The unit's ExecStopPost= mode: no daemon, only the controllers disabled.
TEST(DaemonOptions, ReleaseCgroupsIsAModeOfItsOwn) {
  auto o = parseDaemonOptions({"vmmd", "--release-cgroups"});
  ASSERT_TRUE(o.ok()) << o.error().message();
  EXPECT_TRUE(o->release_cgroups);
  EXPECT_NE(daemonUsage().find("--release-cgroups"), std::string::npos);
}

TEST(DaemonOptions, SocketFollowsRunDirUnlessGiven) {
  auto o = parseDaemonOptions({"vmmd", "--run-dir", "/tmp/r", "--state-dir=/tmp/s", "--group", "kvm", "--foreground"});
  ASSERT_TRUE(o.ok()) << o.error().message();
  EXPECT_EQ(o->run_dir, "/tmp/r");
  EXPECT_EQ(o->state_dir, "/tmp/s");
  EXPECT_EQ(o->socket, "/tmp/r/vmmd.sock");
  EXPECT_EQ(o->group, "kvm");
  EXPECT_TRUE(o->foreground);
  auto s = parseDaemonOptions({"vmmd", "--socket", "/tmp/x.sock", "--run-dir", "/tmp/r"});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->socket, "/tmp/x.sock");
}

// The KVM device handed to workers: /dev/kvm unless --kvm names another (a path, made absolute).
TEST(DaemonOptions, KvmDeviceDefaultsToDevKvm) {
  auto o = parseDaemonOptions({"vmmd"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->kvm_device, "/dev/kvm");
  auto set = parseDaemonOptions({"vmmd", "--kvm", "/dev/null"});
  ASSERT_TRUE(set.ok()) << set.error().message();
  EXPECT_EQ(set->kvm_device, "/dev/null");
  auto equals = parseDaemonOptions({"vmmd", "--kvm=/dev/null"});
  ASSERT_TRUE(equals.ok()) << equals.error().message();
  EXPECT_EQ(equals->kvm_device, "/dev/null");
  auto missing = parseDaemonOptions({"vmmd", "--kvm"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message(), "--kvm: needs a value");
  EXPECT_NE(daemonUsage().find("--kvm PATH"), std::string::npos);
}

TEST(DaemonOptions, RelativePathsBecomeAbsolute) {
  auto o = parseDaemonOptions({"vmmd", "--run-dir", "rel/../run"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->run_dir.front(), '/');
  EXPECT_EQ(o->run_dir.substr(o->run_dir.size() - 4), "/run");
}

TEST(DaemonOptions, ClientLimitsAndNumericGroup) {
  auto defaults = parseDaemonOptions({"vmmd"});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->max_clients_per_user, 64u);
  EXPECT_EQ(defaults->client_idle_timeout_s, 60u);
  auto set = parseDaemonOptions({"vmmd", "--max-clients-per-user", "8", "--client-idle-timeout=2", "--group", "4242"});
  ASSERT_TRUE(set.ok()) << set.error().message();
  EXPECT_EQ(set->max_clients_per_user, 8u);
  EXPECT_EQ(set->client_idle_timeout_s, 2u);
  EXPECT_EQ(resolveGroup(*set->group).value(), 4242u);
  for (const char* bad : {"0", "-1", "x", "1000001"}) {
    auto refused = parseDaemonOptions({"vmmd", "--max-clients-per-user", bad});
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.error().message(), std::string("--max-clients-per-user: expected a number from 1 to 1000000, got '") + bad + "'");
  }
  EXPECT_FALSE(resolveGroup("no-such-group-here").ok());
}

TEST(DaemonOptions, ErrorsNameTheOption) {
  auto missing = parseDaemonOptions({"vmmd", "--state-dir"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message(), "--state-dir: needs a value");
  auto unknown = parseDaemonOptions({"vmmd", "--colour"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message(), "unknown argument '--colour'");
  auto empty = parseDaemonOptions({"vmmd", "--group="});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message().find("--group"), std::string::npos);
}

TEST(DaemonOptions, WorkerIdsHaveADefaultAndTakeARange) {
  auto defaults = parseDaemonOptions({"vmmd"});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->worker_ids, (WorkerIdRange{1879048192, 65536}));
  auto given = parseDaemonOptions({"vmmd", "--worker-ids", "300000:100"});
  ASSERT_TRUE(given.ok()) << given.error().message();
  EXPECT_EQ(given->worker_ids, (WorkerIdRange{300000, 100}));
  auto joined = parseDaemonOptions({"vmmd", "--worker-ids=0x80000:16"});
  ASSERT_TRUE(joined.ok()) << joined.error().message();
  EXPECT_EQ(joined->worker_ids, (WorkerIdRange{0x80000, 16}));
  auto root = parseDaemonOptions({"vmmd", "--worker-ids", "0:10"});
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.error().message(), "--worker-ids: '0:10': uid 0 is root, not an unprivileged id");
  auto missing = parseDaemonOptions({"vmmd", "--worker-ids"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message(), "--worker-ids: needs a value");
}

TEST(DaemonOptions, WorkerBinaryIsFoundOrExplained) {
  auto missing = findWorkerBinary("/nonexistent/dir/vmmd");
  // Either a vmm on PATH or an error that says what to do.
  if (!missing.ok()) {
    EXPECT_NE(missing.error().message().find("--vmm"), std::string::npos);
  }
}

}  // namespace
}  // namespace vmmd::daemon
