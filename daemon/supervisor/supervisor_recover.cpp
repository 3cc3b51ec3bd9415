// vmmd starting: re-attaching to workers that outlived the previous vmmd, then autostart.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "base/log.h"
#include "daemon/process/worker_taps.h"
#include "daemon/supervisor/supervisor.h"
#include "daemon/supervisor/supervisor_vm.h"

namespace vmmd::daemon {

void Supervisor::recover() {
  dropUnfinishedArrivals();
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
        auto vm = makeVm(**stored);
        vm->record = record;
        vm->lifecycle = VmLifecycle{VmPhase::kRestartPending};
        Vm& ref = *vm;
        vms_.emplace(record.name, std::move(vm));
        uint32_t attempt = static_cast<uint32_t>(std::max<int64_t>(record.restart_count, 1));
        scheduleRestart(ref, restartDelayMs(ref.def.restart_backoff, attempt), "restart pending when vmmd stopped");
        continue;
      }
    }
    auto stored = store_.definition(record.name);
    if (!stored || !*stored) continue;
    auto vm = makeVm(**stored);
    vm->record = record;
    vm->lifecycle = lifecycleOf(record.state);
    auto paths = workerPathsFor(config_.run_dir, record.name);
    if (paths) vm->paths = *paths;
    Vm& ref = *vm;
    vms_.emplace(record.name, std::move(vm));
    auto process = reattach(ref, live_state);
    if (!process) {
      if (!record.pid) {
        // Nothing was running, or a start never got as far as recording its worker (and no
        // worker holds the VM's pidfile: reattach would have adopted it).
        forget(ref);
        if (live_state) {
          saveIdle(record.name, VmState::kShutoff,
                   record.state == VmState::kStarting ? "start interrupted by a vmmd restart" : "no worker recorded", &record);
        }
        continue;
      }
      // It ended while vmmd was away. A stop in progress explains that; anything else is a crash.
      log::warning(vmText(record.name) + ": recorded worker " + std::to_string(*record.pid) + " is gone");
      if (record.stop_intent == StopIntent::kDestroy) {
        if (auto next = transition(ref.lifecycle, VmEvent::kDestroyRequested)) ref.lifecycle = *next;
        retire(ref, VmEvent::kStopped, "destroyed");
      } else if (record.state == VmState::kShuttingDown) {
        retire(ref, VmEvent::kStopped, "powered off while vmmd was down");
      } else {
        applyCrashPolicy(ref, "died while vmmd was down");
      }
      continue;
    }
    ref.process = std::move(process);
    ref.origin = WorkerOrigin::kAdopted;
    if (ref.record.stop_intent == StopIntent::kDestroy) {
      // The destroy was committed; its SIGKILL may not have been sent. Finish it: the exit (through
      // the pidfd) retires the VM as destroyed.
      log::info(vmText(record.name) + ": finishing the destroy of worker " + std::to_string(ref.process->pid()));
      if (auto next = transition(ref.lifecycle, VmEvent::kDestroyRequested)) ref.lifecycle = *next;
      if (auto st = ref.process->signal(SIGKILL); !st) log::error(vmText(record.name) + ": destroy: " + st.error().message());
      continue;
    }
    if (ref.lifecycle.phase == VmPhase::kShuttingDown) {
      // The committed shutdown resumes with its deadline once QMP is back (guestRuns); a record
      // from before deadlines were kept gets the default timeout from now.
      bool agent = ref.record.stop_intent == StopIntent::kShutdownAgent;
      ShutdownPlan plan{agent ? ShutdownMode::kAgent : ShutdownMode::kAcpi,
                        static_cast<uint32_t>(ref.record.stop_deadline_us ? ref.record.stop_timeout_s : 60),
                        ref.record.stop_force, ref.record.stop_deadline_us.value_or(unixTimeUs() + 60 * 1000000)};
      ref.shutdown = plan;
    }
    log::info(vmText(record.name) + ": re-attaching to worker " + std::to_string(ref.process->pid()));
    connectQmp(ref);
  }
  autostart();
}

std::optional<std::string> Supervisor::notOurWorker(const Vm& vm, const ProcessFacts& facts,
                                                    std::optional<uint64_t> expected_start) {
  if (expected_start) {
    if (facts.start_time != *expected_start) {
      return "it started at tick " + std::to_string(facts.start_time) + ", the worker at " + std::to_string(*expected_start) + " (pid reused)";
    }
    if (vm.record.boot_id && !boot_id_.empty() && *vm.record.boot_id != boot_id_) {
      return "the worker was recorded in boot " + *vm.record.boot_id + ", this is boot " + boot_id_;
    }
  }
  std::string exe = facts.exe;
  constexpr std::string_view kDeleted = " (deleted)";  // the binary was upgraded under a running worker
  if (exe.ends_with(kDeleted)) exe.resize(exe.size() - kDeleted.size());
  std::string recorded = vm.record.worker_exe.value_or("");
  if (recorded.ends_with(kDeleted)) recorded.resize(recorded.size() - kDeleted.size());
  if (exe != worker_exe_ && exe != recorded) return "it runs " + facts.exe + ", not " + worker_exe_;
  auto uuid = std::find(facts.argv.begin(), facts.argv.end(), "-uuid");
  if (uuid == facts.argv.end() || uuid + 1 == facts.argv.end() || *(uuid + 1) != vm.def.uuid) {
    return "its -uuid is not " + vm.def.uuid;
  }
  return std::nullopt;
}

// A re-attached worker keeps the uid it runs as (no new worker may get it while it lives) and
// its cgroup.
void Supervisor::claimWorker(Vm& vm, pid_t pid, const ProcessFacts& facts) {
  // Its network NICs' taps live with it; their names come back from its argv and fds.
  for (auto& [index, tap] : workerTaps(pid, facts.argv)) {
    if (index < vm.def.nics.size() && vm.def.nics[index].onNetwork()) vm.taps[index] = std::move(tap);
  }
  if (config_.cgroups) {
    // The previous vmmd's exit lifted the limits (cgroup_tree.h): they apply again, from the
    // definition as it is now. The worker is moved there too: a vmmd killed right after the spawn
    // never moved it.
    auto cgroup = config_.cgroups->createVm(vm.def);
    Status moved = cgroup ? CgroupTree::moveInto(*cgroup, pid) : Status(cgroup.error());
    if (!moved) log::warning(vmText(vm.name()) + ": cgroup: " + moved.error().message());
    if (cgroup) vm.cgroup = *cgroup;  // removed at the worker's end
  }
  if (!worker_ids_ || !facts.uid || *facts.uid == 0 || *facts.uid == ::geteuid()) return;
  auto lease = worker_ids_->reserve(*facts.uid);
  if (!lease) {
    log::warning(vmText(vm.name()) + ": " + lease.error().message());
    return;
  }
  vm.worker_id = std::move(*lease);
}

std::unique_ptr<Worker> Supervisor::reattach(Vm& vm, bool wants_worker) {
  const std::string& name = vm.name();
  auto on_exit = [this, &vm](const WorkerExit& exit) { onWorkerExit(vm, exit); };
  if (vm.record.pid && vm.record.start_time) {
    pid_t pid = static_cast<pid_t>(*vm.record.pid);
    if (auto facts = workers_->inspect(pid)) {
      if (auto why = notOurWorker(vm, *facts, static_cast<uint64_t>(*vm.record.start_time))) {
        log::warning(vmText(name) + ": process " + std::to_string(pid) + " is not its worker: " + *why);
      } else if (auto process = workers_->adopt(pid, facts->start_time, on_exit)) {
        claimWorker(vm, pid, *facts);
        return std::move(*process);
      }
    }
  }
  if (vm.paths.pidfile.empty()) return nullptr;
  auto holder = workers_->pidfileHolder(vm.paths.pidfile);
  // Spawned but not yet holding its pidfile (vmmd killed right after the spawn, a slow host):
  // found by its -uuid. Only our own worker binary is taken that way: another program started
  // with the same -uuid (an operator's QEMU) is none of vmmd's business.
  bool found_by_uuid = false;
  if (!holder) {
    holder = workers_->processWithUuid(vm.def.uuid);
    found_by_uuid = holder.has_value();
  }
  if (!holder) return nullptr;
  auto facts = workers_->inspect(*holder);
  if (!facts) return nullptr;  // gone meanwhile: its lock with it
  auto why = notOurWorker(vm, *facts, std::nullopt);
  if (found_by_uuid && why) return nullptr;
  if (!why && wants_worker) {
    if (auto process = workers_->adopt(*holder, facts->start_time, on_exit)) {
      claimWorker(vm, *holder, *facts);
      // A worker whose pid was never recorded (vmmd was killed right after spawning it).
      log::warning(vmText(name) + ": adopting worker " + std::to_string(*holder) + ", which holds " + vm.paths.pidfile);
      vm.record.pid = *holder;
      vm.record.start_time = static_cast<int64_t>(facts->start_time);
      vm.record.boot_id = boot_id_;
      if (!vm.record.started_us) vm.record.started_us = unixTimeUs();
      vm.record.qmp_socket = vm.paths.qmp_socket;
      if (auto st = store_.saveRuntime(vm.record); !st) log::error(vmText(name) + ": cannot record the worker: " + st.error().message());
      return std::move(*process);
    }
  }
  // It holds the VM's pidfile (and so its image locks) and must not run: nothing else could
  // start the VM while it does.
  log::warning(vmText(name) + ": killing process " + std::to_string(*holder) + ", which holds " + vm.paths.pidfile + ": " +
               why.value_or("the VM is not meant to be running"));
  if (auto st = workers_->killProcess(*holder, facts->start_time); !st) log::error(vmText(name) + ": " + st.error().message());
  return nullptr;
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
