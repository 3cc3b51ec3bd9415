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

std::variant<Supervisor::Vm*, qmp::QmpError> Supervisor::runningVm(const std::string& name) {
  Vm* vm = active(name);
  if (!vm || !vm->process) {
    auto stored = store_.definition(name);
    if (stored && !*stored) return qmp::QmpError{"DeviceNotFound", vmText(name) + " is not defined"};
    return notRunning(name);
  }
  if (!vm->qmp_ready) {
    if (vm->record.state == VmState::kStarting) return qmp::QmpError::generic(vmText(name) + " is still starting");
    return qmp::QmpError::generic(vmText(name) + ": no QMP connection to its worker");
  }
  return vm;
}

void Supervisor::shutdown(const std::string& name, uint32_t timeout_s, bool force, Completion done) {
  auto found = runningVm(name);
  if (auto* err = std::get_if<qmp::QmpError>(&found)) {
    done(*err);
    return;
  }
  Vm& vm = *std::get<Vm*>(found);
  vm.stop_waiters.push_back(std::move(done));
  if (vm.intent != Intent::kNone) return;  // already shutting down: wait for the same end
  vm.intent = Intent::kShutdown;
  vm.force_on_timeout = force;
  vm.shutdown_timeout_s = timeout_s;
  VmState before = vm.record.state;
  setState(vm, VmState::kShuttingDown, "ACPI power button, timeout " + std::to_string(timeout_s) + " s" + (force ? ", then destroy" : ""));
  vm.shutdown_deadline_us = unixTimeUs() + int64_t{timeout_s} * 1000000;
  pressPowerButton(vm, before);
  shutdownTick(vm, before);
}

void Supervisor::pressPowerButton(Vm& vm, VmState before) {
  std::string name = vm.name();
  vm.qmp->execute("system_powerdown", nullptr, [this, &vm, name, before](Result<qmp::CommandResult>&& reply) {
    qmp::CommandResult result = fromWorker(name, std::move(reply));
    if (auto* err = std::get_if<qmp::QmpError>(&result); err && vm.intent == Intent::kShutdown) {
      uv_timer_stop(vm.timer.get());
      vm.intent = Intent::kNone;
      setState(vm, before, "shutdown failed");
      finishStops(vm, *err);
    }
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
      if (vm.qmp_ready) pressPowerButton(vm, before);
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
  auto found = runningVm(name);
  if (auto* err = std::get_if<qmp::QmpError>(&found)) {
    done(*err);
    return;
  }
  Vm& vm = *std::get<Vm*>(found);
  if (vm.record.state == VmState::kPaused) {
    done(qmp::QmpError::generic(vmText(name) + " is already paused"));
    return;
  }
  vm.qmp->execute("stop", nullptr, [this, &vm, name, done = std::move(done)](Result<qmp::CommandResult>&& reply) {
    qmp::CommandResult result = fromWorker(name, std::move(reply));
    if (std::holds_alternative<qmp::Json>(result) && vm.record.state == VmState::kRunning) {
      setState(vm, VmState::kPaused, "paused");
    }
    done(std::move(result));
  });
}

void Supervisor::resume(const std::string& name, Completion done) {
  auto found = runningVm(name);
  if (auto* err = std::get_if<qmp::QmpError>(&found)) {
    done(*err);
    return;
  }
  Vm& vm = *std::get<Vm*>(found);
  if (vm.record.state != VmState::kPaused) {
    done(qmp::QmpError::generic(vmText(name) + " is not paused"));
    return;
  }
  vm.qmp->execute("cont", nullptr, [this, &vm, name, done = std::move(done)](Result<qmp::CommandResult>&& reply) {
    qmp::CommandResult result = fromWorker(name, std::move(reply));
    if (std::holds_alternative<qmp::Json>(result) && vm.record.state == VmState::kPaused) {
      setState(vm, VmState::kRunning, "resumed");
    }
    done(std::move(result));
  });
}

void Supervisor::forward(const std::string& name, const std::string& command, const qmp::JsonValue* args, Completion done) {
  auto found = runningVm(name);
  if (auto* err = std::get_if<qmp::QmpError>(&found)) {
    done(*err);
    return;
  }
  Vm& vm = *std::get<Vm*>(found);
  vm.qmp->execute(command, args, [name, done = std::move(done)](Result<qmp::CommandResult>&& reply) {
    done(fromWorker(name, std::move(reply)));
  });
}

}  // namespace vmmd::daemon
