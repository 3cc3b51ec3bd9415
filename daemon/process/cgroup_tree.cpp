#include "daemon/process/cgroup_tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

#include "base/unique_fd.h"
#include "daemon/process/process_identity.h"

namespace vmmd::daemon {
namespace {

constexpr uint64_t kCpuPeriodUs = 100000;

Status writeFile(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return Error::fromErrno("open " + path);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return Error::fromErrno("write '" + text + "' to " + path);
  }
  return {};
}

bool hasWord(const std::string& text, std::string_view word) {
  std::istringstream words(text);
  std::string w;
  while (words >> w) {
    if (w == word) return true;
  }
  return false;
}

}  // namespace

// The mount point: field 5 of the cgroup2 line of /proc/self/mountinfo (the one of its root).
Result<std::string> cgroup2MountPoint() {
  auto text = readProcFile("/proc/self/mountinfo");
  if (!text) return text.error();
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream fields(line.substr(0, dash));
    std::string id, parent, devices, root, mount_point;
    fields >> id >> parent >> devices >> root >> mount_point;
    if (root == "/") return mount_point;
  }
  return Error("no cgroup2 file system is mounted");
}

std::string cpuMaxFor(const ResourceLimits& limits) {
  if (!limits.cpu_percent) return "max " + std::to_string(kCpuPeriodUs);
  return std::to_string(uint64_t{*limits.cpu_percent} * kCpuPeriodUs / 100) + " " + std::to_string(kCpuPeriodUs);
}

std::string memoryMaxFor(const VmDefinition& def) {
  if (!def.limits || !def.limits->memory_overhead_mib) return "max";
  return std::to_string((def.memory_mib + *def.limits->memory_overhead_mib) << 20);
}

namespace {

// The delegated cgroup this process belongs to, as a directory: its own cgroup (/proc/self/cgroup's
// "0::" line under the cgroup2 mount), less a last component `leaf` when it runs in that child.
Result<std::string> delegatedCgroupOfThisProcess(std::string_view leaf) {
  auto mount = cgroup2MountPoint();
  if (!mount) return mount.error();
  auto text = readProcFile("/proc/self/cgroup");
  if (!text) return text.error();
  auto at = text->find("0::");
  if (at == std::string::npos || (at != 0 && (*text)[at - 1] != '\n')) return Error("vmmd is in no cgroup v2 (/proc/self/cgroup)");
  std::string path = text->substr(at + 3, text->find('\n', at) - at - 3);
  if (path.ends_with("/" + std::string(leaf))) path.resize(path.size() - leaf.size() - 1);
  if (path == "/" || path.empty()) return Error("vmmd runs in the root cgroup, which is not its to divide");
  return *mount + path;
}

}  // namespace

Result<CgroupTree> CgroupTree::forThisProcess() {
  // Started again in the leaf a previous vmmd made (the parent holds the workers' cgroups and
  // enables controllers for them, so no process may join the parent itself).
  auto own = delegatedCgroupOfThisProcess(kVmmdLeaf);
  if (!own) return own.error();
  return setUp(*own, ::getpid());
}

Result<std::string> CgroupTree::releaseFromControlProcess() {
  auto own = delegatedCgroupOfThisProcess(kSystemdControlLeaf);
  if (!own) return own.error();
  if (auto st = writeFile(*own + "/cgroup.subtree_control", "-cpu -memory"); !st) return st.error();
  return *own;
}

Result<CgroupTree> CgroupTree::setUp(const std::string& own, pid_t self) {
  if (::access((own + "/cgroup.subtree_control").c_str(), W_OK) != 0 || ::access(own.c_str(), W_OK) != 0) {
    return Error::fromErrno("vmmd's cgroup " + own + " is not delegated to it (not writable)");
  }
  auto controllers = readProcFile(own + "/cgroup.controllers");
  if (!controllers) return controllers.error();
  for (std::string_view needed : {"cpu", "memory"}) {
    if (!hasWord(*controllers, needed)) {
      return Error("vmmd's cgroup " + own + " has no " + std::string(needed) + " controller (cgroup.controllers: " +
                   std::string(controllers->substr(0, controllers->find('\n'))) + ")");
    }
  }
  std::string leaf = own + "/" + std::string(kVmmdLeaf);
  if (::mkdir(leaf.c_str(), 0755) < 0 && errno != EEXIST) return Error::fromErrno("mkdir " + leaf);
  if (auto st = moveInto(leaf, self); !st) return st.error();
  if (auto st = writeFile(own + "/cgroup.subtree_control", "+cpu +memory"); !st) return st.error();
  return CgroupTree(own);
}

Result<std::string> CgroupTree::createVm(const VmDefinition& def) const {
  std::string path = vmCgroup(def.name);
  if (::mkdir(path.c_str(), 0755) < 0 && errno != EEXIST) return Error::fromErrno("mkdir " + path);
  if (auto st = writeFile(path + "/cpu.max", cpuMaxFor(def.limits.value_or(ResourceLimits{}))); !st) return st.error();
  if (auto st = writeFile(path + "/memory.max", memoryMaxFor(def)); !st) return st.error();
  return path;
}

Status CgroupTree::moveInto(const std::string& path, pid_t pid) {
  return writeFile(path + "/cgroup.procs", std::to_string(pid));
}

Status CgroupTree::release() const { return writeFile(dir_ + "/cgroup.subtree_control", "-cpu -memory"); }

Status CgroupTree::remove(const std::string& path) {
  if (::rmdir(path.c_str()) < 0 && errno != ENOENT) return Error::fromErrno("rmdir " + path);
  return {};
}

}  // namespace vmmd::daemon
