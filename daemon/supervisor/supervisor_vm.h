// Supervisor internals: what the supervisor holds for one VM while it has a worker (or a restart
// pending). Shared by the supervisor's source files only.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "base/uv_handle.h"
#include "daemon/supervisor/stream_listener.h"
#include "daemon/supervisor/outgoing_migration.h"
#include "daemon/launch/worker_paths.h"
#include "daemon/supervisor/agent_channel.h"
#include "daemon/supervisor/console_relay.h"
#include "daemon/supervisor/supervisor.h"
#include "daemon/supervisor/worker.h"

namespace vmmd::daemon {

// Where the QMP connection to the worker stands.
enum class QmpLink {
  kConnecting,   // until negotiated (a start, or a re-attach)
  kReady,
  kLost,         // the worker is ending; its exit is reported by the process, not the socket
  kUnreachable,  // a re-attached worker that runs but will not talk: left alone, commands refused
};

// A spawned worker is vmmd's child; an adopted one outlived the previous vmmd.
enum class WorkerOrigin { kSpawned, kAdopted };

// What the worker's SHUTDOWN event said, if it came: a guest power-off, or a host-side `quit`
// (through vm-qmp, or a signal). A guest power-off wins when both came.
enum class ShutdownCause { kNone, kGuestPowerOff, kHostQuit };

// What the guest agent last said about the guest's addresses (guest-network-get-interfaces).
struct AgentAddresses {
  std::map<std::string, std::string> ipv4_by_mac;  // lower-case MAC -> the first IPv4 address
  int64_t answered_us = 0;                         // when it answered; 0: never
  int64_t asked_us = 0;
  bool in_flight = false;
};

// The worker is started with `-incoming defer` and loads its state from `stream` (a state file, or
// the connection `listener` accepts) through getfd + migrate-incoming before the guest runs.
struct IncomingPlan {
  UniqueFd stream;
  std::unique_ptr<StreamListener> listener;
  bool run = true;  // `cont` once loaded; else the guest stays paused
  // Once the worker waits for a stream that `listener` has not accepted yet: the socket's path.
  std::function<void(const std::string& socket)> on_listening;
  bool loading = false;
};

struct Supervisor::Vm {
  VmDefinition def;
  Owner owner;  // who defined it: whose credentials open its files, who may act on it
  WorkerPaths paths;
  RuntimeRecord record;  // as last saved; record.state is visibleState(lifecycle)
  VmLifecycle lifecycle;
  std::optional<ShutdownPlan> shutdown;  // from vm-shutdown until the worker's end
  WorkerOrigin origin = WorkerOrigin::kSpawned;
  QmpLink link = QmpLink::kConnecting;
  ShutdownCause announced = ShutdownCause::kNone;
  std::unique_ptr<Worker> process;
  WorkerIdLease worker_id;  // the uid/gid its worker runs as, while the VM is supervised
  std::string cgroup;       // the worker's cgroup (vm-<name>) while it runs; removed at its end
  std::unique_ptr<WorkerLink> qmp;
  std::unique_ptr<ConsoleRelay> console;
  std::unique_ptr<AgentChannel> agent;  // while the worker runs, for a definition with "agent": true
  AgentAddresses agent_addresses;       // while the worker runs
  // The taps vmmd made for its network NICs (NetworkManager::attachNic), by NIC index, while its
  // worker runs. Not persistent: each vanishes with the worker's fd; a re-attached worker's are
  // found again from /proc (process/worker_taps.h).
  std::map<size_t, std::string> taps;
  // One timer per VM, for whichever wait is current: the QMP greeting while starting or
  // re-attaching, the shutdown timeout, or the restart backoff.
  UvHandle<uv_timer_t> timer;
  std::function<void()> on_timer;  // what the timer does when it fires
  // A lost QMP connection to a live worker is made again on this timer, with backoff.
  UvHandle<uv_timer_t> reconnect_timer;
  std::function<void()> on_reconnect;
  uint32_t reconnect_attempt = 0;
  int64_t link_lost_us = 0;
  std::vector<Completion<Done>> start_waiters;  // vm-start callers, answered once the guest runs
  std::vector<StopCompletion> stop_waiters;     // vm-shutdown / vm-destroy callers, answered at exit
  // A worker that starts from a migration stream (snapshot revert, the destination of a migration).
  std::optional<IncomingPlan> incoming;
  // The snapshot or migration in progress ("snapshot save", "migration to ..."): one at a time.
  std::string operation;
  // Told when the worker ends while `operation` runs.
  std::function<void(const VmError& why)> on_worker_exit;
  std::unique_ptr<OutgoingMigration> outgoing;  // the source side of a migration in progress
  // Commands that came while the QMP connection was being made (see withWorker).
  std::vector<std::pair<WorkerAction, WorkerUnavailable>> awaiting_qmp;

  const std::string& name() const { return def.name; }
  VmState state() const { return visibleState(lifecycle); }
  // A stop was asked for (vm-shutdown, vm-destroy, a failed start): the worker's end is no crash.
  bool stopping() const { return lifecycle.phase == VmPhase::kShuttingDown || lifecycle.phase == VmPhase::kDestroying; }
};

// <snapshot_dir>/<vm>/<tag>.state
std::string snapshotStatePath(const std::string& snapshot_dir, const std::string& vm, const std::string& tag);

inline std::string workerLogPath(const WorkerPaths& paths) { return paths.dir + "/worker.log"; }
inline std::string ttyPath(const WorkerPaths& paths) { return paths.dir + "/tty.sock"; }

// "VM 'web1' is not defined" and friends.
inline std::string vmText(std::string_view name) { return "VM '" + std::string(name) + "'"; }

inline VmError vmError(VmErrorCode code, std::string message) { return VmError{code, std::move(message), {}}; }

inline VmError noAgentChannel(const std::string& name) {
  return vmError(VmErrorCode::kInvalidArgument, vmText(name) + " has no guest agent channel (\"agent\": true in its definition)");
}

// The worker's reply as the command's result: its value, its own error (class kept), or — the
// connection lost — an error naming the VM.
inline VmResult<qmp::Json> fromWorker(const std::string& name, Result<qmp::CommandResult>&& reply) {
  if (!reply) return vmError(VmErrorCode::kWorkerFailed, vmText(name) + ": worker did not answer: " + reply.error().message());
  if (auto* err = std::get_if<qmp::QmpError>(&*reply)) return VmError{VmErrorCode::kWorkerRefused, err->desc, err->errorClass};
  return std::move(std::get<qmp::Json>(*reply));
}

// A worker's answer when only success matters.
inline VmResult<Done> asDone(VmResult<qmp::Json>&& result) {
  if (!result) return result.error();
  return Done{};
}

// withWorker's `unavailable` for a command that completes with the error.
template <typename T>
std::function<void(const VmError&)> failTo(Supervisor::Completion<T> done) {
  return [done = std::move(done)](const VmError& error) { done(error); };
}

}  // namespace vmmd::daemon
