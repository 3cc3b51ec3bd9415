// A worker's end: a requested stop, a guest power-off (on_poweroff) or a crash (on_crash, with
// restart backoff).
#include <signal.h>

#include <fstream>
#include <string_view>

#include "base/log.h"
#include "daemon/supervisor/supervisor.h"
#include "daemon/supervisor/supervisor_vm.h"

namespace vmmd::daemon {
namespace {

// The last non-empty line the worker wrote that contains `needle` (any line when empty): its
// reason for failing ("vmm: -kernel ...: No such file"). Only the log's tail is read.
std::string lastLogLine(const std::string& path, std::string_view needle = {}) {
  constexpr std::streamoff kTail = 64 * 1024;
  std::ifstream in(path, std::ios::ate);
  std::streamoff size = in ? static_cast<std::streamoff>(in.tellg()) : 0;
  in.seekg(size > kTail ? size - kTail : 0);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty() && line.find(needle) != std::string::npos) last = line;
  }
  return last;
}

// A worker killed by its own seccomp filter (vmm -sandbox on) named the forbidden system call
// in its log as it died: "vmm: seccomp: vCPU thread made a forbidden system call 59 (execve)".
std::string seccompViolation(const std::string& log_path) {
  std::string line = lastLogLine(log_path, "seccomp: ");
  size_t at = line.find("seccomp: ");
  return at == std::string::npos ? std::string() : line.substr(at);
}

}  // namespace

void Supervisor::onWorkerExit(Vm& vm, const WorkerExit& exit) {
  const std::string name = vm.name();
  uv_timer_stop(vm.timer.get());
  vm.on_timer = nullptr;
  uv_timer_stop(vm.reconnect_timer.get());
  vm.on_reconnect = nullptr;
  if (!vm.cgroup.empty()) {
    if (auto st = CgroupTree::remove(std::exchange(vm.cgroup, {})); !st) log::warning(vmText(name) + ": " + st.error().message());
  }
  vm.console.reset();
  vm.agent.reset();  // queued agent commands fail now; one in flight ends on the closed socket
  vm.agent_addresses = {};
  detachNetworks(vm);  // its taps went with its fds; anything left is removed
  vm.link = QmpLink::kLost;
  if (vm.qmp) vm.qmp->close();
  vm.record.exit_status = exit.status;
  vm.record.exit_signal = exit.signal;
  std::string how = exit.describe();
  if (exit.signal == SIGSYS) {
    if (std::string violation = seccompViolation(workerLogPath(vm.paths)); !violation.empty()) {
      how += " after " + violation;
      log::error(vmText(name) + ": worker confinement violated: " + violation);
    }
  }
  runAwaiting(vm, vmError(VmErrorCode::kWorkerFailed, vmText(name) + ": worker " + how));
  if (auto interrupted = std::exchange(vm.on_worker_exit, nullptr)) {
    vm.operation.clear();
    interrupted(vmError(VmErrorCode::kWorkerFailed, vmText(name) + ": worker " + how));
    // Its steps still pending (the destination's answers) must not act on a restarted worker.
    vm.outgoing.reset();
  }
  log::info(vmText(name) + ": worker " + std::to_string(vm.process ? vm.process->pid() : -1) + " " + how);

  if (!vm.start_waiters.empty()) {
    // Died while starting: the operator gets the worker's own reason; no restart loop.
    std::string why = vmText(name) + ": worker " + how;
    std::string last = lastLogLine(workerLogPath(vm.paths));
    if (!last.empty()) why += ": " + last;
    log::error(vmText(name) + ": start failed: worker " + how + (last.empty() ? "" : ": " + last));
    auto waiters = std::exchange(vm.start_waiters, {});
    // A destroy while it started (an aborted incoming migration) is answered too.
    auto stops = std::exchange(vm.stop_waiters, {});
    retire(vm, VmEvent::kStopped, "start failed: " + how);
    for (auto& done : waiters) done(vmError(VmErrorCode::kWorkerFailed, why));
    for (auto& done : stops) done(StopOutcome{false});
    return;
  }

  // Asked for: by vmmd, or by someone's `quit` through vm-qmp (the worker says guest=false).
  bool requested = vm.stopping() || vm.announced == ShutdownCause::kHostQuit;
  // A guest power-off: the worker announced it, or (when the event was missed) exited cleanly.
  bool poweroff = !requested && (vm.announced == ShutdownCause::kGuestPowerOff || (exit.status && *exit.status == 0));
  if (!requested && !poweroff) return applyCrashPolicy(vm, how);

  auto waiters = std::exchange(vm.stop_waiters, {});
  bool destroyed = vm.lifecycle.phase == VmPhase::kDestroying;
  bool forced = destroyed && vm.shutdown && vm.shutdown->force;
  if (poweroff && vm.def.on_poweroff == PoweroffPolicy::kRestart) {
    vm.process.reset();
    vm.record.restart_count = 0;
    // Straight to a new worker: the power-off is not recorded as a stop of its own.
    if (auto next = transition(vm.lifecycle, VmEvent::kStopped)) vm.lifecycle = *next;
    if (auto err = launch(vm)) retire(vm, VmEvent::kStopped, "reboot after power-off failed: " + err->message);
    return;
  }
  const char* reason = destroyed ? (forced ? "destroyed after the shutdown timeout" : "destroyed")
                       : vm.lifecycle.phase == VmPhase::kShuttingDown ? "shut down"
                       : requested                                     ? "worker quit on request"
                                                                       : "guest powered off";
  retire(vm, VmEvent::kStopped, reason);
  for (auto& done : waiters) done(StopOutcome{forced});
}

void Supervisor::applyCrashPolicy(Vm& vm, const std::string& why) {
  const std::string name = vm.name();
  if (auto id = store_.appendEvent(name, EventDraft{"crash", "worker " + why}); !id) {
    log::error(vmText(name) + ": cannot record the crash: " + id.error().message());
  }
  vm.process.reset();
  switch (vm.def.on_crash) {
    case CrashPolicy::kDestroy: return retire(vm, VmEvent::kStopped, "crashed (" + why + "); policy destroy");
    case CrashPolicy::kPreserve: return retire(vm, VmEvent::kCrashedKept, "crashed (" + why + "); policy preserve");
    case CrashPolicy::kRestart: break;
  }
  const RestartBackoff backoff = vm.def.restart_backoff;
  // A run that lasted long enough counts as healthy: the next crash starts a fresh series.
  if (vm.record.started_us && unixTimeUs() - *vm.record.started_us >= int64_t{backoff.reset_after_s} * 1000000) {
    vm.record.restart_count = 0;
  }
  uint32_t attempt = static_cast<uint32_t>(vm.record.restart_count) + 1;
  if (backoff.max_attempts != 0 && attempt > backoff.max_attempts) {
    return retire(vm, VmEvent::kCrashedKept,
                  "crashed (" + why + "); gave up after " + std::to_string(backoff.max_attempts) + " restarts");
  }
  vm.record.restart_count = attempt;
  scheduleRestart(vm, restartDelayMs(backoff, attempt), why);
}

// The record keeps started_us while the restart waits: that is how a restarted vmmd (recover)
// tells a pending restart from a VM left crashed.
void Supervisor::scheduleRestart(Vm& vm, uint32_t delay_ms, const std::string& why) {
  vm.record.pid.reset();
  vm.record.start_time.reset();
  advance(vm, VmEvent::kCrashedRestarting,
          "crashed (" + why + "); restart " + std::to_string(vm.record.restart_count) + " in " + std::to_string(delay_ms) + " ms");
  schedule(vm, delay_ms, [this, &vm] {
    if (auto err = launch(vm)) retire(vm, VmEvent::kCrashedKept, "restart failed: " + err->message);
  });
}

}  // namespace vmmd::daemon
