// Everything a worker gets from vmmd at spawn, opened by vmmd: its QMP, console and agent sockets
// (bound and listening), its pidfile, /dev/kvm, the VM's files (worker_files.h) and its taps.
// The worker itself then needs no right to any path: it can run as an unprivileged uid with no
// capabilities. The fds close in vmmd when the result goes (right after the spawn).
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "daemon/definition/vm_definition.h"
#include "daemon/launch/passed_fds.h"
#include "daemon/launch/worker_files.h"
#include "daemon/launch/worker_paths.h"
#include "daemon/supervisor/worker.h"

namespace vmmd::daemon {

struct WorkerResources {
  PassedFds fds;                  // the QMP listener first, as kWorkerQmpFd
  std::vector<std::string> args;  // workerArgv with every fd named
};

// The taps vmmd made for the NICs that name a network (NetworkManager::attachNic), by the NIC's
// index in the definition.
using NetworkTaps = std::map<size_t, UniqueFd>;

// Binds the sockets (mode 0600, vmmd's: the worker only accepts on them), creates the pidfile
// owned by `identity` (nothing else in the VM directory is the worker's), opens /dev/kvm, the
// files through `open_file`, /dev/kvm through `open_device`, and attaches the taps of the ifname
// NICs; a network NIC's tap comes made in `network_taps`. Errors name what failed: "disks[1].path: ...",
// "nics[0]: tap tap0: TUNSETIFF: ...".
Result<WorkerResources> prepareWorker(const VmDefinition& def, const WorkerPaths& paths,
                                      std::optional<WorkerIdentity> identity, const FileOpener& open_file,
                                      const FileOpener& open_device, NetworkTaps network_taps = {});

}  // namespace vmmd::daemon
