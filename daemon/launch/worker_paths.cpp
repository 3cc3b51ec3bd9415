#include "daemon/launch/worker_paths.h"

#include "daemon/definition/identifiers.h"

namespace vmmd::daemon {

Result<WorkerPaths> workerPathsFor(std::string_view run_root, std::string_view vm_name) {
  if (run_root.empty() || run_root.front() != '/') return Error("run dir '" + std::string(run_root) + "': must be absolute");
  if (auto st = validateVmName(vm_name); !st) return st.error().withContext("vm name '" + std::string(vm_name) + "'");
  std::string root(run_root);
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  WorkerPaths paths;
  paths.dir = root + "/vms/" + std::string(vm_name);
  paths.qmp_socket = paths.dir + "/qmp.sock";
  paths.console_socket = paths.dir + "/console.sock";
  paths.qga_socket = paths.dir + "/qga.sock";
  paths.pidfile = paths.dir + "/pid";
  for (const std::string* socket : {&paths.qmp_socket, &paths.console_socket, &paths.qga_socket}) {
    if (socket->size() > kMaxUnixSocketPath) {
      return Error("socket path " + *socket + " is " + std::to_string(socket->size()) + " bytes, more than the " +
                   std::to_string(kMaxUnixSocketPath) + " a Unix socket allows (use a shorter run dir or VM name)");
    }
  }
  return paths;
}

}  // namespace vmmd::daemon
