#include "daemon/supervisor/worker_resources.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/launch/worker_argv.h"
#include "net/tap.h"
#include "qmp/unix_socket.h"

namespace vmmd::daemon {
namespace {

// The pidfile as vmmd leaves it for the worker: an existing one is reused, not replaced, so a
// worker still holding its lock (recovery's sign of a live worker) keeps it, and the new worker's
// lock fails as QEMU's does. The worker opens it again through /proc/self/fd/N (not /dev/fd, which
// a bare /dev lacks), which checks the file's own permissions: it is the worker's, mode 0600.
Result<UniqueFd> openPidfile(const std::string& path, std::optional<WorkerIdentity> identity) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return Error::fromErrno("pidfile " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return Error::fromErrno("pidfile " + path);
  if (!S_ISREG(st.st_mode)) return Error("pidfile " + path + " is not a regular file");
  if (identity && ::fchown(fd.get(), identity->uid, identity->gid) < 0) return Error::fromErrno("pidfile " + path + ": chown");
  if (::fchmod(fd.get(), 0600) < 0) return Error::fromErrno("pidfile " + path + ": chmod");
  return fd;
}

Result<UniqueFd> listenFor(const std::string& what, const std::string& path) {
  auto listener = qmp::listenUnix(path, 16, 0600);
  if (!listener) return listener.error().withContext(what + " socket");
  return std::move(*listener);
}

// The tap attached as the worker wants it (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, single queue: the
// worker's virtio-net has one queue pair); the worker gets its own copy of the fd.
Result<UniqueFd> attachTap(size_t index, const std::string& ifname) {
  auto tap = net::Tap::open(ifname);
  if (!tap) return tap.error().withContext("nics[" + std::to_string(index) + "]");
  UniqueFd fd(::fcntl(tap->fd(), F_DUPFD_CLOEXEC, 0));
  if (!fd) return Error::fromErrno("nics[" + std::to_string(index) + "]: tap " + ifname);
  return fd;
}

}  // namespace

Result<WorkerResources> prepareWorker(const VmDefinition& def, const WorkerPaths& paths,
                                      std::optional<WorkerIdentity> identity, const FileOpener& open_file,
                                      const FileOpener& open_device, NetworkTaps network_taps) {
  WorkerResources out;
  WorkerFds fds;
  // The QMP socket listens before the worker exists: connecting to it cannot fail however slowly
  // the worker comes up (the kernel queues us until it accepts).
  auto qmp = listenFor("QMP", paths.qmp_socket);
  if (!qmp) return qmp.error();
  out.fds.add(std::move(*qmp));  // kWorkerQmpFd
  if (def.serial) {
    auto console = listenFor("console", paths.console_socket);
    if (!console) return console.error();
    fds.console = out.fds.add(std::move(*console));
  }
  if (def.agent) {
    auto qga = listenFor("agent", paths.qga_socket);
    if (!qga) return qga.error();
    fds.qga = out.fds.add(std::move(*qga));
  }
  auto pidfile = openPidfile(paths.pidfile, identity);
  if (!pidfile) return pidfile.error();
  fds.pidfile = out.fds.add(std::move(*pidfile));

  auto files = openWorkerFiles(def, open_file);
  if (!files) return files.error();
  // /dev/kvm is vmmd's to open whatever the caller may open: the worker needs it and nothing else
  // of the host's devices.
  auto kvm = open_device(kKvmDevice, O_RDWR);
  if (!kvm) return kvm.error().withContext("open");
  files->push_back(WorkerFile{kKvmDevice, true, std::move(*kvm)});
  fds.add_fd = addFdArgs(std::move(*files), out.fds);

  for (size_t i = 0; i < def.nics.size(); ++i) {
    if (def.nics[i].onNetwork()) {
      auto made = network_taps.find(i);
      if (made == network_taps.end() || !made->second) {
        return Error("nics[" + std::to_string(i) + "]: no tap was made on network '" + def.nics[i].network + "'");
      }
      fds.taps.push_back(out.fds.add(std::move(made->second)));
      continue;
    }
    auto tap = attachTap(i, def.nics[i].ifname);
    if (!tap) return tap.error();
    fds.taps.push_back(out.fds.add(std::move(*tap)));
  }
  out.args = workerArgv(def, paths, fds);
  return out;
}

}  // namespace vmmd::daemon
