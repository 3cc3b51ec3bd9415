// Where a running VM's worker keeps its sockets and pid file: <run_root>/vms/<name>/.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace vmmd::daemon {

struct WorkerPaths {
  std::string dir;
  std::string qmp_socket;      // the worker's QMP monitor (the daemon is its client)
  std::string console_socket;  // COM1
  std::string qga_socket;      // host end of the guest-agent port
  std::string pidfile;

  bool operator==(const WorkerPaths&) const = default;
};

// A Unix socket path must fit in sockaddr_un.sun_path with its NUL: 107 bytes on Linux.
inline constexpr size_t kMaxUnixSocketPath = 107;

// Fails (naming the socket and its length) when a socket path would not fit, rather than letting
// the worker truncate it and the daemon connect to the wrong place. `run_root` must be absolute.
Result<WorkerPaths> workerPathsFor(std::string_view run_root, std::string_view vm_name);

}  // namespace vmmd::daemon
