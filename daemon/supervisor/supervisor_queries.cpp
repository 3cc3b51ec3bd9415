// Definitions and read-only views: vm-define, vm-undefine, vm-list, vm-info.
#include <filesystem>

#include "daemon/definition/definition_json.h"
#include "daemon/supervisor/agent_channel.h"
#include "daemon/supervisor/log.h"
#include "daemon/supervisor/supervisor.h"
#include "daemon/supervisor/supervisor_vm.h"

namespace vmmd::daemon {
namespace {

void put(qmp::Json& doc, qmp::JsonValue& obj, const char* key, std::string_view value) {
  obj.AddMember(qmp::JsonValue(key, doc.GetAllocator()), qmp::jsonString(value, doc.GetAllocator()), doc.GetAllocator());
}
template <typename T>
void putNumber(qmp::Json& doc, qmp::JsonValue& obj, const char* key, T value) {
  obj.AddMember(qmp::JsonValue(key, doc.GetAllocator()), qmp::JsonValue(value), doc.GetAllocator());
}

}  // namespace

qmp::CommandResult Supervisor::define(const qmp::JsonValue& definition) {
  auto def = parseDefinition(qmp::toJson(definition));
  if (!def) return qmp::QmpError::generic("invalid definition: " + def.error().message());
  const std::string& name = def->name;
  if (auto st = checkDefinitionFiles(*def); !st) return qmp::QmpError::generic(vmText(name) + ": " + st.error().message());
  if (auto st = store_.define(*def); !st) {
    // The store's wording ("vm 'x' is already defined"), capitalised as vmmd's other messages.
    std::string message = st.error().message();
    if (message.rfind("vm '", 0) == 0) return qmp::QmpError::generic("VM" + message.substr(2));
    return qmp::QmpError::generic(vmText(name) + ": " + message);
  }
  logLine(vmText(name) + ": defined (uuid " + def->uuid + ")");
  qmp::Json result = qmp::jsonObject();
  put(result, result, "name", name);
  put(result, result, "uuid", def->uuid);
  return result;
}

qmp::CommandResult Supervisor::undefine(const std::string& name) {
  if (active(name)) return qmp::QmpError::generic(vmText(name) + " is active; destroy or shut it down first");
  auto stored = store_.definition(name);
  if (!stored) return qmp::QmpError::generic(vmText(name) + ": " + stored.error().message());
  if (!*stored) return qmp::QmpError{"DeviceNotFound", vmText(name) + " is not defined"};
  if (auto st = store_.undefine(name); !st) return qmp::QmpError::generic(vmText(name) + ": " + st.error().message());
  if (auto paths = workerPathsFor(config_.run_dir, name)) {
    std::error_code ignored;
    std::filesystem::remove_all(paths->dir, ignored);
  }
  logLine(vmText(name) + ": undefined");
  return qmp::jsonObject();
}

namespace {

// The common part of vm-list rows and vm-info.
void describe(qmp::Json& doc, qmp::JsonValue& obj, const VmDefinition& def, const RuntimeRecord* record) {
  VmState state = record ? record->state : VmState::kShutoff;
  put(doc, obj, "name", def.name);
  put(doc, obj, "state", toString(state));
  putNumber(doc, obj, "vcpus", def.vcpus);
  putNumber(doc, obj, "memory", def.memory_mib);
  putNumber(doc, obj, "autostart", def.autostart);
  bool live = state == VmState::kRunning || state == VmState::kPaused || state == VmState::kShuttingDown ||
              state == VmState::kStarting;
  if (record && live && record->pid) putNumber(doc, obj, "pid", *record->pid);
  if (record && live && record->started_us) {
    putNumber(doc, obj, "uptime", (unixTimeUs() - *record->started_us) / 1000000);
  }
}

}  // namespace

qmp::CommandResult Supervisor::list() {
  auto defs = store_.definitions();
  if (!defs) return qmp::QmpError::generic("cannot read definitions: " + defs.error().message());
  auto runtimes = store_.runtimes();
  if (!runtimes) return qmp::QmpError::generic("cannot read runtime records: " + runtimes.error().message());
  std::map<std::string, const RuntimeRecord*, std::less<>> byName;
  for (const RuntimeRecord& r : *runtimes) byName.emplace(r.name, &r);
  qmp::Json result = qmp::jsonArray();
  for (const StoredDefinition& stored : *defs) {
    qmp::JsonValue row(rapidjson::kObjectType);
    auto it = byName.find(stored.definition.name);
    const RuntimeRecord* record = nullptr;
    if (Vm* vm = active(stored.definition.name)) record = &vm->record;
    else if (it != byName.end()) record = it->second;
    describe(result, row, stored.definition, record);
    result.PushBack(row, result.GetAllocator());
  }
  return result;
}

qmp::CommandResult Supervisor::info(const std::string& name) {
  auto stored = store_.definition(name);
  if (!stored) return qmp::QmpError::generic(vmText(name) + ": " + stored.error().message());
  if (!*stored) return qmp::QmpError{"DeviceNotFound", vmText(name) + " is not defined"};
  std::optional<RuntimeRecord> saved;
  const RuntimeRecord* record = nullptr;
  std::optional<AgentChannel::State> agent;
  if (Vm* vm = active(name)) {
    record = &vm->record;
    if (vm->def.agent && vm->process) {
      // Before any port event or command: a worker we started has a closed port until qemu-ga
      // opens it; one re-attached after a vmmd restart could be either.
      agent = vm->agent ? vm->agent->state()
                        : (vm->reattached ? AgentChannel::State::kUnknown : AgentChannel::State::kDisconnected);
    }
  } else if (auto r = store_.runtime(name); r && *r) {
    saved = **r;
    record = &*saved;
  }
  qmp::Json result = qmp::jsonObject();
  describe(result, result, (*stored)->definition, record);
  if (record) {
    bool live = record->pid.has_value();
    if (live && record->console_socket) put(result, result, "console", *record->console_socket);
    if (live && record->qmp_socket) put(result, result, "qmp", *record->qmp_socket);
    if (live && record->qga_socket) put(result, result, "qga", *record->qga_socket);
    if (live && agent) put(result, result, "agent", toString(*agent));
    if (record->exit_status) putNumber(result, result, "exit-status", *record->exit_status);
    if (record->exit_signal) putNumber(result, result, "exit-signal", *record->exit_signal);
    putNumber(result, result, "restart-count", record->restart_count);
  }
  auto def = qmp::parseJson(serializeDefinition((*stored)->definition));
  if (def) result.AddMember("definition", qmp::JsonValue(*def, result.GetAllocator()), result.GetAllocator());
  return result;
}

}  // namespace vmmd::daemon
