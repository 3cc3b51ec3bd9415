// Lifecycle: launching workers, connecting to them, and their events. Their end is in
// supervisor_exit.cpp, re-attaching after a vmmd restart in supervisor_recover.cpp.
#include "daemon/supervisor/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "base/log.h"
#include "daemon/launch/log_rotation.h"
#include "daemon/launch/worker_argv.h"
#include "daemon/supervisor/chaos_point.h"
#include "daemon/supervisor/deadline_link.h"
#include "daemon/supervisor/process_worker_host.h"
#include "daemon/supervisor/supervisor_vm.h"
#include "daemon/supervisor/worker_resources.h"
#include "qmp/unix_socket.h"

namespace vmmd::daemon {
namespace {

// How long a starting worker that dropped its QMP connection has to exit before it is killed.
constexpr uint64_t kExitGraceMs = 10000;

static_assert(kWorkerQmpFd == WorkerHost::kFirstPassedFd, "the argv names the fd the QMP listener lands on");
static_assert(PassedFds::kFirstPassedFd == WorkerHost::kFirstPassedFd, "the argv names fds as the worker gets them");

}  // namespace

Supervisor::Supervisor(uv_loop_t* loop, Store& store, SupervisorConfig config)
    : Supervisor(loop, store, std::move(config), std::make_unique<ProcessWorkerHost>(loop)) {}

Supervisor::Supervisor(uv_loop_t* loop, Store& store, SupervisorConfig config, std::unique_ptr<WorkerHost> workers)
    : loop_(loop), store_(store), config_(std::move(config)), workers_(std::move(workers)) {
  boot_id_ = workers_->bootId();
  if (config_.worker_ids) worker_ids_.emplace(*config_.worker_ids);
  std::error_code ec;
  auto exe = std::filesystem::weakly_canonical(config_.vmm_path, ec);
  worker_exe_ = ec ? config_.vmm_path : exe.string();
  log_timer_ = makeUvHandle<uv_timer_t>();
  uv_timer_init(loop_, log_timer_.get());
  log_timer_->data = this;
  uv_timer_start(log_timer_.get(), [](uv_timer_t* t) { static_cast<Supervisor*>(t->data)->checkLogs(); },
                 config_.log_check_interval_ms, config_.log_check_interval_ms);
  uv_unref(reinterpret_cast<uv_handle_t*>(log_timer_.get()));  // never what keeps the loop running
  if (config_.networks) {
    config_.networks->setUsersQuery([this](const std::string& network) { return networkUsers(network); });
  }
}

// Workers keep running: destroying the supervisor (vmmd exiting) only lets go of them.
Supervisor::~Supervisor() {
  if (config_.networks) config_.networks->setUsersQuery(nullptr);
}

void Supervisor::checkLogs() {
  for (auto& [name, vm] : vms_) {
    if (!vm->process || vm->paths.dir.empty()) continue;
    auto rotated = rotateLogIfOver(workerLogPath(vm->paths), kWorkerLogLimit);
    if (!rotated) log::warning(vmText(name) + ": worker log: " + rotated.error().message());
  }
}

std::unique_ptr<Supervisor::Vm> Supervisor::makeVm(const StoredDefinition& stored) {
  const VmDefinition& def = stored.definition;
  auto vm = std::make_unique<Vm>();
  vm->def = def;
  vm->owner = stored.owner;
  vm->record.name = def.name;
  vm->timer = makeUvHandle<uv_timer_t>();
  uv_timer_init(loop_, vm->timer.get());
  vm->timer->data = vm.get();
  vm->reconnect_timer = makeUvHandle<uv_timer_t>();
  uv_timer_init(loop_, vm->reconnect_timer.get());
  vm->reconnect_timer->data = vm.get();
  return vm;
}

Supervisor::Vm* Supervisor::active(const std::string& name) {
  auto it = vms_.find(name);
  return it == vms_.end() ? nullptr : it->second.get();
}

VmError Supervisor::notActive(const std::string& name) {
  auto stored = store_.definition(name);
  if (stored && !*stored) return vmError(VmErrorCode::kNotFound, vmText(name) + " is not defined");
  return vmError(VmErrorCode::kWrongState, vmText(name) + " is not running");
}

bool Supervisor::advance(Vm& vm, VmEvent event, const std::string& reason, const std::string& event_kind) {
  auto next = transition(vm.lifecycle, event);
  if (!next) return false;
  vm.lifecycle = *next;
  recordState(vm, reason, event_kind);
  return true;
}

void Supervisor::recordState(Vm& vm, const std::string& reason, const std::string& event_kind) {
  VmState state = vm.state();
  bool changed = vm.record.state != state;
  vm.record.state = state;
  std::string detail = std::string(toString(state)) + (reason.empty() ? "" : ": " + reason);
  if (auto st = store_.saveRuntime(vm.record, EventDraft{event_kind, detail}); !st) {
    log::error(vmText(vm.name()) + ": cannot record state " + detail + ": " + st.error().message());
  }
  log::info(vmText(vm.name()) + ": " + detail);
  if ((changed || event_kind != "state") && onStateChange) onStateChange(vm.name(), state, reason);
}

void Supervisor::retire(Vm& vm, VmEvent event, const std::string& reason) {
  auto next = transition(vm.lifecycle, event);
  if (!next) log::warning(vmText(vm.name()) + ": " + std::string(toString(vm.lifecycle.phase)) + " does not end by " + std::string(toString(event)));
  VmState state = next ? visibleState(*next) : vm.state();
  std::string name = vm.name();
  RuntimeRecord record = vm.record;
  forget(vm);
  saveIdle(name, state, reason, &record);
  if (drop_when_retired_.erase(name) > 0) {
    if (auto undefined = undefine(name); !undefined) log::error(vmText(name) + ": drop the failed arrival: " + undefined.error().message);
  }
}

void Supervisor::saveIdle(const std::string& name, VmState state, const std::string& reason, const RuntimeRecord* base) {
  RuntimeRecord record = base ? *base : RuntimeRecord{};
  record.name = name;
  record.state = state;
  record.pid.reset();
  record.start_time.reset();
  record.started_us.reset();
  record.stop_intent = StopIntent::kNone;
  record.stop_deadline_us.reset();
  record.boot_id.reset();
  record.worker_exe.reset();
  std::string detail = std::string(toString(state)) + (reason.empty() ? "" : ": " + reason);
  if (auto st = store_.saveRuntime(record, EventDraft{"state", detail}); !st) {
    log::error(vmText(name) + ": cannot record state " + detail + ": " + st.error().message());
  }
  log::info(vmText(name) + ": " + detail);
  if (onStateChange) onStateChange(name, state, reason);
}

void Supervisor::start(const std::string& name, Completion<Done> done) {
  if (Vm* vm = active(name)) {
    if (vm->process) {
      if (vm->state() == VmState::kStarting) {
        vm->start_waiters.push_back(std::move(done));
        return;
      }
      done(vmError(VmErrorCode::kWrongState, vmText(name) + " is already running"));
      return;
    }
    // A restart is pending (backoff): start now instead.
    uv_timer_stop(vm->timer.get());
    vm->start_waiters.push_back(std::move(done));
    if (auto err = launch(*vm)) failStart(*vm, err->message);
    return;
  }
  auto stored = store_.definition(name);
  if (!stored) {
    done(vmError(VmErrorCode::kInternal, vmText(name) + ": " + stored.error().message()));
    return;
  }
  if (!*stored) {
    done(vmError(VmErrorCode::kNotFound, vmText(name) + " is not defined"));
    return;
  }
  auto vm = makeVm(**stored);
  Vm& ref = *vm;
  vms_.emplace(name, std::move(vm));
  ref.record.restart_count = 0;  // a start by the operator begins a fresh series
  ref.start_waiters.push_back(std::move(done));
  if (auto err = launch(ref)) failStart(ref, err->message);
}

std::optional<VmError> Supervisor::launch(Vm& vm) {
  auto error = spawnWorker(vm);
  // Without a worker nothing holds the taps made for it; with one, its exit gives them back.
  if (error && !vm.process) detachNetworks(vm);
  return error;
}

std::optional<VmError> Supervisor::spawnWorker(Vm& vm) {
  const std::string& name = vm.name();
  auto failed = [&name](const std::string& why) { return vmError(VmErrorCode::kWorkerFailed, vmText(name) + ": " + why); };
  if (auto st = checkDefinitionFiles(vm.def); !st) return failed(st.error().message());
  auto paths = workerPathsFor(config_.run_dir, name);
  if (!paths) return failed(paths.error().message());
  vm.paths = *paths;
  std::error_code ec;
  std::filesystem::create_directories(vm.paths.dir, ec);
  if (ec) return failed("create " + vm.paths.dir + ": " + ec.message());
  if (config_.group) {
    // Traversable by the group (for tty.sock); the worker's own sockets inside stay vmmd's.
    for (const std::string& dir : {config_.run_dir + "/vms", vm.paths.dir}) {
      if (::chown(dir.c_str(), static_cast<uid_t>(-1), *config_.group) < 0 || ::chmod(dir.c_str(), 0750) < 0) {
        return failed(Error::fromErrno("give " + dir + " to the group").message());
      }
    }
  }
  auto identity = workerIdentity(vm);
  if (!identity) return failed(identity.error().message());
  // Sockets, pidfile, /dev/kvm, files and taps, opened here and passed: the worker has no right
  // to any of them by path. Only the worker holds them once it runs.
  FileOpener open_file = config_.open_file_as ? config_.open_file_as(vm.owner) : config_.open_file;
  // A tap per network NIC, on its network's bridge (the network must be active).
  auto network_taps = attachNetworks(vm);
  if (!network_taps) return failed(network_taps.error().message());
  auto resources = prepareWorker(vm.def, vm.paths, *identity, open_file, config_.open_device, std::move(*network_taps));
  if (!resources) return failed(resources.error().message());
  std::vector<std::string> args = resources->args;
  std::string cgroup;
  if (config_.cgroups) {
    auto made = config_.cgroups->createVm(vm.def);
    if (!made) return failed("cgroup: " + made.error().message());
    cgroup = *made;
  } else if (vm.def.limits) {
    log::warning(vmText(name) + ": its limits are not applied: vmmd has no delegated cgroup v2 tree");
  }
  // -S: the guest waits until the console relay is attached, so its first line is not lost.
  args.push_back("-S");
  if (vm.incoming) {
    // The state comes through QMP (getfd + migrate-incoming): the worker opens nothing itself.
    args.push_back("-incoming");
    args.push_back("defer");
  }
  // The intent first: a vmmd killed between the spawn and the pid's commit below finds the
  // worker by its pidfile lock when it restarts (reattach), instead of leaving it orphaned.
  RuntimeRecord intent = vm.record;
  intent.state = VmState::kStarting;
  intent.pid.reset();
  intent.start_time.reset();
  intent.stop_intent = StopIntent::kNone;
  intent.stop_deadline_us.reset();
  if (auto st = store_.saveRuntime(intent); !st) return failed("cannot record the start: " + st.error().message());
  chaosPoint("before-spawn");
  auto process = workers_->spawn(
      config_.vmm_path, args, workerLogPath(vm.paths), [this, &vm](const WorkerExit& exit) { onWorkerExit(vm, exit); },
      resources->fds.raw(), *identity);
  resources->fds.closeAll();
  if (!process) {
    if (!cgroup.empty()) (void)CgroupTree::remove(cgroup);
    return failed(process.error().message());
  }
  chaosPoint("after-spawn");
  vm.process = std::move(*process);
  vm.origin = WorkerOrigin::kSpawned;
  vm.announced = ShutdownCause::kNone;
  vm.shutdown.reset();
  vm.link = QmpLink::kConnecting;

  vm.record.pid = vm.process->pid();
  if (auto st = vm.process->startTime()) vm.record.start_time = static_cast<int64_t>(*st);
  vm.record.started_us = unixTimeUs();
  vm.record.qmp_socket = vm.paths.qmp_socket;
  vm.record.console_socket = vm.def.serial ? std::optional(ttyPath(vm.paths)) : std::nullopt;
  vm.record.qga_socket = vm.def.agent ? std::optional(vm.paths.qga_socket) : std::nullopt;
  vm.record.boot_id = boot_id_;
  vm.record.worker_exe.reset();  // known once it serves QMP (guestRuns)
  vm.record.stop_intent = StopIntent::kNone;
  vm.record.stop_deadline_us.reset();
  advance(vm, VmEvent::kLaunched, "worker pid " + std::to_string(vm.process->pid()));
  chaosPoint("after-commit");
  if (!cgroup.empty()) {
    // Before the guest runs (-S until `cont`): its memory is charged here (cgroup_tree.h).
    vm.cgroup = cgroup;
    if (auto st = CgroupTree::moveInto(cgroup, vm.process->pid()); !st) return failed("cgroup: " + st.error().message());
  }
  connectQmp(vm);
  return std::nullopt;
}

// The VM's own uid/gid (kept across its restarts while it is supervised); none when vmmd is not
// root.
Result<std::optional<WorkerIdentity>> Supervisor::workerIdentity(Vm& vm) {
  if (!worker_ids_) return std::optional<WorkerIdentity>();
  if (!vm.worker_id.held()) {
    auto lease = worker_ids_->acquire();
    if (!lease) return lease.error();
    vm.worker_id = std::move(*lease);
  }
  return std::optional(WorkerIdentity{vm.worker_id.uid(), vm.worker_id.gid()});
}

void Supervisor::schedule(Vm& vm, uint64_t delay_ms, std::function<void()> action) {
  vm.on_timer = std::move(action);
  uv_timer_start(vm.timer.get(), [](uv_timer_t* t) {
    auto* vm = static_cast<Vm*>(t->data);
    // The action may end the VM's supervision (and this timer): run a local copy.
    auto action = std::move(vm->on_timer);
    if (action) action();
  }, delay_ms, 0);
}

std::unique_ptr<WorkerLink> Supervisor::makeLink(Vm& vm) {
  auto link = std::make_unique<DeadlineLink>(loop_, workers_->link(), config_.qmp_request_timeout_ms);
  link->onEvent = [this, &vm](const qmp::Json& event) { onWorkerEvent(vm, event); };
  link->onDisconnect = [this, &vm](const Error& why) {
    if (vm.link != QmpLink::kReady) return;  // a failed connect: its callback deals with it
    qmpLost(vm, why);
  };
  return link;
}

// The worker's end is reported by its process (exit status or pidfd), not by the socket; while it
// runs, the connection is made again (a worker drops a client whose backlog grew too large).
void Supervisor::qmpLost(Vm& vm, const Error& why) {
  vm.link = QmpLink::kLost;
  log::warning(vmText(vm.name()) + ": QMP connection lost: " + why.message() + "; reconnecting");
  vm.link_lost_us = unixTimeUs();
  vm.reconnect_attempt = 0;
  scheduleReconnect(vm);
}

void Supervisor::scheduleReconnect(Vm& vm) {
  uint64_t delay = config_.qmp_reconnect_first_ms;
  for (uint32_t i = 0; i < vm.reconnect_attempt && delay < config_.qmp_reconnect_max_ms; ++i) delay *= 2;
  delay = std::min<uint64_t>(delay, config_.qmp_reconnect_max_ms);
  vm.on_reconnect = [this, &vm] { reconnectQmp(vm); };
  uv_timer_start(vm.reconnect_timer.get(), [](uv_timer_t* t) {
    auto* vm = static_cast<Vm*>(t->data);
    auto action = vm->on_reconnect;  // a local copy: it may replace the link (and this function)
    if (action) action();
  }, delay, 0);
}

void Supervisor::reconnectQmp(Vm& vm) {
  if (!vm.process || vm.process->exited() || vm.link != QmpLink::kLost) return;
  if (vm.qmp) vm.qmp->close();
  vm.qmp = makeLink(vm);
  vm.qmp->connect(vm.paths.qmp_socket, [this, &vm](Status status) {
    if (!vm.process || vm.process->exited()) return;  // the exit handler reports it
    if (status) {
      log::info(vmText(vm.name()) + ": QMP connection made again");
      vm.link = QmpLink::kReady;
      vm.reconnect_attempt = 0;
      runAwaiting(vm, std::nullopt);
      return;
    }
    // Commands that came meanwhile wait no longer than any request would.
    int64_t lost_ms = (unixTimeUs() - vm.link_lost_us) / 1000;
    if (lost_ms >= config_.qmp_request_timeout_ms) {
      runAwaiting(vm, vmError(VmErrorCode::kWorkerFailed, vmText(vm.name()) + ": no QMP connection to its worker (lost " +
                                                              std::to_string(lost_ms / 1000) + " s ago: " +
                                                              status.error().message() + "; reconnecting)"));
    }
    ++vm.reconnect_attempt;
    scheduleReconnect(vm);
  });
}

void Supervisor::connectQmp(Vm& vm) {
  if (!vm.qmp) vm.qmp = makeLink(vm);
  // The socket listens from before the worker starts, so there is no wait for it to appear; only
  // a worker that never answers (hung) is given up on, after a bound no slow host comes near.
  schedule(vm, config_.qmp_greeting_timeout_ms, [this, &vm] {
    qmpUnreachable(vm, "worker " + std::to_string(vm.process->pid()) + " did not answer on its QMP socket " +
                           vm.paths.qmp_socket + " within " + std::to_string(config_.qmp_greeting_timeout_ms / 1000) +
                           " s (it is running but not serving QMP)");
  });
  vm.qmp->connect(vm.paths.qmp_socket, [this, &vm](Status status) {
    if (status) {
      uv_timer_stop(vm.timer.get());
      vm.on_timer = nullptr;
      vm.link = QmpLink::kReady;
      onQmpReady(vm);
      return;
    }
    if (!vm.process || vm.process->exited()) return;  // the exit handler reports it
    std::string why = "QMP socket " + vm.paths.qmp_socket + ": " + status.error().message();
    if (vm.origin == WorkerOrigin::kAdopted) {
      qmpUnreachable(vm, why);
      return;
    }
    // A starting worker that drops the connection is exiting, as a rule: its exit (status and last
    // log line) is the better report and comes at once. One that stays is given up on shortly.
    schedule(vm, kExitGraceMs, [this, &vm, why] { qmpUnreachable(vm, why + " (the worker still runs)"); });
  });
}

void Supervisor::qmpUnreachable(Vm& vm, const std::string& why) {
  uv_timer_stop(vm.timer.get());
  vm.on_timer = nullptr;
  if (vm.qmp) vm.qmp->close();
  if (vm.origin == WorkerOrigin::kAdopted) {
    // A worker that runs but will not talk cannot be controlled; leave it alone and say so.
    log::warning(vmText(vm.name()) + ": " + why);
    vm.link = QmpLink::kUnreachable;
    runAwaiting(vm, vmError(VmErrorCode::kWorkerFailed, vmText(vm.name()) + ": " + why));
    // A shutdown that was in progress still ends at its deadline (destroyed when forced).
    if (vm.lifecycle.phase == VmPhase::kShuttingDown && vm.shutdown) shutdownTick(vm);
    return;
  }
  failStart(vm, why);
}

void Supervisor::onQmpReady(Vm& vm) {
  if (!vm.def.serial || vm.console) {
    settleRunState(vm);
    return;
  }
  vm.console = std::make_unique<ConsoleRelay>(loop_, vm.paths.dir + "/console.log");
  if (auto st = vm.console->listen(ttyPath(vm.paths), config_.group, vm.owner.uid); !st) {
    log::error(vmText(vm.name()) + ": console attach socket: " + st.error().message());
  }
  vm.console->connectWorker(vm.paths.console_socket, [this, &vm](Status st) {
    if (!st) log::error(vmText(vm.name()) + ": " + st.error().message());
    settleRunState(vm);
  });
}

// Asks the worker where it stands; a worker still in prelaunch (-S) is let go now.
void Supervisor::settleRunState(Vm& vm) {
  if (vm.incoming && !vm.incoming->loading) return loadIncoming(vm);
  vm.qmp->execute("query-status", nullptr, [this, &vm](Result<qmp::CommandResult>&& reply) {
    std::string status;
    if (reply && std::holds_alternative<qmp::Json>(*reply)) {
      const qmp::Json& value = std::get<qmp::Json>(*reply);
      if (value.IsObject() && value.HasMember("status") && value["status"].IsString()) status = value["status"].GetString();
    }
    if (!reply && reply.error().code() == ETIMEDOUT) {
      // Talks, but does not answer: a start fails (the worker is killed), a re-attached worker is left alone.
      return qmpUnreachable(vm, "query-status: " + reply.error().message());
    }
    if (status.empty()) return;  // connection lost: the exit handler takes over
    const char* how = vm.origin == WorkerOrigin::kAdopted ? "re-attached" : "started";
    if (status == "prelaunch") {
      vm.qmp->execute("cont", nullptr, [this, &vm, how](Result<qmp::CommandResult>&& r) {
        if (!r || std::holds_alternative<qmp::QmpError>(*r)) {
          std::string why = r ? std::get<qmp::QmpError>(*r).desc : r.error().message();
          if (vm.origin == WorkerOrigin::kSpawned) failStart(vm, "cont: " + why);
          return;
        }
        guestRuns(vm, VmEvent::kGuestRunning, how);
      });
      return;
    }
    guestRuns(vm, status == "paused" ? VmEvent::kGuestFoundPaused : VmEvent::kGuestRunning, how);
  });
}

// The start (or re-attach) is complete: the guest runs or is paused.
void Supervisor::guestRuns(Vm& vm, VmEvent event, const char* how) {
  if (vm.origin == WorkerOrigin::kSpawned && vm.process) {
    // What a restarted vmmd expects /proc/PID/exe to be (the process serving QMP is the worker).
    if (auto facts = workers_->inspect(vm.process->pid())) vm.record.worker_exe = facts->exe;
  }
  advance(vm, event, how);
  // A re-attached worker whose shutdown was in progress: its timer resumes from the committed
  // deadline (connecting held the VM's timer until now).
  if (vm.lifecycle.phase == VmPhase::kShuttingDown && vm.shutdown) shutdownTick(vm);
  for (auto& done : std::exchange(vm.start_waiters, {})) done(Done{});
  runAwaiting(vm, std::nullopt);
}

void Supervisor::onWorkerEvent(Vm& vm, const qmp::Json& event) {
  std::string name = event["event"].IsString() ? event["event"].GetString() : "";
  auto data = event.FindMember("data");
  if (name == "STOP") {
    advance(vm, VmEvent::kPaused, "paused");
  } else if (name == "RESUME") {
    advance(vm, VmEvent::kResumed, "resumed");
  } else if (name == "SHUTDOWN") {
    bool guest = data != event.MemberEnd() && data->value.IsObject() && data->value.HasMember("guest") &&
                 data->value["guest"].IsBool() && data->value["guest"].GetBool();
    if (guest) vm.announced = ShutdownCause::kGuestPowerOff;
    else if (vm.announced == ShutdownCause::kNone) vm.announced = ShutdownCause::kHostQuit;
  } else if (name == "VSERPORT_CHANGE" && vm.def.agent && data != event.MemberEnd() && data->value.IsObject()) {
    const qmp::JsonValue& d = data->value;
    if (d.HasMember("id") && d["id"].IsString() && qmp::jsonStringView(d["id"]) == kAgentPortId &&
        d.HasMember("open") && d["open"].IsBool()) {
      agentOf(vm).setGuestOpen(d["open"].GetBool());
    }
  } else if (name == "RESET") {
    recordState(vm, "reset", "reset");
  }
}

void Supervisor::failStart(Vm& vm, const std::string& why) {
  log::error(vmText(vm.name()) + ": start failed: " + why);
  runAwaiting(vm, vmError(VmErrorCode::kWorkerFailed, vmText(vm.name()) + ": start failed: " + why));
  auto waiters = std::exchange(vm.start_waiters, {});
  if (vm.process && !vm.process->exited()) {
    // Half-started: make sure no orphan stays behind; its exit finishes the bookkeeping.
    if (auto next = transition(vm.lifecycle, VmEvent::kDestroyRequested)) vm.lifecycle = *next;
    commitStop(vm, StopIntent::kDestroy);
    (void)vm.process->signal(SIGKILL);
  } else {
    retire(vm, VmEvent::kStopped, "start failed");
  }
  for (auto& done : waiters) done(vmError(VmErrorCode::kWorkerFailed, why));
}

void Supervisor::commitStop(Vm& vm, StopIntent intent) {
  vm.record.stop_intent = intent;
  bool shutdown = intent == StopIntent::kShutdownAcpi || intent == StopIntent::kShutdownAgent;
  vm.record.stop_deadline_us = shutdown && vm.shutdown ? std::optional(vm.shutdown->deadline_us) : std::nullopt;
  vm.record.stop_timeout_s = shutdown && vm.shutdown ? vm.shutdown->timeout_s : 0;
  vm.record.stop_force = shutdown && vm.shutdown && vm.shutdown->force;
  if (auto st = store_.saveRuntime(vm.record); !st) {
    log::error(vmText(vm.name()) + ": cannot record the " + std::string(toString(intent)) + " intent: " + st.error().message());
  }
}

void Supervisor::forget(Vm& vm) {
  std::string name = vm.name();
  vms_.erase(name);  // `vm` is gone from here on
}

void Supervisor::finishStops(Vm& vm, const VmResult<StopOutcome>& result) {
  for (auto& done : std::exchange(vm.stop_waiters, {})) done(result);
}

}  // namespace vmmd::daemon
