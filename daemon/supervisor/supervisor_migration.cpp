// Migration between two vmmd instances (vmctl migrate NAME --to SOCKET|HOST|ssh://...).
//
// The destination's control socket is reached directly, or on another host through ssh: one
// session running `vmctl --socket S stdio-bridge` there carries the control connection below,
// a second one the stream to incoming.sock (daemon/remote/, README "Migration between hosts").
//
// Source                                     Destination (its control socket)
//   vm-migrate-incoming {definition, owner} ->  defines the VM, starts a worker with
//                                               -incoming defer, listens on incoming.sock
//                                          <-  {"socket": ".../incoming.sock"}
//   connects to it; the worker gets the socket (getfd) and `migrate fd:`; query-migrate until
//   completed                                   the accepted socket goes to its worker
//                                               (getfd + migrate-incoming fd:)
//   vm-migrate-commit {name}                ->  answers once the guest runs there
//   its worker destroyed, the VM undefined here
// On any failure before the commit's answer: vm-migrate-abort there (its worker destroyed, the VM
// undefined), and the guest runs here again.
#include <filesystem>

#include "base/log.h"
#include "daemon/definition/definition_json.h"
#include "daemon/remote/ssh_command.h"
#include "daemon/supervisor/supervisor.h"
#include "daemon/supervisor/supervisor_vm.h"
#include "qmp/unix_socket.h"

namespace vmmd::daemon {
namespace {

// How long a destination holds a loaded, paused arrival for the source's commit.
constexpr uint64_t kCommitWaitMs = 60000;

qmp::Json nameArgs(const std::string& name) {
  qmp::Json args = qmp::jsonObject();
  auto& a = args.GetAllocator();
  args.AddMember("name", qmp::jsonString(name, a), a);
  return args;
}

// {"uid": N, "gid": N, "groups": [N...]}, built with `a` (the request's allocator).
qmp::JsonValue ownerJson(const Owner& owner, qmp::Json::AllocatorType& a) {
  qmp::JsonValue value(rapidjson::kObjectType);
  value.AddMember("uid", static_cast<uint64_t>(owner.uid), a);
  value.AddMember("gid", static_cast<uint64_t>(owner.gid), a);
  qmp::JsonValue groups(rapidjson::kArrayType);
  for (gid_t g : owner.groups) groups.PushBack(static_cast<uint64_t>(g), a);
  value.AddMember("groups", groups, a);
  return value;
}

// The destination's answer as a VmError: its own message, or the connection's failure.
VmError fromPeer(const std::string& destination, const char* command, const Result<qmp::CommandResult>& reply) {
  if (!reply) return vmError(VmErrorCode::kWorkerFailed, "destination " + destination + ": " + command + ": " + reply.error().message());
  return vmError(VmErrorCode::kWorkerFailed, "destination " + destination + ": " + std::get<qmp::QmpError>(*reply).desc);
}

bool peerFailed(const Result<qmp::CommandResult>& reply) { return !reply || std::holds_alternative<qmp::QmpError>(*reply); }

// How long an ssh whose connection failed may take to exit and say why.
constexpr uint64_t kSshExitWaitMs = 3000;

std::string sshSays(const std::string& failure) { return failure.rfind("ssh:", 0) == 0 ? failure : "ssh: " + failure; }

// What the ssh processes of a failed migration said, if one of them ended badly: " (ssh: ...)".
std::string sshDiagnosis(const OutgoingMigration& out) {
  for (const auto* link : {out.control_link.get(), out.stream_link.get()}) {
    if (!link || !link->ended()) continue;
    if (std::string failure = link->failure(); !failure.empty()) return " (" + sshSays(failure) + ")";
  }
  return "";
}

}  // namespace

// Reaches the destination's control socket: directly, or through ssh to a stdio bridge there.
void Supervisor::connectToDestination(Vm& vm, const MigrationDestination& destination, std::function<void(Status)> connected) {
  OutgoingMigration& out = *vm.outgoing;
  if (const auto* local = std::get_if<LocalDestination>(&destination)) return out.peer->connect(local->socket, std::move(connected));
  out.ssh = std::get<SshDestination>(destination);
  UniqueFd local;
  auto link = SshLink::spawn(loop_, sshBridgeArgv(*out.ssh, "", config_.remote_vmctl), local);
  if (!link) return connected(link.error());
  out.control_link = std::move(*link);
  out.peer->open(std::move(local), [&vm, connected](Status status) {
    if (status || !vm.outgoing || !vm.outgoing->control_link) return connected(std::move(status));
    // The session ended before the destination vmmd greeted: ssh's own words say why.
    vm.outgoing->control_link->whenEnded(kSshExitWaitMs, [connected, status](std::string failure) {
      connected(failure.empty() ? status : Status(Error(sshSays(failure))));
    });
  });
}

void Supervisor::migrateTo(const std::string& name, const std::string& destination_text, Completion<MigrationOutcome> done) {
  withWorker(name, failTo(done), [this, name, destination_text, done](Vm& vm) {
    if (!vm.operation.empty()) return done(vmError(VmErrorCode::kWrongState, vmText(name) + ": " + vm.operation + " is in progress"));
    if (vm.state() != VmState::kRunning && vm.state() != VmState::kPaused) {
      return done(vmError(VmErrorCode::kWrongState, vmText(name) + " is " + std::string(toString(vm.state()))));
    }
    if (vm.incoming || arrivals_.count(name)) return done(vmError(VmErrorCode::kWrongState, vmText(name) + " is still arriving here"));
    auto snapshots = store_.snapshots(name);
    if (snapshots && !snapshots->empty()) {
      return done(vmError(VmErrorCode::kWrongState, vmText(name) + " has snapshots, whose state files stay on this host: delete them before migrating"));
    }
    auto parsed = parseMigrationDestination(destination_text);
    if (!parsed) return done(vmError(VmErrorCode::kInvalidArgument, vmText(name) + ": " + parsed.error().message()));
    const std::string destination = describeDestination(*parsed);
    vm.operation = "migration to " + destination;
    vm.outgoing = std::make_unique<OutgoingMigration>();
    OutgoingMigration& out = *vm.outgoing;
    out.destination = destination;
    out.was_running = vm.state() == VmState::kRunning;
    out.peer = std::make_unique<qmp::UvClient>(loop_);
    vm.on_worker_exit = [this, name, done](const VmError& why) {
      // The source worker died: nothing runs anywhere; the destination's half goes too.
      Vm* gone = active(name);
      if (gone && gone->outgoing && gone->outgoing->peer) {
        auto args = std::make_shared<qmp::Json>(nameArgs(name));
        gone->outgoing->peer->execute("vm-migrate-abort", args.get(), [args](Result<qmp::CommandResult>&&) {});
      }
      done(why);
    };
    out.peer->onDisconnect = [&vm](const Error& why) {
      // The destination vmmd went away: a stream still flowing is cancelled (the poll then ends it).
      if (!vm.outgoing || vm.outgoing->phase != "active") return;
      log::warning(vmText(vm.name()) + ": destination " + vm.outgoing->destination + " lost (" + why.message() + "); cancelling the migration");
      vm.qmp->execute("migrate_cancel", nullptr, [](Result<qmp::CommandResult>&&) {});
    };
    connectToDestination(vm, *parsed, [this, &vm, name, destination, done](Status connected) {
      if (!connected) {
        std::string why = vm.outgoing->cancel_requested ? "migration cancelled" : "destination " + destination + ": " + connected.error().message();
        return migrationEnded(vm, vmError(VmErrorCode::kWorkerFailed, why), done);
      }
      vm.outgoing->phase = "preparing";
      auto args = std::make_shared<qmp::Json>(qmp::jsonObject());
      auto& a = args->GetAllocator();
      auto def = qmp::parseJson(serializeDefinition(vm.def));
      qmp::JsonValue definition;
      definition.CopyFrom(*def, a);
      args->AddMember("definition", definition, a);
      args->AddMember("owner", ownerJson(vm.owner, a), a);
      args->AddMember("run", vm.outgoing->was_running, a);
      vm.outgoing->peer->execute("vm-migrate-incoming", args.get(), [this, &vm, destination, args, done](Result<qmp::CommandResult>&& reply) {
        if (peerFailed(reply)) return migrationEnded(vm, fromPeer(destination, "vm-migrate-incoming", reply), done);
        const qmp::Json& value = std::get<qmp::Json>(*reply);
        std::string socket = value.IsObject() && value.HasMember("socket") && value["socket"].IsString() ? value["socket"].GetString() : "";
        if (vm.outgoing->cancel_requested) return migrationEnded(vm, vmError(VmErrorCode::kWorkerFailed, "migration cancelled"), done);
        migrationPrepared(vm, socket, done);
      });
    });
  });
}

void Supervisor::migrationPrepared(Vm& vm, const std::string& socket, Completion<MigrationOutcome> done) {
  OutgoingMigration& out = *vm.outgoing;
  Result<UniqueFd> stream = Error("the destination named no socket for the stream");
  if (socket.empty() || socket[0] != '/') {
    // Answered below with the error above.
  } else if (out.ssh) {
    // A second ssh session, bridged there to the socket the destination's worker reads from.
    UniqueFd local;
    auto link = SshLink::spawn(loop_, sshBridgeArgv(*out.ssh, socket, config_.remote_vmctl), local);
    if (link) {
      out.stream_link = std::move(*link);
      stream = std::move(local);
    } else {
      stream = link.error();
    }
  } else {
    stream = qmp::connectUnix(socket);
  }
  if (!stream) {
    return migrationEnded(vm, vmError(VmErrorCode::kWorkerFailed, "destination stream " + socket + ": " + stream.error().message()), done);
  }
  vm.outgoing->phase = "active";
  log::info(vmText(vm.name()) + ": migrating to " + vm.outgoing->destination);
  migrateWorker(vm, std::move(*stream), /*mapped_ram=*/false, [this, &vm, done](VmResult<qmp::Json> result) { migrationEnded(vm, std::move(result), done); });
}

void Supervisor::migrationEnded(Vm& vm, VmResult<qmp::Json> result, Completion<MigrationOutcome> done) {
  OutgoingMigration& out = *vm.outgoing;
  const std::string name = vm.name();
  if (result) {
    out.phase = "committing";
    auto status = std::make_shared<qmp::Json>(std::move(*result));
    auto args = std::make_shared<qmp::Json>(nameArgs(name));
    out.peer->execute("vm-migrate-commit", args.get(), [this, &vm, name, args, status, done](Result<qmp::CommandResult>&& reply) {
      if (peerFailed(reply)) return migrationEnded(vm, fromPeer(vm.outgoing->destination, "vm-migrate-commit", reply), done);
      // The guest runs there: this worker and this VM's record go.
      MigrationOutcome outcome{vm.outgoing->destination, qmp::jsonCopy(*status)};
      log::info(vmText(name) + ": moved to " + outcome.destination);
      endOperation(vm);
      vm.outgoing.reset();
      quitWorker(name, [this, name, outcome = std::make_shared<MigrationOutcome>(std::move(outcome)), done](VmResult<StopOutcome> stopped) {
        if (!stopped) log::error(vmText(name) + ": after its migration: " + stopped.error().message);
        finishMigration(name, done, outcome);
      });
    });
    return;
  }
  // Failed or cancelled: the destination's half goes, the guest keeps (or resumes) running here.
  VmError why = result.error();
  why.message = vmText(name) + ": migration to " + out.destination + " failed: " + why.message + sshDiagnosis(out);
  log::warning(why.message);
  out.phase = "cleaning-up";
  auto resume = [this, &vm, why, done] {
    bool run = vm.outgoing->was_running;
    auto answer = [this, &vm, why, done] {
      endOperation(vm);
      vm.outgoing.reset();
      done(why);
    };
    if (!run) return answer();
    vm.qmp->execute("query-status", nullptr, [this, &vm, answer](Result<qmp::CommandResult>&& reply) {
      auto status = fromWorker(vm.name(), std::move(reply));
      if (status && status->IsObject() && status->HasMember("running") && (*status)["running"].IsBool() && (*status)["running"].GetBool()) {
        return answer();
      }
      vm.qmp->execute("cont", nullptr, [this, &vm, answer](Result<qmp::CommandResult>&& r) {
        auto resumed = fromWorker(vm.name(), std::move(r));
        if (!resumed) log::error(vmText(vm.name()) + ": resume after the failed migration: " + resumed.error().message);
        else advance(vm, VmEvent::kResumed, "resumed after the failed migration");
        answer();
      });
    });
  };
  if (!out.peer->connected()) return resume();
  auto args = std::make_shared<qmp::Json>(nameArgs(name));
  out.peer->execute("vm-migrate-abort", args.get(), [name, args, resume](Result<qmp::CommandResult>&& reply) {
    if (peerFailed(reply)) {
      std::string why = reply ? std::get<qmp::QmpError>(reply.value()).desc : reply.error().message();
      log::warning(vmText(name) + ": the destination could not drop its half: " + why);
    }
    resume();
  });
}

void Supervisor::finishMigration(const std::string& name, Completion<MigrationOutcome> done, std::shared_ptr<MigrationOutcome> outcome) {
  if (Vm* vm = active(name); vm && vm->process) {
    // Still ending (destroy answers at exit): undefine once it has gone.
    return schedule(*vm, 50, [this, name, done, outcome] { finishMigration(name, done, outcome); });
  }
  if (auto undefined = undefine(name); !undefined) log::error(vmText(name) + ": after its migration: " + undefined.error().message);
  (void)store_.appendEvent(name, EventDraft{"migrated", "to " + outcome->destination});
  done(std::move(*outcome));
}

void Supervisor::migrateCancel(const std::string& name, Completion<Done> done) {
  Vm* vm = active(name);
  if (!vm || !vm->outgoing) return done(vmError(VmErrorCode::kWrongState, vmText(name) + " is not migrating"));
  vm->outgoing->cancel_requested = true;
  // Still reaching the destination over ssh (a slow or silent host): the session goes, and with it
  // the connection attempt, which then ends the migration as cancelled.
  if (vm->outgoing->phase == "connecting") vm->outgoing->control_link.reset();
  if (vm->outgoing->phase != "active") return done(Done{});
  vm->qmp->execute("migrate_cancel", nullptr, [name, done](Result<qmp::CommandResult>&& reply) { done(asDone(fromWorker(name, std::move(reply)))); });
}

VmResult<qmp::Json> Supervisor::migrationStatus(const std::string& name) {
  qmp::Json out = qmp::jsonObject();
  auto& a = out.GetAllocator();
  Vm* vm = active(name);
  if (!vm || !vm->outgoing) {
    if (auto stored = store_.definition(name); stored && !*stored) return vmError(VmErrorCode::kNotFound, vmText(name) + " is not defined");
    out.AddMember("phase", "none", a);
    return out;
  }
  out.AddMember("phase", qmp::jsonString(vm->outgoing->phase, a), a);
  out.AddMember("destination", qmp::jsonString(vm->outgoing->destination, a), a);
  qmp::JsonValue status;
  status.CopyFrom(vm->outgoing->last_status, a);
  out.AddMember("migration", status, a);
  return out;
}

void Supervisor::acceptIncoming(const VmDefinition& def, const Owner& owner, bool run, Completion<IncomingEndpoint> done, uint64_t source) {
  const std::string name = def.name;
  auto defined = define(def, owner);
  if (!defined) return done(defined.error());
  // Committed before its worker starts: a vmmd restarted before the VM arrived drops it (recover).
  if (auto marked = store_.setArriving(name, true); !marked) {
    (void)undefine(name);
    return done(vmError(VmErrorCode::kInternal, vmText(name) + ": " + marked.error().message()));
  }
  auto paths = workerPathsFor(config_.run_dir, name);
  std::error_code ec;
  if (paths) std::filesystem::create_directories(paths->dir, ec);
  auto listener = paths && !ec ? StreamListener::listen(loop_, paths->dir + "/incoming.sock")
                               : Result<std::unique_ptr<StreamListener>>(Error(paths ? ec.message() : paths.error().message()));
  if (!listener) {
    (void)undefine(name);
    return done(vmError(VmErrorCode::kInternal, vmText(name) + ": " + listener.error().message()));
  }
  arrivals_[name] = Arrival{false, run, std::nullopt, {}, source};
  auto answered = std::make_shared<bool>(false);
  IncomingPlan plan;
  plan.listener = std::move(*listener);
  plan.run = false;  // the commit lets it run
  plan.on_listening = [name, answered, done](const std::string& socket) {
    *answered = true;
    done(IncomingEndpoint{name, socket});
  };
  startIncoming(name, std::move(plan), [this, name, answered, done](VmResult<Done> started) {
    if (!started && !*answered) {
      *answered = true;
      done(started.error());
    }
    arrivalLoaded(name, started);
  });
}

void Supervisor::arrivalLoaded(const std::string& name, const VmResult<Done>& outcome) {
  auto it = arrivals_.find(name);
  if (it == arrivals_.end()) return;
  if (outcome) {
    log::info(vmText(name) + ": state loaded; waiting for the source's commit");
    it->second.loaded = true;
    if (!it->second.commit_waiters.empty()) return finishArrival(name);
    // The source commits right after its migration completes; a source (vmmd) that went away
    // meanwhile still holds the guest (paused): the half here goes, never a second running copy.
    if (Vm* vm = active(name)) {
      schedule(*vm, kCommitWaitMs, [this, name] {
        auto at = arrivals_.find(name);
        if (at == arrivals_.end() || !at->second.commit_waiters.empty()) return;
        log::warning(vmText(name) + ": no commit from the source within " + std::to_string(kCommitWaitMs / 1000) + " s; dropping the arrival");
        abortIncoming(name, [](VmResult<Done>) {});
      });
    }
    return;
  }
  log::warning(vmText(name) + ": incoming migration failed: " + outcome.error().message);
  auto waiters = std::exchange(it->second.commit_waiters, {});
  it->second.failed = outcome.error();
  undefineWhenStopped(name);
  for (auto& w : waiters) w(outcome.error());
}

// The source's migration completed: the guest runs here (as it ran there) and the VM is ours.
void Supervisor::finishArrival(const std::string& name) {
  auto it = arrivals_.find(name);
  if (it == arrivals_.end() || !it->second.loaded) return;
  if (Vm* vm = active(name)) {  // the commit came: no more waiting for it
    uv_timer_stop(vm->timer.get());
    vm->on_timer = nullptr;
  }
  auto settle = [this, name](VmResult<Done> resumed) {
    auto at = arrivals_.find(name);
    if (at == arrivals_.end()) return;
    auto waiters = std::exchange(at->second.commit_waiters, {});
    if (!resumed) {
      for (auto& w : waiters) w(resumed.error());
      return;
    }
    arrivals_.erase(at);
    if (auto cleared = store_.setArriving(name, false); !cleared) log::error(vmText(name) + ": " + cleared.error().message());
    log::info(vmText(name) + ": arrived by migration");
    for (auto& w : waiters) w(Done{});
  };
  if (!it->second.run) return settle(Done{});
  resume(name, settle);
}

void Supervisor::commitIncoming(const std::string& name, Completion<Done> done) {
  auto it = arrivals_.find(name);
  if (it == arrivals_.end()) {
    Vm* vm = active(name);
    if (vm && vm->process && !vm->incoming) return done(Done{});  // arrived already
    return done(vmError(VmErrorCode::kWrongState, vmText(name) + " is not arriving here"));
  }
  if (it->second.failed) return done(*it->second.failed);
  it->second.commit_waiters.push_back(std::move(done));
  if (it->second.loaded && it->second.commit_waiters.size() == 1) finishArrival(name);
}

void Supervisor::abortIncoming(const std::string& name, Completion<Done> done) {
  auto it = arrivals_.find(name);
  Vm* vm = active(name);
  if (it == arrivals_.end() && !(vm && vm->incoming)) {
    // Committed already, or never here: an abort after the commit would lose the only running copy.
    auto stored = store_.definition(name);
    if (stored && !*stored) return done(Done{});  // nothing of it here
    return done(vmError(VmErrorCode::kWrongState, vmText(name) + " is not arriving here"));
  }
  if (it != arrivals_.end()) {
    for (auto& w : std::exchange(it->second.commit_waiters, {})) w(vmError(VmErrorCode::kWorkerFailed, vmText(name) + ": migration aborted"));
    it->second.failed = vmError(VmErrorCode::kWorkerFailed, vmText(name) + ": migration aborted");
  }
  log::info(vmText(name) + ": incoming migration aborted by the source");
  if (!vm) {
    arrivals_.erase(name);
    if (auto undefined = undefine(name); !undefined) return done(undefined.error());
    return done(Done{});
  }
  destroy(name, [this, name, done](VmResult<StopOutcome>) {
    arrivals_.erase(name);
    undefineWhenStopped(name);
    done(Done{});
  });
}

void Supervisor::sourceGone(uint64_t source) {
  if (source == 0) return;
  std::vector<std::string> orphans;
  for (const auto& [name, arrival] : arrivals_) {
    if (arrival.source == source && arrival.commit_waiters.empty()) orphans.push_back(name);
  }
  for (const std::string& name : orphans) {
    log::warning(vmText(name) + ": the source's control connection closed before its commit; dropping the arrival");
    abortIncoming(name, [](VmResult<Done>) {});
  }
}

void Supervisor::dropUnfinishedArrivals() {
  auto arriving = store_.arrivingVms();
  if (!arriving) return log::error("cannot read the VMs arriving by migration: " + arriving.error().message());
  for (const std::string& name : *arriving) {
    // Its source kept running it; whatever worker this half still has goes with it.
    auto record = store_.runtime(name);
    if (record && *record && (*record)->pid && (*record)->start_time) {
      auto pid = static_cast<pid_t>(*(*record)->pid);
      if (auto facts = workers_->inspect(pid); facts && facts->start_time == static_cast<uint64_t>(*(*record)->start_time)) {
        if (auto killed = workers_->killProcess(pid, facts->start_time); !killed) log::warning(vmText(name) + ": " + killed.error().message());
      }
    }
    if (auto paths = workerPathsFor(config_.run_dir, name)) {
      if (auto holder = workers_->pidfileHolder(paths->pidfile)) {
        if (auto facts = workers_->inspect(*holder)) (void)workers_->killProcess(*holder, facts->start_time);
      }
    }
    log::warning(vmText(name) + ": its incoming migration did not complete before vmmd stopped; dropping it");
    if (auto undefined = store_.undefine(name); !undefined) log::error(vmText(name) + ": " + undefined.error().message());
  }
}

void Supervisor::undefineWhenStopped(const std::string& name) {
  arrivals_.erase(name);
  // Still ending (a failed start kills its worker): retire() undefines it at the end.
  if (active(name)) {
    drop_when_retired_.insert(name);
    return;
  }
  auto stored = store_.definition(name);
  if (!stored || !*stored) return;
  if (auto undefined = undefine(name); !undefined) log::error(vmText(name) + ": drop the failed arrival: " + undefined.error().message);
}

}  // namespace vmmd::daemon
