// The supervisor owns every VM's worker: it starts workers (detached, in their own session, so
// they outlive vmmd), is a QMP client of each (tracking STOP/RESUME/SHUTDOWN), relays their
// consoles, notices their death (process exit, or the pidfd of a re-attached worker), applies the
// VM's policy (on_crash: restart with backoff / destroy / preserve; on_poweroff), and keeps each
// VM's runtime record in the Store so that a restarted vmmd re-attaches instead of starting again.
//
// Commands complete through a Completion with a QMP result; error descriptions always name the VM
// ("VM 'web1' is not defined"). All calls and callbacks on the loop thread.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "daemon/store/store.h"
#include "daemon/supervisor/worker_process.h"
#include "qmp/command_registry.h"
#include "qmp/json.h"

namespace vmmd::daemon {

class AgentChannel;

// How vm-shutdown asks the guest to power off: the ACPI power button, or guest-shutdown through
// the guest agent (for guests that ignore the button; needs "agent": true and a running qemu-ga).
enum class ShutdownMode { kAcpi, kAgent };

struct SupervisorConfig {
  std::string run_dir;   // absolute; VMs live in <run_dir>/vms/<name>/
  std::string vmm_path;  // the worker binary
  // --group: VM directories and console sockets are made accessible to it (the control socket's
  // group), so its members can use `vmctl console`.
  std::optional<gid_t> group;
  // Spawn → QMP negotiated, for a worker that is running but not answering (hung). Its socket
  // listens before it starts, so this bounds no wait for a socket; generous, as a slow host (20
  // guests starting at once in a nested VM) must never fail a start. A worker that exits is
  // reported at once.
  uint32_t qmp_greeting_timeout_ms = 120000;
};

class Supervisor {
 public:
  using Completion = std::function<void(qmp::CommandResult)>;
  // (vm, new state, why): "started", "guest powered off", "crashed: killed by signal 9 (Killed)"...
  using StateListener = std::function<void(const std::string& vm, VmState state, const std::string& reason)>;

  Supervisor(uv_loop_t* loop, Store& store, SupervisorConfig config);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Once at daemon start: re-attach to recorded workers that still run (same pid and start
  // time), apply the crash policy to those that died meanwhile, then start autostart VMs — the
  // latter only on the first vmmd start since boot (a marker in the run dir), as libvirt does, so
  // a daemon restart never boots a VM the operator had shut down.
  void recover();

  qmp::CommandResult define(const qmp::JsonValue& definition);
  qmp::CommandResult undefine(const std::string& name);
  qmp::CommandResult list();
  qmp::CommandResult info(const std::string& name);

  // Completes once the guest runs (or the start failed).
  void start(const std::string& name, Completion done);
  // ACPI power button (pressed again every 2 s) or one guest-shutdown through the agent;
  // completes when the worker has exited. After `timeout_s` without power-off: destroy when
  // `force`, else an error (the VM keeps running).
  void shutdown(const std::string& name, uint32_t timeout_s, bool force, ShutdownMode mode, Completion done);
  // SIGKILL to the worker; completes when it has exited.
  void destroy(const std::string& name, Completion done);
  void reboot(const std::string& name, Completion done);
  void pause(const std::string& name, Completion done);
  void resume(const std::string& name, Completion done);
  // One command passed to the worker's QMP; completes with the worker's own answer.
  void forward(const std::string& name, const std::string& command, const qmp::JsonValue* args, Completion done);

  // One request ({"execute": ..., "arguments": ...}) passed to the VM's guest agent; completes
  // with the agent's "return" value or its error (class kept, desc prefixed "guest agent: "), or
  // DeviceNotActive "VM 'x': guest agent is not connected (...)" when no agent answers in time.
  void agentCommand(const std::string& name, qmp::Json request, uint32_t timeout_ms, Completion done);

  StateListener onStateChange;

 private:
  struct Vm;
  enum class Intent { kNone, kShutdown, kDestroy };

  Vm* active(const std::string& name);
  using WorkerAction = std::function<void(Vm& vm, Completion done)>;
  // Runs `action` once the VM's worker has a negotiated QMP connection: at once, or — while the
  // worker is starting or being re-attached after a vmmd restart — when it has one. Answers
  // `done` with the error instead when the VM is not defined, not running, or its worker ends first.
  void withWorker(const std::string& name, Completion done, WorkerAction action);
  void runAwaiting(Vm& vm, const std::optional<qmp::QmpError>& error);
  std::optional<qmp::QmpError> launch(Vm& vm);
  void schedule(Vm& vm, uint64_t delay_ms, std::function<void()> action);
  void connectQmp(Vm& vm);
  void qmpUnreachable(Vm& vm, const std::string& why);  // fails a start; leaves a re-attached worker alone
  void onQmpReady(Vm& vm);
  void settleRunState(Vm& vm);
  void onWorkerEvent(Vm& vm, const qmp::Json& event);
  void onWorkerExit(Vm& vm, const WorkerExit& exit);
  void failStart(Vm& vm, const std::string& why);
  void applyCrashPolicy(Vm& vm, const std::string& why);
  void scheduleRestart(Vm& vm, uint32_t delay_ms, const std::string& why);
  void setState(Vm& vm, VmState state, const std::string& reason, const std::string& event_kind = "state");
  void saveIdle(const std::string& name, VmState state, const std::string& reason, const RuntimeRecord* base);
  void finishStops(Vm& vm, const qmp::CommandResult& result);
  void beginShutdown(Vm& vm, uint32_t timeout_s, bool force, ShutdownMode mode, Completion done);
  void pressPowerButton(Vm& vm, VmState before);
  void sendAgentShutdown(Vm& vm, VmState before);
  AgentChannel& agentOf(Vm& vm);  // made on first use (a command, or the guest opening the port)
  void shutdownRequestFailed(Vm& vm, VmState before, const qmp::QmpError& error);
  void shutdownTick(Vm& vm, VmState before);
  void forget(Vm& vm);
  std::unique_ptr<Vm> makeVm(const VmDefinition& def);
  void autostart();

  uv_loop_t* loop_;
  Store& store_;
  SupervisorConfig config_;
  std::map<std::string, std::unique_ptr<Vm>, std::less<>> vms_;  // VMs with a worker or a pending restart
};

}  // namespace vmmd::daemon
