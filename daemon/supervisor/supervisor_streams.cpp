// Migration streams through the worker's QMP, QEMU's way: vmmd opens the stream (a state file, a
// socket to the destination) and passes it with getfd, since the confined worker opens nothing
// itself; then `migrate fd:NAME` or, for a worker started with -incoming defer,
// `migrate-incoming fd:NAME`, followed to its end by query-migrate / query-status.
#include "base/log.h"
#include "daemon/supervisor/supervisor.h"
#include "daemon/supervisor/supervisor_vm.h"

namespace vmmd::daemon {
namespace {

constexpr uint64_t kPollMs = 50;
constexpr const char* kOutgoingFd = "vmmd-migration-out";
constexpr const char* kIncomingFd = "vmmd-migration-in";

qmp::Json oneString(const char* key, const std::string& value) {
  qmp::Json args = qmp::jsonObject();
  auto& a = args.GetAllocator();
  args.AddMember(qmp::JsonValue(key, a), qmp::jsonString(value, a), a);
  return args;
}

// migrate-set-capabilities with mapped-ram on or off (the worker keeps what the last call set).
qmp::Json mappedRamCapability(bool on) {
  qmp::Json args = qmp::jsonObject();
  auto& a = args.GetAllocator();
  qmp::JsonValue capability(rapidjson::kObjectType);
  capability.AddMember("capability", "mapped-ram", a);
  capability.AddMember("state", on, a);
  qmp::JsonValue list(rapidjson::kArrayType);
  list.PushBack(capability, a);
  args.AddMember("capabilities", list, a);
  return args;
}

std::string memberText(const qmp::JsonValue& object, const char* key) {
  if (!object.IsObject()) return "";
  auto it = object.FindMember(key);
  return it != object.MemberEnd() && it->value.IsString() ? std::string(qmp::jsonStringView(it->value)) : "";
}

}  // namespace

void Supervisor::startIncoming(const std::string& name, IncomingPlan plan, Completion<Done> done) {
  if (active(name)) return done(vmError(VmErrorCode::kWrongState, vmText(name) + " is already running"));
  auto stored = store_.definition(name);
  if (!stored) return done(vmError(VmErrorCode::kInternal, vmText(name) + ": " + stored.error().message()));
  if (!*stored) return done(vmError(VmErrorCode::kNotFound, vmText(name) + " is not defined"));
  auto vm = makeVm(**stored);
  Vm& ref = *vm;
  vms_.emplace(name, std::move(vm));
  ref.record.restart_count = 0;
  ref.incoming = std::move(plan);
  ref.start_waiters.push_back(std::move(done));
  if (auto err = launch(ref)) failStart(ref, err->message);
}

// The worker serves QMP and waits in `inmigrate`: give it its stream.
void Supervisor::loadIncoming(Vm& vm) {
  IncomingPlan& plan = *vm.incoming;
  plan.loading = true;
  if (plan.stream) return feedIncoming(vm, std::move(plan.stream));
  plan.listener->onAccept([this, &vm](UniqueFd stream) { feedIncoming(vm, std::move(stream)); });
  if (plan.on_listening) std::exchange(plan.on_listening, {})(plan.listener->path());
}

void Supervisor::feedIncoming(Vm& vm, UniqueFd stream) {
  auto held = std::make_shared<UniqueFd>(std::move(stream));  // vmmd's copy: closed once passed
  auto args = std::make_shared<qmp::Json>(oneString("fdname", kIncomingFd));
  vm.qmp->executeWithFd("getfd", args.get(), held->get(), [this, &vm, held, args](Result<qmp::CommandResult>&& reply) {
    held->reset();
    if (auto passed = fromWorker(vm.name(), std::move(reply)); !passed) return failStart(vm, "getfd: " + passed.error().message);
    auto uri = std::make_shared<qmp::Json>(oneString("uri", std::string("fd:") + kIncomingFd));
    vm.qmp->execute("migrate-incoming", uri.get(), [this, &vm, uri](Result<qmp::CommandResult>&& r) {
      if (auto started = fromWorker(vm.name(), std::move(r)); !started) return failStart(vm, "migrate-incoming: " + started.error().message);
      pollIncoming(vm);
    });
  });
}

// Until the worker has loaded the state (QEMU leaves `inmigrate` then; a stream that fails makes
// it exit, which fails the start with its last log line).
void Supervisor::pollIncoming(Vm& vm) {
  vm.qmp->execute("query-status", nullptr, [this, &vm](Result<qmp::CommandResult>&& reply) {
    auto status = fromWorker(vm.name(), std::move(reply));
    if (!status) return failStart(vm, "query-status: " + status.error().message);
    std::string now = memberText(*status, "status");
    if (now == "inmigrate") return schedule(vm, kPollMs, [this, &vm] { pollIncoming(vm); });
    bool run = vm.incoming->run;
    vm.incoming.reset();
    if (!run || now == "running") return guestRuns(vm, now == "running" ? VmEvent::kGuestRunning : VmEvent::kGuestFoundPaused, "loaded its state");
    vm.qmp->execute("cont", nullptr, [this, &vm](Result<qmp::CommandResult>&& r) {
      if (auto resumed = fromWorker(vm.name(), std::move(r)); !resumed) return failStart(vm, "cont: " + resumed.error().message);
      guestRuns(vm, VmEvent::kGuestRunning, "loaded its state");
    });
  });
}

void Supervisor::migrateWorker(Vm& vm, UniqueFd stream, bool mapped_ram, Completion<qmp::Json> done) {
  auto held = std::make_shared<UniqueFd>(std::move(stream));
  auto capability = std::make_shared<qmp::Json>(mappedRamCapability(mapped_ram));
  vm.qmp->execute("migrate-set-capabilities", capability.get(), [this, &vm, held, capability, mapped_ram, done](Result<qmp::CommandResult>&& set) {
    // A worker without the capability (QEMU before 9.0) writes the plain stream, which every
    // reader takes: the snapshot still works, its revert copies the RAM.
    if (auto ok = fromWorker(vm.name(), std::move(set)); !ok && mapped_ram) {
      log::info(vmText(vm.name()) + ": the worker has no mapped-ram (" + ok.error().message + "): the state file is a plain stream");
    }
    passAndMigrate(vm, held, done);
  });
}

void Supervisor::passAndMigrate(Vm& vm, std::shared_ptr<UniqueFd> held, Completion<qmp::Json> done) {
  auto args = std::make_shared<qmp::Json>(oneString("fdname", kOutgoingFd));
  vm.qmp->executeWithFd("getfd", args.get(), held->get(), [this, &vm, held, args, done](Result<qmp::CommandResult>&& reply) {
    held->reset();
    if (auto passed = fromWorker(vm.name(), std::move(reply)); !passed) return done(passed.error());
    auto uri = std::make_shared<qmp::Json>(oneString("uri", std::string("fd:") + kOutgoingFd));
    vm.qmp->execute("migrate", uri.get(), [this, &vm, uri, done](Result<qmp::CommandResult>&& r) {
      if (auto started = fromWorker(vm.name(), std::move(r)); !started) {
        // Not consumed: the named descriptor would stay in the worker.
        auto name = std::make_shared<qmp::Json>(oneString("fdname", kOutgoingFd));
        vm.qmp->execute("closefd", name.get(), [name](Result<qmp::CommandResult>&&) {});
        return done(started.error());
      }
      pollOutgoing(vm, std::make_shared<Completion<qmp::Json>>(done));
    });
  });
}

void Supervisor::pollOutgoing(Vm& vm, std::shared_ptr<Completion<qmp::Json>> done) {
  vm.qmp->execute("query-migrate", nullptr, [this, &vm, done](Result<qmp::CommandResult>&& reply) {
    auto info = fromWorker(vm.name(), std::move(reply));
    if (!info) return (*done)(info.error());
    std::string status = memberText(*info, "status");
    if (vm.outgoing) vm.outgoing->last_status = qmp::jsonCopy(*info);
    if (status == "completed") return (*done)(std::move(*info));
    if (status == "failed" || status == "cancelled") {
      std::string why = memberText(*info, "error-desc");
      return (*done)(vmError(VmErrorCode::kWorkerFailed, "migration " + status + (why.empty() ? "" : ": " + why)));
    }
    schedule(vm, kPollMs, [this, &vm, done] { pollOutgoing(vm, done); });
  });
}

}  // namespace vmmd::daemon
