// Definition → the worker's command line. The argv is QEMU's: the same arguments start the guest
// under qemu-system-x86_64 (tests/daemon checks that real QEMU accepts them), so the worker can be
// swapped for QEMU when a feature is missing.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/definition/vm_definition.h"
#include "daemon/launch/worker_paths.h"

namespace vmmd::daemon {

// The guest-agent port's device id: the worker's VSERPORT_CHANGE events name it when the guest
// opens or closes the port (qemu-ga starting or stopping).
inline constexpr std::string_view kAgentPortId = "agent0";

// The worker's QMP monitor is a listening socket that vmmd bound at paths.qmp_socket and passes
// open as this fd (the first after stdio), so vmmd can connect the moment the worker exists:
// `-chardev socket,id=qmp,fd=3,server=on,wait=off -mon chardev=qmp,mode=control`, as QEMU takes it.
inline constexpr int kWorkerQmpFd = 3;

// What vmmd opened for the worker, by the numbers the fds have in the worker. A worker that is
// not root cannot bind sockets in vmmd's run directory nor attach to a tap, so vmmd does and
// passes them: the console and agent sockets bound and listening (as the QMP one), each NIC's tap
// attached (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR), the pidfile created and given to the worker's
// uid (named "/proc/self/fd/N": the worker cannot reach it by path). `add_fd` are the -add-fd
// arguments of worker_files.h (files and /dev/kvm). Whatever is absent is named by path.
struct WorkerFds {
  std::optional<int> console;
  std::optional<int> qga;
  std::optional<int> pidfile;
  std::vector<int> taps;  // one per NIC, in the definition's order
  std::vector<std::string> add_fd;
};

// The arguments after argv[0]. Device ids: disks keep their own ids, NICs are net0, net1...,
// the console chardev is "console", the agent chardev "qga0" and its port kAgentPortId, the QMP
// chardev "qmp" (on kWorkerQmpFd).
std::vector<std::string> workerArgv(const VmDefinition& def, const WorkerPaths& paths, const WorkerFds& fds = {});

// QEMU option values use ",," for a literal comma ("file=/a,,b" is the file "/a,b").
std::string escapeOptionValue(std::string_view value);

}  // namespace vmmd::daemon
