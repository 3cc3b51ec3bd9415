// Operator commands on a VM that has (or should have) a worker.
#include <signal.h>

#include <algorithm>

#include "base/log.h"
#include "daemon/supervisor/chaos_point.h"
#include "daemon/supervisor/supervisor.h"
#include "daemon/supervisor/supervisor_vm.h"

namespace vmmd::daemon {
namespace {

// How long a worker told to `quit` (quitWorker) has before it is killed.
constexpr uint64_t kQuitGraceMs = 10000;

}  // namespace

void Supervisor::withWorker(const std::string& name, WorkerUnavailable unavailable, WorkerAction action) {
  Vm* vm = active(name);
  if (!vm || !vm->process) return unavailable(notActive(name));
  if (vm->link == QmpLink::kUnreachable) {
    return unavailable(vmError(VmErrorCode::kWorkerFailed, vmText(name) + ": no QMP connection to its worker"));
  }
  if (vm->link != QmpLink::kReady || vm->state() == VmState::kStarting) {
    vm->awaiting_qmp.emplace_back(std::move(action), std::move(unavailable));
    return;
  }
  action(*vm);
}

void Supervisor::runAwaiting(Vm& vm, const std::optional<VmError>& error) {
  for (auto& [action, unavailable] : std::exchange(vm.awaiting_qmp, {})) {
    if (error) unavailable(*error);
    else if (vm.link == QmpLink::kReady && vm.process) action(vm);
    else unavailable(vmError(VmErrorCode::kWorkerFailed, vmText(vm.name()) + ": no QMP connection to its worker"));
  }
}

void Supervisor::shutdown(const std::string& name, uint32_t timeout_s, bool force, ShutdownMode mode, StopCompletion done) {
  withWorker(name, failTo(done), [this, timeout_s, force, mode, done](Vm& vm) {
    if (mode == ShutdownMode::kAgent && !vm.def.agent) return done(noAgentChannel(vm.name()));
    beginShutdown(vm, ShutdownPlan{mode, timeout_s, force, unixTimeUs() + int64_t{timeout_s} * 1000000}, done);
  });
}

void Supervisor::beginShutdown(Vm& vm, ShutdownPlan plan, StopCompletion done) {
  vm.stop_waiters.push_back(std::move(done));
  if (vm.stopping()) return;  // already shutting down (or being destroyed): wait for the same end
  vm.shutdown = plan;
  std::string how = plan.mode == ShutdownMode::kAgent ? "guest agent guest-shutdown" : "ACPI power button";
  // Committed with the state, before the request: a restarted vmmd resumes it with its deadline.
  vm.record.stop_intent = plan.mode == ShutdownMode::kAgent ? StopIntent::kShutdownAgent : StopIntent::kShutdownAcpi;
  vm.record.stop_deadline_us = plan.deadline_us;
  vm.record.stop_timeout_s = plan.timeout_s;
  vm.record.stop_force = plan.force;
  advance(vm, VmEvent::kShutdownRequested,
          how + ", timeout " + std::to_string(plan.timeout_s) + " s" + (plan.force ? ", then destroy" : ""));
  chaosPoint("after-shutdown-commit");
  if (plan.mode == ShutdownMode::kAgent) sendAgentShutdown(vm);
  else pressPowerButton(vm);
  shutdownTick(vm);
}

void Supervisor::shutdownRequestFailed(Vm& vm, const VmError& error) {
  if (vm.lifecycle.phase != VmPhase::kShuttingDown) return;
  uv_timer_stop(vm.timer.get());
  vm.shutdown.reset();
  vm.record.stop_intent = StopIntent::kNone;
  vm.record.stop_deadline_us.reset();
  advance(vm, VmEvent::kShutdownAbandoned, "shutdown failed");
  finishStops(vm, error);
}

void Supervisor::pressPowerButton(Vm& vm) {
  std::string name = vm.name();
  vm.qmp->execute("system_powerdown", nullptr, [this, &vm, name](Result<qmp::CommandResult>&& reply) {
    // A guest that powers off at once can take its worker down before the reply is read: the
    // connection is lost, not the shutdown. The worker's exit (or the timeout) decides.
    if (!reply) return log::warning(vmText(name) + ": power button: " + reply.error().message() + "; waiting for the worker to exit");
    auto result = fromWorker(name, std::move(reply));
    if (!result) shutdownRequestFailed(vm, result.error());
  });
}

// The button is pressed again every kRepressMs until the timeout: a guest that is still booting
// has not armed its power button yet (ACPI drops a press that comes before the OS enables the
// event), and a press then would otherwise be lost for good.
void Supervisor::shutdownTick(Vm& vm) {
  constexpr int64_t kRepressMs = 2000;
  int64_t left_ms = (vm.shutdown->deadline_us - unixTimeUs()) / 1000;
  schedule(vm, static_cast<uint64_t>(std::clamp<int64_t>(left_ms, 0, kRepressMs)), [this, &vm] {
    if (vm.lifecycle.phase != VmPhase::kShuttingDown || !vm.shutdown) return;
    const ShutdownPlan plan = *vm.shutdown;
    if (unixTimeUs() < plan.deadline_us) {
      // guest-shutdown is sent once: the agent either runs it or reports why not.
      if (vm.link == QmpLink::kReady && plan.mode == ShutdownMode::kAcpi) pressPowerButton(vm);
      shutdownTick(vm);
      return;
    }
    if (plan.force) {
      log::warning(vmText(vm.name()) + ": no power-off within " + std::to_string(plan.timeout_s) + " s; destroying");
      if (auto next = transition(vm.lifecycle, VmEvent::kDestroyRequested)) vm.lifecycle = *next;
      commitStop(vm, StopIntent::kDestroy);
      if (auto st = vm.process->signal(SIGKILL); !st) log::error(vmText(vm.name()) + ": " + st.error().message());
      return;
    }
    vm.shutdown.reset();
    vm.record.stop_intent = StopIntent::kNone;
    vm.record.stop_deadline_us.reset();
    advance(vm, VmEvent::kShutdownAbandoned, "shutdown timed out");
    finishStops(vm, vmError(VmErrorCode::kTimedOut, vmText(vm.name()) + " did not power off within " +
                                                         std::to_string(plan.timeout_s) + " s (use force to destroy it)"));
  });
}

void Supervisor::destroy(const std::string& name, StopCompletion done) {
  Vm* vm = active(name);
  if (vm && !vm->process) {
    // Waiting for a restart: cancel it.
    retire(*vm, VmEvent::kStopped, "destroyed (pending restart cancelled)");
    done(StopOutcome{false});
    return;
  }
  if (!vm) return done(notActive(name));
  vm->stop_waiters.push_back(std::move(done));
  // A vm-destroy during a shutdown is no forced shutdown.
  vm->shutdown.reset();
  if (auto next = transition(vm->lifecycle, VmEvent::kDestroyRequested)) vm->lifecycle = *next;
  // Committed before the signal: a restarted vmmd that finds the worker gone knows it was
  // destroyed (no crash policy, no restart), and kills it if the signal never went.
  commitStop(*vm, StopIntent::kDestroy);
  chaosPoint("before-kill");
  if (auto st = vm->process->signal(SIGKILL); !st) {
    log::error(vmText(name) + ": destroy: " + st.error().message());
    finishStops(*vm, vmError(VmErrorCode::kWorkerFailed, vmText(name) + ": " + st.error().message()));
  }
  chaosPoint("after-kill");
}

void Supervisor::quitWorker(const std::string& name, StopCompletion done) {
  Vm* vm = active(name);
  if (!vm || !vm->process || vm->link != QmpLink::kReady) return destroy(name, std::move(done));
  vm->stop_waiters.push_back(std::move(done));
  vm->shutdown.reset();
  if (auto next = transition(vm->lifecycle, VmEvent::kDestroyRequested)) vm->lifecycle = *next;
  // Recorded as a destroy: a restarted vmmd that finds the worker still running kills it.
  commitStop(*vm, StopIntent::kDestroy);
  // `quit` lets the worker flush and close its images (a SIGKILL can leave leaked clusters);
  // one that does not exit in time is killed.
  vm->qmp->execute("quit", nullptr, [](Result<qmp::CommandResult>&&) {});
  schedule(*vm, kQuitGraceMs, [vm] {
    if (vm->process && !vm->process->exited()) (void)vm->process->signal(SIGKILL);
  });
}

void Supervisor::reboot(const std::string& name, Completion<Done> done) {
  forward(name, "system_reset", nullptr, [done = std::move(done)](VmResult<qmp::Json> result) { done(asDone(std::move(result))); });
}

void Supervisor::pause(const std::string& name, Completion<Done> done) {
  withWorker(name, failTo(done), [this, name, done](Vm& vm) {
    if (vm.state() == VmState::kPaused) return done(vmError(VmErrorCode::kWrongState, vmText(name) + " is already paused"));
    vm.qmp->execute("stop", nullptr, [this, &vm, name, done](Result<qmp::CommandResult>&& reply) {
      auto result = fromWorker(name, std::move(reply));
      if (result) advance(vm, VmEvent::kPaused, "paused");
      done(asDone(std::move(result)));
    });
  });
}

void Supervisor::resume(const std::string& name, Completion<Done> done) {
  withWorker(name, failTo(done), [this, name, done](Vm& vm) {
    if (vm.state() != VmState::kPaused) return done(vmError(VmErrorCode::kWrongState, vmText(name) + " is not paused"));
    vm.qmp->execute("cont", nullptr, [this, &vm, name, done](Result<qmp::CommandResult>&& reply) {
      auto result = fromWorker(name, std::move(reply));
      if (result) advance(vm, VmEvent::kResumed, "resumed");
      done(asDone(std::move(result)));
    });
  });
}

void Supervisor::forward(const std::string& name, const std::string& command, const qmp::JsonValue* args,
                         Completion<qmp::Json> done) {
  // The arguments live only during the request: the action may run later, so it keeps a copy.
  auto saved = std::make_shared<qmp::Json>();
  if (args) saved->CopyFrom(*args, saved->GetAllocator());
  withWorker(name, failTo(done), [name, command, saved, has_args = args != nullptr, done](Vm& vm) {
    vm.qmp->execute(command, has_args ? saved.get() : nullptr, [name, done](Result<qmp::CommandResult>&& reply) {
      done(fromWorker(name, std::move(reply)));
    });
  });
}

}  // namespace vmmd::daemon
