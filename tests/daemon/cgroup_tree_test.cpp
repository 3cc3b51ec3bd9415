// CgroupTree against the real cgroup v2 file system: the test makes a cgroup to act as vmmd's
// delegated one (the test host runs as root) and a child process to act as vmmd.
#include "daemon/process/cgroup_tree.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "daemon/process/process_identity.h"
#include "tests/support/cannot_run.h"

namespace vmmd::daemon {
namespace {

std::string firstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

bool hasWord(const std::string& text, const std::string& word) {
  std::istringstream words(text);
  std::string w;
  while (words >> w) {
    if (w == word) return true;
  }
  return false;
}

// A child that sleeps until killed; reaped on destruction.
struct Sleeper {
  pid_t pid = ::fork();
  Sleeper() {
    if (pid == 0) {
      ::pause();
      ::_exit(0);
    }
  }
  ~Sleeper() {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
};

VmDefinition limited(const std::optional<ResourceLimits>& limits) {
  VmDefinition def;
  def.name = "web1";
  def.memory_mib = 512;
  def.limits = limits;
  return def;
}

TEST(CgroupLimits, CpuPercentIsAQuotaOfA100msPeriodAndMemoryIsGuestPlusOverhead) {
  EXPECT_EQ(cpuMaxFor(ResourceLimits{}), "max 100000");
  EXPECT_EQ(cpuMaxFor(ResourceLimits{150, std::nullopt}), "150000 100000");
  EXPECT_EQ(cpuMaxFor(ResourceLimits{1, std::nullopt}), "1000 100000");
  EXPECT_EQ(memoryMaxFor(limited(std::nullopt)), "max");
  EXPECT_EQ(memoryMaxFor(limited(ResourceLimits{50, std::nullopt})), "max");
  EXPECT_EQ(memoryMaxFor(limited(ResourceLimits{std::nullopt, 64})), std::to_string(576ull << 20));
}

TEST(CgroupTree, ADelegatedCgroupGetsALeafForVmmdAndOneCgroupPerWorker) {
  if (::geteuid() != 0) VMMD_CANNOT_RUN("making a cgroup needs root");
  auto mount = cgroup2MountPoint();
  if (!mount) VMMD_CANNOT_RUN("no cgroup v2 here: " << mount.error().message());
  std::string own = *mount + "/vmmd-test-" + std::to_string(::getpid());
  ASSERT_EQ(::mkdir(own.c_str(), 0755), 0) << own;
  std::string parent_controllers = firstLine(*mount + "/cgroup.controllers");
  bool usable = hasWord(parent_controllers, "cpu") && hasWord(parent_controllers, "memory");
  if (usable) std::ofstream(*mount + "/cgroup.subtree_control") << "+cpu +memory";
  {
    Sleeper vmmd;
    Sleeper worker;
    ASSERT_TRUE(CgroupTree::moveInto(own, vmmd.pid).ok());
    auto tree = CgroupTree::setUp(own, vmmd.pid);
    if (!usable) {
      // A host whose cgroup v2 has no cpu or memory controller (they are bound to v1 here): the
      // reason is the warning vmmd gives, and vmmd runs on without cgroups.
      ASSERT_FALSE(tree.ok());
      EXPECT_NE(tree.error().message().find("vmmd's cgroup " + own + " has no "), std::string::npos) << tree.error().message();
    } else {
      ASSERT_TRUE(tree.ok()) << tree.error().message();
      EXPECT_EQ(firstLine(own + "/vmmd/cgroup.procs"), std::to_string(vmmd.pid)) << "vmmd is in its leaf";
      EXPECT_TRUE(hasWord(firstLine(own + "/cgroup.subtree_control"), "memory"));
      auto vm = tree->createVm(limited(ResourceLimits{150, 64}));
      ASSERT_TRUE(vm.ok()) << vm.error().message();
      EXPECT_EQ(*vm, own + "/vm-web1");
      EXPECT_EQ(firstLine(*vm + "/cpu.max"), "150000 100000");
      EXPECT_EQ(firstLine(*vm + "/memory.max"), std::to_string(576ull << 20));
      ASSERT_TRUE(CgroupTree::moveInto(*vm, worker.pid).ok());
      EXPECT_EQ(firstLine("/proc/" + std::to_string(worker.pid) + "/cgroup"), "0::" + own.substr(mount->size()) + "/vm-web1");
      // A cgroup with its worker still in it cannot go; once the worker is gone it can, once.
      EXPECT_FALSE(CgroupTree::remove(*vm).ok());
      ::kill(worker.pid, SIGKILL);
      ::waitpid(worker.pid, nullptr, 0);
      EXPECT_TRUE(CgroupTree::remove(*vm).ok());
      EXPECT_TRUE(CgroupTree::remove(*vm).ok()) << "already gone is fine";
      // A vmmd that exits lets the next one start in the delegated cgroup itself (systemd 252).
      Sleeper next;
      EXPECT_FALSE(CgroupTree::moveInto(own, next.pid).ok()) << "no process may join a cgroup that enables controllers";
      ASSERT_TRUE(tree->release().ok());
      EXPECT_TRUE(CgroupTree::moveInto(own, next.pid).ok()) << "the next vmmd cannot start where systemd puts it";
    }
  }
  ::rmdir((own + "/vmmd").c_str());
  EXPECT_EQ(::rmdir(own.c_str()), 0) << "the test's cgroup was left behind: " << own;
}

}  // namespace
}  // namespace vmmd::daemon
