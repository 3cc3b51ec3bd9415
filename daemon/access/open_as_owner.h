// Opening a file named in a VM definition with the rights of the VM's owner, so that a caller can
// never make vmmd (root) open a file the caller could not open itself.
//
// How: for an owner other than root, a short-lived child process (fork) takes the owner's uid, gid
// and supplementary groups with raw setgroups/setresgid/setresuid system calls, opens the file and
// hands the descriptor back over a socketpair (SCM_RIGHTS), then exits. A process rather than a
// thread with a per-thread fsuid: the child's credentials die with it and can never be seen by
// vmmd's other threads (glibc's setgroups/setuid wrappers change every thread of a process, and a
// pool thread would outlive the call), and setresuid away from 0 clears every capability, where
// setfsuid keeps CAP_SYS_ADMIN and friends. Blocking (fork, open, wait): call it off the event loop
// (base/uv_work.h queueWork).
//
// What is refused even when the open would succeed: directories, character devices, FIFOs and
// sockets for everyone, block devices unless the owner is root. The path is first opened O_PATH
// (nothing is read, a FIFO never blocks, a device driver never sees an open), its type checked,
// then re-opened through /proc/self/fd with `flags`, which checks the owner's permission again.
//
// Errors name the path and, for a refusal by permission, the owner:
//   "/etc/shadow: permission denied for uid 1000"   (code EACCES)
//   "/dev/sda: a block device: only root may use block devices"   (code EPERM)
//   "/tmp/x: No such file or directory"   (code ENOENT)
#pragma once

#include <functional>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/access/owner.h"

namespace vmmd::daemon {

// `flags`: O_RDONLY or O_RDWR plus modifiers such as O_DIRECT; O_CREAT, O_TRUNC and O_PATH are
// refused (a definition names existing images). The descriptor is close-on-exec.
Result<UniqueFd> openAsOwner(const Owner& owner, const std::string& path, int flags);

// A file opener bound to one owner: the shape of the worker launch's FileOpener seam, e.g.
//   FileOpener opener = ownerFileOpener(vm_owner);
std::function<Result<UniqueFd>(const std::string& path, int flags)> ownerFileOpener(Owner owner);

}  // namespace vmmd::daemon
