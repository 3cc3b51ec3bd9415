// vmmd starting: re-attaching to workers that outlived the previous vmmd, then autostart.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "base/log.h"
#include "daemon/supervisor/supervisor.h"
#include "daemon/supervisor/supervisor_vm.h"

namespace vmmd::daemon {

void Supervisor::recover() {
  auto runtimes = store_.runtimes();
  if (!runtimes) {
    log::error("cannot read runtime records: " + runtimes.error().message());
    return;
  }
  for (const RuntimeRecord& record : *runtimes) {
    bool live_state = record.state != VmState::kShutoff && record.state != VmState::kCrashed;
    // A restart was pending when the last vmmd ended: scheduleRestart keeps started_us while it
    // waits, every idle state (shut off, given up, preserved) clears it. Resume the wait.
    if (record.state == VmState::kCrashed && !record.pid && record.started_us) {
      auto stored = store_.definition(record.name);
      if (stored && *stored && (*stored)->definition.on_crash == CrashPolicy::kRestart) {
        auto vm = makeVm((*stored)->definition);
        vm->record = record;
        vm->lifecycle = VmLifecycle{VmPhase::kRestartPending};
        Vm& ref = *vm;
        vms_.emplace(record.name, std::move(vm));
        uint32_t attempt = static_cast<uint32_t>(std::max<int64_t>(record.restart_count, 1));
        scheduleRestart(ref, restartDelayMs(ref.def.restart_backoff, attempt), "restart pending when vmmd stopped");
        continue;
      }
    }
    if (!record.pid || !record.start_time) {
      if (live_state) saveIdle(record.name, VmState::kShutoff, "no worker recorded", &record);
      continue;
    }
    auto stored = store_.definition(record.name);
    if (!stored || !*stored) continue;
    auto vm = makeVm((*stored)->definition);
    vm->record = record;
    vm->lifecycle = lifecycleOf(record.state);
    auto paths = workerPathsFor(config_.run_dir, record.name);
    if (paths) vm->paths = *paths;
    Vm& ref = *vm;
    auto process = workers_->adopt(static_cast<pid_t>(*record.pid), static_cast<uint64_t>(*record.start_time),
                                   [this, &ref](const WorkerExit& exit) { onWorkerExit(ref, exit); });
    vms_.emplace(record.name, std::move(vm));
    if (!process) {
      // It ended while vmmd was away. A shutdown in progress explains that; anything else is a crash.
      log::warning(vmText(record.name) + ": recorded worker " + std::to_string(*record.pid) + " is gone");
      if (record.state == VmState::kShuttingDown) {
        retire(ref, VmEvent::kStopped, "powered off while vmmd was down");
      } else {
        applyCrashPolicy(ref, "died while vmmd was down");
      }
      continue;
    }
    ref.process = std::move(*process);
    ref.origin = WorkerOrigin::kAdopted;
    log::info(vmText(record.name) + ": re-attaching to worker " + std::to_string(*record.pid));
    connectQmp(ref);
  }
  autostart();
}

void Supervisor::autostart() {
  std::string marker = config_.run_dir + "/autostart.done";
  if (::access(marker.c_str(), F_OK) == 0) return;
  auto defs = store_.definitions();
  if (!defs) {
    log::error("autostart: " + defs.error().message());
    return;
  }
  for (const StoredDefinition& stored : *defs) {
    const std::string& name = stored.definition.name;
    if (!stored.definition.autostart || active(name)) continue;
    log::info(vmText(name) + ": autostart");
    start(name, [name](VmResult<Done> result) {
      if (!result) log::error("autostart of " + vmText(name) + " failed: " + result.error().message);
    });
  }
  UniqueFd created(::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0640));
}

}  // namespace vmmd::daemon
