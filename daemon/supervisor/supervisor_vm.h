// Supervisor internals: what the supervisor holds for one VM while it has a worker (or a restart
// pending). Shared by the supervisor's source files only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/uv_handle.h"
#include "daemon/launch/worker_paths.h"
#include "daemon/supervisor/agent_channel.h"
#include "daemon/supervisor/console_relay.h"
#include "daemon/supervisor/supervisor.h"
#include "daemon/supervisor/worker_process.h"
#include "qmp/uv_client.h"

namespace vmmd::daemon {

struct Supervisor::Vm {
  VmDefinition def;
  WorkerPaths paths;
  RuntimeRecord record;  // as last saved; record.state is the VM's state
  std::unique_ptr<WorkerProcess> process;
  std::unique_ptr<qmp::UvClient> qmp;
  std::unique_ptr<ConsoleRelay> console;
  std::unique_ptr<AgentChannel> agent;  // while the worker runs, for a definition with "agent": true
  // One timer per VM, for whichever wait is current: the QMP greeting while starting or
  // re-attaching, the shutdown timeout, or the restart backoff.
  UvHandle<uv_timer_t> timer;
  std::function<void()> on_timer;  // what the timer does when it fires
  bool qmp_ready = false;
  bool qmp_failed = false;  // gave up connecting to a re-attached worker
  bool reattached = false;     // adopted after a vmmd restart (not our child)
  bool guest_shutdown = false;  // the worker announced SHUTDOWN with guest=true
  bool host_quit = false;       // SHUTDOWN with guest=false: `quit` passed through vm-qmp, or a signal
  bool force_on_timeout = false;
  ShutdownMode shutdown_mode = ShutdownMode::kAcpi;
  uint32_t shutdown_timeout_s = 0;
  int64_t shutdown_deadline_us = 0;
  Intent intent = Intent::kNone;
  std::vector<Completion> start_waiters;  // vm-start callers, answered once the guest runs
  std::vector<Completion> stop_waiters;   // vm-shutdown / vm-destroy callers, answered at exit
  // Commands that came while the QMP connection was being made (see withWorker).
  std::vector<std::pair<WorkerAction, Completion>> awaiting_qmp;

  const std::string& name() const { return def.name; }
};

// CommandResult is move-only (a Json document); each waiter gets its own copy.
inline qmp::CommandResult copyResult(const qmp::CommandResult& result) {
  if (auto* err = std::get_if<qmp::QmpError>(&result)) return *err;
  return qmp::jsonCopy(std::get<qmp::Json>(result));
}

inline std::string workerLogPath(const WorkerPaths& paths) { return paths.dir + "/worker.log"; }
inline std::string ttyPath(const WorkerPaths& paths) { return paths.dir + "/tty.sock"; }

// "VM 'web1' is not defined" and friends.
inline std::string vmText(std::string_view name) { return "VM '" + std::string(name) + "'"; }

}  // namespace vmmd::daemon
