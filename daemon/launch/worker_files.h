// The files a worker reads and writes, opened by vmmd and passed to it as file descriptors: an
// unprivileged worker cannot open a VM's files by path (issue 14), and must not be able to.
//
// The worker gets each one in QEMU's syntax, `-add-fd fd=N,set=S,opaque=PATH`: when it comes to
// open PATH (the kernel, the initrd, a drive's file, a qcow2 backing file, /dev/kvm) it takes the
// fd of the set whose opaque is PATH instead. The argv keeps naming the files by path, so real
// QEMU accepts the same command line.
//
// Backing files: a qcow2 image's backing chain is read here (each header parsed from the open fd
// by storage/'s qcow2 parser) and every file of it opened read-only. A relative backing name is
// taken as QEMU and the worker take it, the image's directory + "/" + name (no normalisation: the
// opaque must be the very string the worker will open). A backing file must name its format.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/definition/vm_definition.h"
#include "daemon/launch/passed_fds.h"

namespace vmmd::daemon {

// Opens `path` for the worker (flags as open(2); O_CLOEXEC is added). The seam through which the
// caller's credentials apply: vmmd binds an opener that opens as the VM's owner.
using FileOpener = std::function<Result<UniqueFd>(const std::string& path, int flags)>;

// open(2) with vmmd's own credentials.
Result<UniqueFd> openPlainFile(const std::string& path, int flags);

// The device the worker needs for KVM; vmmd opens it and passes it like a file.
inline constexpr const char* kKvmDevice = "/dev/kvm";

// The deepest backing chain followed, as the worker's own limit (storage OpenOptions).
inline constexpr int kMaxBackingDepth = 32;

struct WorkerFile {
  std::string path;  // the string the worker opens: the fd set's opaque
  bool writable = false;
  UniqueFd fd;
};

// Kernel (or the firmware image of boot.loader), initrd, every disk (read-write unless readonly) and, for qcow2 disks, their backing
// chains (read-only). Errors name the definition's field: "disks[0].path: /x.qcow2: backing file
// base.img does not name its format".
Result<std::vector<WorkerFile>> openWorkerFiles(const VmDefinition& def, const FileOpener& open);

// `-add-fd fd=N,set=S,opaque=PATH` for each file (sets numbered from 1), the fds moved into `fds`.
std::vector<std::string> addFdArgs(std::vector<WorkerFile> files, PassedFds& fds);

}  // namespace vmmd::daemon
