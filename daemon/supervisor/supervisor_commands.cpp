// Operator commands on a VM that has (or should have) a worker.
#include <signal.h>

#include <algorithm>

#include "daemon/supervisor/log.h"
#include "daemon/supervisor/supervisor.h"
#include "daemon/supervisor/supervisor_vm.h"

namespace vmmd::daemon {
namespace {

qmp::QmpError notRunning(const std::string& name) { return qmp::QmpError::generic(vmText(name) + " is not running"); }

// The worker's reply as the command's result; a lost connection becomes an error naming the VM.
qmp::CommandResult fromWorker(const std::string& name, Result<qmp::CommandResult>&& reply) {
  if (!reply) return qmp::QmpError::generic(vmText(name) + ": worker did not answer: " + reply.error().message());
  return std::move(*reply);
}

}  // namespace

void Supervisor::withWorker(const std::string& name, Completion done, WorkerAction action) {
  Vm* vm = active(name);
  if (!vm || !vm->process) {
    auto stored = store_.definition(name);
    if (stored && !*stored) return done(qmp::QmpError{"DeviceNotFound", vmText(name) + " is not defined"});
    return done(notRunning(name));
  }
  if (vm->qmp_failed) return done(qmp::QmpError::generic(vmText(name) + ": no QMP connection to its worker"));
  if (!vm->qmp_ready || vm->record.state == VmState::kStarting) {
    vm->awaiting_qmp.emplace_back(std::move(action), std::move(done));
    return;
  }
  action(*vm, std::move(done));
}

void Supervisor::runAwaiting(Vm& vm, const std::optional<qmp::QmpError>& error) {
  for (auto& [action, done] : std::exchange(vm.awaiting_qmp, {})) {
    if (error) done(*error);
    else if (vm.qmp_ready && vm.process) action(vm, std::move(done));
    else done(qmp::QmpError::generic(vmText(vm.name()) + ": no QMP connection to its worker"));
  }
}

void Supervisor::shutdown(const std::string& name, uint32_t timeout_s, bool force, ShutdownMode mode, Completion done) {
  withWorker(name, std::move(done), [this, timeout_s, force, mode](Vm& vm, Completion done) {
    if (mode == ShutdownMode::kAgent && !vm.def.agent) {
      return done(qmp::QmpError::generic(vmText(vm.name()) + " has no guest agent channel (\"agent\": true in its definition)"));
    }
    beginShutdown(vm, timeout_s, force, mode, std::move(done));
  });
}

void Supervisor::beginShutdown(Vm& vm, uint32_t timeout_s, bool force, ShutdownMode mode, Completion done) {
  vm.stop_waiters.push_back(std::move(done));
  if (vm.intent != Intent::kNone) return;  // already shutting down: wait for the same end
  vm.intent = Intent::kShutdown;
  vm.force_on_timeout = force;
  vm.shutdown_timeout_s = timeout_s;
  vm.shutdown_mode = mode;
  VmState before = vm.record.state;
  std::string how = mode == ShutdownMode::kAgent ? "guest agent guest-shutdown" : "ACPI power button";
  setState(vm, VmState::kShuttingDown, how + ", timeout " + std::to_string(timeout_s) + " s" + (force ? ", then destroy" : ""));
  vm.shutdown_deadline_us = unixTimeUs() + int64_t{timeout_s} * 1000000;
  if (mode == ShutdownMode::kAgent) sendAgentShutdown(vm, before);
  else pressPowerButton(vm, before);
  shutdownTick(vm, before);
}

void Supervisor::shutdownRequestFailed(Vm& vm, VmState before, const qmp::QmpError& error) {
  if (vm.intent != Intent::kShutdown) return;
  uv_timer_stop(vm.timer.get());
  vm.intent = Intent::kNone;
  setState(vm, before, "shutdown failed");
  finishStops(vm, error);
}

void Supervisor::pressPowerButton(Vm& vm, VmState before) {
  std::string name = vm.name();
  vm.qmp->execute("system_powerdown", nullptr, [this, &vm, name, before](Result<qmp::CommandResult>&& reply) {
    // A guest that powers off at once can take its worker down before the reply is read: the
    // connection is lost, not the shutdown. The worker's exit (or the timeout) decides.
    if (!reply) return logLine(vmText(name) + ": power button: " + reply.error().message() + "; waiting for the worker to exit");
    qmp::CommandResult result = fromWorker(name, std::move(reply));
    if (auto* err = std::get_if<qmp::QmpError>(&result)) shutdownRequestFailed(vm, before, *err);
  });
}

// The button is pressed again every kRepressMs until the timeout: a guest that is still booting
// has not armed its power button yet (ACPI drops a press that comes before the OS enables the
// event), and a press then would otherwise be lost for good.
void Supervisor::shutdownTick(Vm& vm, VmState before) {
  constexpr int64_t kRepressMs = 2000;
  int64_t left_ms = (vm.shutdown_deadline_us - unixTimeUs()) / 1000;
  schedule(vm, static_cast<uint64_t>(std::clamp<int64_t>(left_ms, 0, kRepressMs)), [this, &vm, before] {
    if (vm.intent != Intent::kShutdown) return;
    if (unixTimeUs() < vm.shutdown_deadline_us) {
      // guest-shutdown is sent once: the agent either runs it or reports why not.
      if (vm.qmp_ready && vm.shutdown_mode == ShutdownMode::kAcpi) pressPowerButton(vm, before);
      shutdownTick(vm, before);
      return;
    }
    if (vm.force_on_timeout) {
      logLine(vmText(vm.name()) + ": no power-off within " + std::to_string(vm.shutdown_timeout_s) + " s; destroying");
      vm.intent = Intent::kDestroy;
      if (auto st = vm.process->signal(SIGKILL); !st) logLine(vmText(vm.name()) + ": " + st.error().message());
      return;
    }
    vm.intent = Intent::kNone;
    setState(vm, before == VmState::kPaused ? VmState::kPaused : VmState::kRunning, "shutdown timed out");
    finishStops(vm, qmp::QmpError::generic(vmText(vm.name()) + " did not power off within " +
                                           std::to_string(vm.shutdown_timeout_s) + " s (use force to destroy it)"));
  });
}

void Supervisor::destroy(const std::string& name, Completion done) {
  Vm* vm = active(name);
  if (vm && !vm->process) {
    // Waiting for a restart: cancel it.
    RuntimeRecord record = vm->record;
    forget(*vm);
    saveIdle(name, VmState::kShutoff, "destroyed (pending restart cancelled)", &record);
    qmp::Json result = qmp::jsonObject();
    result.AddMember("forced", false, result.GetAllocator());
    done(std::move(result));
    return;
  }
  if (!vm) {
    auto stored = store_.definition(name);
    if (stored && !*stored) {
      done(qmp::QmpError{"DeviceNotFound", vmText(name) + " is not defined"});
      return;
    }
    done(notRunning(name));
    return;
  }
  vm->stop_waiters.push_back(std::move(done));
  vm->intent = Intent::kDestroy;
  vm->force_on_timeout = false;
  if (auto st = vm->process->signal(SIGKILL); !st) {
    logLine(vmText(name) + ": destroy: " + st.error().message());
    finishStops(*vm, qmp::QmpError::generic(vmText(name) + ": " + st.error().message()));
  }
}

void Supervisor::reboot(const std::string& name, Completion done) {
  forward(name, "system_reset", nullptr, std::move(done));
}

void Supervisor::pause(const std::string& name, Completion done) {
  withWorker(name, std::move(done), [this, name](Vm& vm, Completion done) {
    if (vm.record.state == VmState::kPaused) return done(qmp::QmpError::generic(vmText(name) + " is already paused"));
    vm.qmp->execute("stop", nullptr, [this, &vm, name, done = std::move(done)](Result<qmp::CommandResult>&& reply) {
      qmp::CommandResult result = fromWorker(name, std::move(reply));
      if (std::holds_alternative<qmp::Json>(result) && vm.record.state == VmState::kRunning) {
        setState(vm, VmState::kPaused, "paused");
      }
      done(std::move(result));
    });
  });
}

void Supervisor::resume(const std::string& name, Completion done) {
  withWorker(name, std::move(done), [this, name](Vm& vm, Completion done) {
    if (vm.record.state != VmState::kPaused) return done(qmp::QmpError::generic(vmText(name) + " is not paused"));
    vm.qmp->execute("cont", nullptr, [this, &vm, name, done = std::move(done)](Result<qmp::CommandResult>&& reply) {
      qmp::CommandResult result = fromWorker(name, std::move(reply));
      if (std::holds_alternative<qmp::Json>(result) && vm.record.state == VmState::kPaused) {
        setState(vm, VmState::kRunning, "resumed");
      }
      done(std::move(result));
    });
  });
}

void Supervisor::forward(const std::string& name, const std::string& command, const qmp::JsonValue* args, Completion done) {
  // The arguments live only during the request: the action may run later, so it keeps a copy.
  auto saved = std::make_shared<qmp::Json>();
  if (args) saved->CopyFrom(*args, saved->GetAllocator());
  withWorker(name, std::move(done), [name, command, saved, has_args = args != nullptr](Vm& vm, Completion done) {
    vm.qmp->execute(command, has_args ? saved.get() : nullptr, [name, done = std::move(done)](Result<qmp::CommandResult>&& reply) {
      done(fromWorker(name, std::move(reply)));
    });
  });
}

}  // namespace vmmd::daemon
