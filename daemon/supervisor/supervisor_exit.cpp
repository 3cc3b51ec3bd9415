// A worker's end: a requested stop, a guest power-off (on_poweroff) or a crash (on_crash, with
// restart backoff).
#include <signal.h>

#include <fstream>

#include "daemon/supervisor/log.h"
#include "daemon/supervisor/supervisor.h"
#include "daemon/supervisor/supervisor_vm.h"

namespace vmmd::daemon {
namespace {

// The last non-empty line the worker wrote: its reason for failing ("vmm: -kernel ...: No such file").
std::string lastLogLine(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

}  // namespace

void Supervisor::onWorkerExit(Vm& vm, const WorkerExit& exit) {
  const std::string name = vm.name();
  uv_timer_stop(vm.timer.get());
  vm.on_timer = nullptr;
  vm.console.reset();
  vm.agent.reset();  // queued agent commands fail now; one in flight ends on the closed socket
  vm.qmp_ready = false;
  if (vm.qmp) vm.qmp->close();
  vm.record.exit_status = exit.status;
  vm.record.exit_signal = exit.signal;
  std::string how = exit.describe();
  runAwaiting(vm, qmp::QmpError::generic(vmText(name) + ": worker " + how));
  logLine(vmText(name) + ": worker " + std::to_string(vm.process ? vm.process->pid() : -1) + " " + how);

  if (!vm.start_waiters.empty()) {
    // Died while starting: the operator gets the worker's own reason; no restart loop.
    std::string why = vmText(name) + ": worker " + how;
    std::string last = lastLogLine(workerLogPath(vm.paths));
    if (!last.empty()) why += ": " + last;
    auto waiters = std::exchange(vm.start_waiters, {});
    RuntimeRecord record = vm.record;
    forget(vm);
    saveIdle(name, VmState::kShutoff, "start failed: " + how, &record);
    for (auto& done : waiters) done(qmp::QmpError::generic(why));
    return;
  }

  // Asked for: by vmmd, or by someone's `quit` through vm-qmp (the worker says guest=false).
  bool requested = vm.intent != Intent::kNone || (vm.host_quit && !vm.guest_shutdown);
  // A guest power-off: the worker announced it, or (when the event was missed) exited cleanly.
  bool poweroff = !requested && (vm.guest_shutdown || (exit.status && *exit.status == 0));
  if (requested || poweroff) {
    auto waiters = std::exchange(vm.stop_waiters, {});
    bool forced = vm.intent == Intent::kDestroy && vm.force_on_timeout;
    if (poweroff && vm.def.on_poweroff == PoweroffPolicy::kRestart) {
      vm.process.reset();
      vm.record.restart_count = 0;
      if (auto err = launch(vm)) {
        RuntimeRecord record = vm.record;
        forget(vm);
        saveIdle(name, VmState::kShutoff, "reboot after power-off failed: " + err->desc, &record);
      }
      return;
    }
    const char* reason = vm.intent == Intent::kDestroy ? (forced ? "destroyed after the shutdown timeout" : "destroyed")
                         : vm.intent == Intent::kShutdown ? "shut down"
                         : requested                      ? "worker quit on request"
                                                          : "guest powered off";
    RuntimeRecord record = vm.record;
    forget(vm);
    saveIdle(name, VmState::kShutoff, reason, &record);
    qmp::Json result = qmp::jsonObject();
    result.AddMember("forced", forced, result.GetAllocator());
    for (auto& done : waiters) done(qmp::CommandResult(qmp::jsonCopy(result)));
    return;
  }
  applyCrashPolicy(vm, how);
}

void Supervisor::applyCrashPolicy(Vm& vm, const std::string& why) {
  const std::string name = vm.name();
  if (auto id = store_.appendEvent(name, EventDraft{"crash", "worker " + why}); !id) {
    logLine(vmText(name) + ": cannot record the crash: " + id.error().message());
  }
  vm.process.reset();
  switch (vm.def.on_crash) {
    case CrashPolicy::kDestroy: {
      RuntimeRecord record = vm.record;
      forget(vm);
      saveIdle(name, VmState::kShutoff, "crashed (" + why + "); policy destroy", &record);
      return;
    }
    case CrashPolicy::kPreserve: {
      RuntimeRecord record = vm.record;
      forget(vm);
      saveIdle(name, VmState::kCrashed, "crashed (" + why + "); policy preserve", &record);
      return;
    }
    case CrashPolicy::kRestart:
      break;
  }
  const RestartBackoff backoff = vm.def.restart_backoff;  // a copy: `vm` may be forgotten below
  // A run that lasted long enough counts as healthy: the next crash starts a fresh series.
  if (vm.record.started_us && unixTimeUs() - *vm.record.started_us >= int64_t{backoff.reset_after_s} * 1000000) {
    vm.record.restart_count = 0;
  }
  uint32_t attempt = static_cast<uint32_t>(vm.record.restart_count) + 1;
  if (backoff.max_attempts != 0 && attempt > backoff.max_attempts) {
    RuntimeRecord record = vm.record;
    forget(vm);
    saveIdle(name, VmState::kCrashed, "crashed (" + why + "); gave up after " + std::to_string(backoff.max_attempts) + " restarts", &record);
    return;
  }
  vm.record.restart_count = attempt;
  scheduleRestart(vm, restartDelayMs(backoff, attempt), why);
}

// The record keeps started_us while the restart waits: that is how a restarted vmmd (recover)
// tells a pending restart from a VM left crashed.
void Supervisor::scheduleRestart(Vm& vm, uint32_t delay_ms, const std::string& why) {
  vm.record.pid.reset();
  vm.record.start_time.reset();
  setState(vm, VmState::kCrashed, "crashed (" + why + "); restart " + std::to_string(vm.record.restart_count) +
                                      " in " + std::to_string(delay_ms) + " ms");
  schedule(vm, delay_ms, [this, &vm] {
    if (auto err = launch(vm)) {
      std::string name = vm.name();
      RuntimeRecord record = vm.record;
      forget(vm);
      saveIdle(name, VmState::kCrashed, "restart failed: " + err->desc, &record);
    }
  });
}

}  // namespace vmmd::daemon
