// vmmd's command line. Defaults are the system paths; tests and the README demo pass temporary
// ones (--state-dir, --run-dir), so nothing root-only is needed to try it.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "daemon/launch/worker_ids.h"

namespace vmmd::daemon {

struct DaemonOptions {
  std::string state_dir = "/var/lib/vmmd";  // vmmd.db
  std::string run_dir = "/run/vmmd";        // per-VM sockets and logs
  std::string socket;                       // default <run_dir>/vmmd.sock
  std::optional<std::string> group;         // owner group of the control socket (a name or a gid)
  uint32_t max_clients_per_user = 64;       // connections per non-root uid; root gets 16 times as many
  uint32_t client_idle_timeout_s = 60;      // a client that never completes a message is dropped after this
  std::string vmm;                          // default: `vmm` next to vmmd, else from PATH
  std::string img;                          // vmm-img (offline snapshot revert/delete); found like vmm
  std::string kvm_device = "/dev/kvm";      // opened by vmmd, passed to every worker (a worker without KVM,
                                            // e.g. QEMU under TCG in the tests, can be given /dev/null)
  WorkerIdRange worker_ids;                 // the uids/gids of workers (a root vmmd)
  bool foreground = false;
  bool help = false;
  bool release_cgroups = false;             // only disable the cgroup controllers, then exit (ExecStopPost=)
};

// argv[0] is used to find the vmm next to vmmd. Errors name the option.
Result<DaemonOptions> parseDaemonOptions(const std::vector<std::string>& argv);
std::string daemonUsage();

// The gid of --group: a group name, or a decimal gid ("--group: no group named 'x'").
Result<gid_t> resolveGroup(const std::string& name);

// Where `vmm` is: next to `self_exe`, else the first executable `vmm` on PATH.
Result<std::string> findWorkerBinary(const std::string& self_exe);
// Where `vmm-img` is: next to `self_exe` (or build/storage/ in the build tree), else on PATH.
Result<std::string> findImageTool(const std::string& self_exe);
// Where `vmctl` is: next to `self_exe` (or build/cli/ in the build tree), else on PATH. A migration
// over ssh runs the same path on the destination host for its stdio bridge.
Result<std::string> findVmctl(const std::string& self_exe);

}  // namespace vmmd::daemon
