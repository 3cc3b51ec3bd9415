// vmmd's delegated cgroup v2 tree, and one cgroup per worker in it (issue 14: per-VM limits).
//
// vmmd may divide its own cgroup when it can write it (systemd's Delegate=yes, or an operator who
// made one for it). cgroup v2's no-internal-processes rule lets a cgroup that enables controllers
// for its children hold no process itself, so vmmd first moves itself into a leaf "vmmd" and then
// enables cpu and memory for the children; each worker goes into "vm-<name>" with cpu.max and
// memory.max from the definition's limits, and the cgroup is removed when the worker ends.
//
// A worker is moved right after the spawn, not created in its cgroup (libuv has no
// CLONE_INTO_CGROUP). That is harmless: the worker was started with -S, so its guest runs, and
// touches guest memory, only after vmmd's `cont`, long after the move; what the worker did before
// it (reading its argv and the kernel image) is charged to vmmd's leaf, a bounded few MiB. Memory
// charged before a move stays where it was, which is why the guest must not run before it.
//
// Restarts: while the delegated cgroup enables controllers for the workers' cgroups it may hold no
// process, and systemd before 254 (Debian 12 has 252; 254 has DelegateSubgroup=) starts a unit's
// new process in the unit's cgroup itself. So a vmmd that exits disables the controllers again
// (release()): the workers run on without limits until the next vmmd, which re-applies them to
// every worker it re-attaches to. A vmmd killed with SIGKILL cannot do that itself: the unit's
// `ExecStopPost=-vmmd --release-cgroups` does it (releaseFromControlProcess()), as systemd runs a
// delegated unit's control processes in the child ".control", a leaf that may hold them, so that
// Restart=on-failure starts the next vmmd (tests/packaging: step kill-restart).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "base/result.h"
#include "daemon/definition/vm_definition.h"

namespace vmmd::daemon {

class CgroupTree {
 public:
  static constexpr std::string_view kVmmdLeaf = "vmmd";
  // Where systemd runs the control processes (ExecStopPost= ...) of a unit with Delegate=yes.
  static constexpr std::string_view kSystemdControlLeaf = ".control";

  // vmmd's cgroup (/proc/self/cgroup's "0::" line under the cgroup2 mount of
  // /proc/self/mountinfo), prepared with setUp(dir, getpid()). The error is the start-up warning.
  static Result<CgroupTree> forThisProcess();
  // `own` is the directory of the cgroup that `self` runs in: `self` moves into own/vmmd and cpu
  // and memory are enabled for own's children. Refuses the root cgroup (not vmmd's to divide), a
  // cgroup it cannot write, and one without the cpu and memory controllers.
  static Result<CgroupTree> setUp(const std::string& own, pid_t self);

  const std::string& dir() const { return dir_; }
  std::string vmCgroup(std::string_view vm_name) const { return dir_ + "/vm-" + std::string(vm_name); }

  // Creates vm-<name> (an existing one is reused: a re-attached worker's) and writes its limits: cpu.max
  // "QUOTA 100000" for cpu_percent (else "max 100000"), memory.max (memory + overhead) MiB in bytes
  // when memory_overhead_mib is given (else "max").
  Result<std::string> createVm(const VmDefinition& def) const;
  // Moves `pid` into the cgroup `path` (its cgroup.procs).
  static Status moveInto(const std::string& path, pid_t pid);
  // Disables the controllers for the children again (vmmd exits), so that the next vmmd can be
  // started in the delegated cgroup itself.
  Status release() const;
  // `vmmd --release-cgroups`, run by systemd after vmmd ended however it ended: disables the
  // controllers for the children of the unit's cgroup (this process's, less a last ".control"), so
  // that the next vmmd can start there. Returns that cgroup's directory.
  static Result<std::string> releaseFromControlProcess();
  // rmdir of a worker's cgroup once it ended; a cgroup that is gone already is fine.
  static Status remove(const std::string& path);

 private:
  explicit CgroupTree(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// Where the cgroup2 file system is mounted (/proc/self/mountinfo).
Result<std::string> cgroup2MountPoint();

// The cpu.max line for a cpu_percent: 100 % is one CPU, QUOTA of a 100 ms PERIOD.
std::string cpuMaxFor(const ResourceLimits& limits);
// memory.max: "max", or (memory + overhead) MiB in bytes.
std::string memoryMaxFor(const VmDefinition& def);

}  // namespace vmmd::daemon
