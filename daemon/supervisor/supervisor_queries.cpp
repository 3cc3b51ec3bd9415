// Definitions and read-only views: vm-define, vm-undefine, vm-list, vm-info, vm-dumpxml.
#include <filesystem>

#include "base/log.h"
#include "daemon/definition/definition_json.h"
#include "daemon/definition/libvirt_xml.h"
#include "daemon/supervisor/agent_channel.h"
#include "daemon/supervisor/supervisor.h"
#include "daemon/supervisor/supervisor_vm.h"

namespace vmmd::daemon {
namespace {

VmError storeFailed(const std::string& name, const Error& error) {
  return vmError(VmErrorCode::kInternal, vmText(name) + ": " + error.message());
}

VmError notDefined(const std::string& name) { return vmError(VmErrorCode::kNotFound, vmText(name) + " is not defined"); }

}  // namespace

VmResult<DefinedVm> Supervisor::define(const std::string& definition, const Owner& owner) {
  auto def = parseDefinition(definition);
  if (!def) return vmError(VmErrorCode::kInvalidArgument, "invalid definition: " + def.error().message());
  return define(*def, owner);
}

VmResult<DefinedVm> Supervisor::define(const VmDefinition& def, const Owner& owner) {
  const std::string& name = def.name;
  if (auto st = checkNetworks(def); !st) return vmError(VmErrorCode::kInvalidArgument, "invalid definition: " + st.error().message());
  if (auto st = store_.define(def, owner); !st) {
    switch (st.error().code()) {
      case kStoreNameTaken: return vmError(VmErrorCode::kAlreadyExists, vmText(name) + " is already defined");
      case kStoreUuidTaken: return vmError(VmErrorCode::kAlreadyExists, vmText(name) + ": " + st.error().message());
      default: return storeFailed(name, st.error());
    }
  }
  log::info(vmText(name) + ": defined (uuid " + def.uuid + ") for " + owner.describe());
  return DefinedVm{name, def.uuid};
}

VmResult<StoredDefinition> Supervisor::stored(const std::string& name) {
  auto stored = store_.definition(name);
  if (!stored) return storeFailed(name, stored.error());
  if (!*stored) return notDefined(name);
  return std::move(**stored);
}

VmResult<Owner> Supervisor::ownerOf(const std::string& name) {
  if (Vm* vm = active(name)) return vm->owner;
  auto found = stored(name);
  if (!found) return found.error();
  return found->owner;
}

VmResult<DomainXml> Supervisor::domainXml(const std::string& name) {
  auto stored = store_.definition(name);
  if (!stored) return storeFailed(name, stored.error());
  if (!*stored) return notDefined(name);
  const VmDefinition& def = (*stored)->definition;
  std::error_code ec;
  ExportContext context{std::filesystem::weakly_canonical(config_.vmm_path, ec).string(), std::nullopt};
  if (ec) context.emulator = std::filesystem::absolute(config_.vmm_path).string();
  if (def.agent) {
    if (auto paths = workerPathsFor(config_.run_dir, name)) context.agent_socket = paths->qga_socket;
  }
  auto xml = domainXmlFromDefinition(def, context);
  if (!xml) return vmError(VmErrorCode::kInvalidArgument, vmText(name) + ": cannot be written as libvirt XML: " + xml.error().message());
  return DomainXml{std::move(*xml)};
}

VmResult<Done> Supervisor::undefine(const std::string& name) {
  if (active(name)) return vmError(VmErrorCode::kWrongState, vmText(name) + " is active; destroy or shut it down first");
  auto stored = store_.definition(name);
  if (!stored) return storeFailed(name, stored.error());
  if (!*stored) return notDefined(name);
  if (auto st = store_.undefine(name); !st) {
    return st.error().code() == kStoreNotDefined ? notDefined(name) : storeFailed(name, st.error());
  }
  if (!config_.snapshot_dir.empty()) {
    // The snapshots' state files went out of the store with the definition.
    std::error_code ec;
    std::filesystem::remove_all(config_.snapshot_dir + "/" + name, ec);
    if (ec) log::warning(vmText(name) + ": remove its snapshot state files: " + ec.message());
  }
  if (auto paths = workerPathsFor(config_.run_dir, name)) {
    std::error_code ignored;
    std::filesystem::remove_all(paths->dir, ignored);
  }
  if (config_.networks) config_.networks->releaseVm(name);  // its static DHCP leases
  log::info(vmText(name) + ": undefined");
  return Done{};
}

namespace {

// The common part of vm-list rows and vm-info.
VmSummary summarize(const StoredDefinition& stored, const RuntimeRecord* record) {
  const VmDefinition& def = stored.definition;
  VmSummary summary;
  summary.name = def.name;
  summary.owner = stored.owner;
  summary.state = record ? record->state : VmState::kShutoff;
  summary.vcpus = def.vcpus;
  summary.memory_mib = def.memory_mib;
  summary.autostart = def.autostart;
  VmState state = summary.state;
  bool live = state == VmState::kRunning || state == VmState::kPaused || state == VmState::kShuttingDown ||
              state == VmState::kStarting;
  if (record && live && record->pid) summary.pid = *record->pid;
  if (record && live && record->started_us) summary.uptime_s = (unixTimeUs() - *record->started_us) / 1000000;
  return summary;
}

}  // namespace

VmResult<std::vector<VmSummary>> Supervisor::list() {
  auto defs = store_.definitions();
  if (!defs) return vmError(VmErrorCode::kInternal, "cannot read definitions: " + defs.error().message());
  auto runtimes = store_.runtimes();
  if (!runtimes) return vmError(VmErrorCode::kInternal, "cannot read runtime records: " + runtimes.error().message());
  std::map<std::string, const RuntimeRecord*, std::less<>> byName;
  for (const RuntimeRecord& r : *runtimes) byName.emplace(r.name, &r);
  std::vector<VmSummary> rows;
  for (const StoredDefinition& stored : *defs) {
    auto it = byName.find(stored.definition.name);
    const RuntimeRecord* record = nullptr;
    Vm* vm = active(stored.definition.name);
    if (vm) record = &vm->record;
    else if (it != byName.end()) record = it->second;
    rows.push_back(summarize(stored, record));
    rows.back().nics = nicAddresses(stored.definition, vm);
  }
  return rows;
}

VmResult<VmDetails> Supervisor::info(const std::string& name) {
  auto stored = store_.definition(name);
  if (!stored) return storeFailed(name, stored.error());
  if (!*stored) return notDefined(name);
  std::optional<RuntimeRecord> saved;
  const RuntimeRecord* record = nullptr;
  std::optional<AgentChannel::State> agent;
  Vm* vm = active(name);
  if (vm) {
    record = &vm->record;
    if (vm->def.agent && vm->process) {
      // Before any port event or command: a worker we started has a closed port until qemu-ga
      // opens it; one re-attached after a vmmd restart could be either.
      agent = vm->agent ? vm->agent->state()
                        : (vm->origin == WorkerOrigin::kAdopted ? AgentChannel::State::kUnknown
                                                                : AgentChannel::State::kDisconnected);
    }
  } else if (auto r = store_.runtime(name); r && *r) {
    saved = **r;
    record = &*saved;
  }
  VmDetails details;
  details.summary = summarize(**stored, record);
  details.summary.nics = nicAddresses((*stored)->definition, vm);
  details.definition = (*stored)->definition;
  if (record) {
    details.has_record = true;
    if (record->pid) {  // a worker runs
      details.console_socket = record->console_socket;
      details.qmp_socket = record->qmp_socket;
      details.qga_socket = record->qga_socket;
      details.agent = agent;
    }
    details.exit_status = record->exit_status;
    details.exit_signal = record->exit_signal;
    details.restart_count = record->restart_count;
  }
  if (Vm* vm = active(name); vm && !vm->operation.empty()) details.operation = vm->operation;
  if (auto snapshots = store_.snapshots(name)) details.snapshots = snapshots->size();
  return details;
}

}  // namespace vmmd::daemon
