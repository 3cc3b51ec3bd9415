#include "daemon/server/error_mapping.h"

#include "daemon/definition/definition_json.h"

namespace vmmd::daemon {
namespace {

void put(qmp::Json& doc, qmp::JsonValue& obj, const char* key, std::string_view value) {
  obj.AddMember(qmp::JsonValue(key, doc.GetAllocator()), qmp::jsonString(value, doc.GetAllocator()), doc.GetAllocator());
}
template <typename T>
void putNumber(qmp::Json& doc, qmp::JsonValue& obj, const char* key, T value) {
  obj.AddMember(qmp::JsonValue(key, doc.GetAllocator()), qmp::JsonValue(value), doc.GetAllocator());
}
void putIf(qmp::Json& doc, qmp::JsonValue& obj, const char* key, const std::optional<std::string>& value) {
  if (value) put(doc, obj, key, *value);
}
void putIf(qmp::Json& doc, qmp::JsonValue& obj, const char* key, const std::optional<int64_t>& value) {
  if (value) putNumber(doc, obj, key, *value);
}

// The members vm-list rows and vm-info share, in this order.
void describe(qmp::Json& doc, qmp::JsonValue& obj, const VmSummary& vm) {
  put(doc, obj, "name", vm.name);
  put(doc, obj, "state", toString(vm.state));
  putNumber(doc, obj, "vcpus", vm.vcpus);
  putNumber(doc, obj, "memory", vm.memory_mib);
  putNumber(doc, obj, "autostart", vm.autostart);
  putIf(doc, obj, "pid", vm.pid);
  putIf(doc, obj, "uptime", vm.uptime_s);
  qmp::JsonValue nics(rapidjson::kArrayType);
  for (const NicAddress& nic : vm.nics) {
    qmp::JsonValue row(rapidjson::kObjectType);
    put(doc, row, "mac", nic.mac);
    if (!nic.network.empty()) put(doc, row, "network", nic.network);
    if (!nic.ifname.empty()) put(doc, row, "ifname", nic.ifname);
    putIf(doc, row, "tap", nic.tap);
    putIf(doc, row, "ipv4", nic.ipv4);
    putIf(doc, row, "source", nic.source);
    nics.PushBack(row, doc.GetAllocator());
  }
  obj.AddMember("nics", nics, doc.GetAllocator());
}

}  // namespace

qmp::QmpError toQmpError(const VmError& error) {
  switch (error.code) {
    case VmErrorCode::kNotFound: return qmp::QmpError{"DeviceNotFound", error.message};
    // QEMU's class for a device that is there but not usable.
    case VmErrorCode::kAgentNotConnected: return qmp::QmpError{"DeviceNotActive", error.message};
    case VmErrorCode::kWorkerRefused:
      return qmp::QmpError{error.remote_class.empty() ? "GenericError" : error.remote_class, error.message};
    case VmErrorCode::kAlreadyExists:
    case VmErrorCode::kWrongState:
    case VmErrorCode::kInvalidArgument:
    case VmErrorCode::kWorkerFailed:
    case VmErrorCode::kTimedOut:
    case VmErrorCode::kInternal: break;
  }
  return qmp::QmpError::generic(error.message);
}

qmp::Json toJson(const Done&) { return qmp::jsonObject(); }

qmp::Json toJson(const DefinedVm& vm) {
  qmp::Json result = qmp::jsonObject();
  put(result, result, "name", vm.name);
  put(result, result, "uuid", vm.uuid);
  return result;
}

qmp::Json toJson(const std::vector<VmSummary>& rows) {
  qmp::Json result = qmp::jsonArray();
  for (const VmSummary& vm : rows) {
    qmp::JsonValue row(rapidjson::kObjectType);
    describe(result, row, vm);
    result.PushBack(row, result.GetAllocator());
  }
  return result;
}

qmp::Json toJson(const VmDetails& details) {
  qmp::Json result = qmp::jsonObject();
  describe(result, result, details.summary);
  if (details.has_record) {
    putIf(result, result, "console", details.console_socket);
    putIf(result, result, "qmp", details.qmp_socket);
    putIf(result, result, "qga", details.qga_socket);
    if (details.agent) put(result, result, "agent", toString(*details.agent));
    putIf(result, result, "exit-status", details.exit_status);
    putIf(result, result, "exit-signal", details.exit_signal);
    putNumber(result, result, "restart-count", details.restart_count);
  }
  putIf(result, result, "operation", details.operation);
  putNumber(result, result, "snapshots", static_cast<uint64_t>(details.snapshots));
  put(result, result, "boot", describeBoot(details.definition));  // how it boots, for people
  auto def = qmp::parseJson(serializeDefinition(details.definition));
  if (def) result.AddMember("definition", qmp::JsonValue(*def, result.GetAllocator()), result.GetAllocator());
  return result;
}

qmp::Json toJson(const StopOutcome& outcome) {
  qmp::Json result = qmp::jsonObject();
  result.AddMember("forced", outcome.forced, result.GetAllocator());
  return result;
}

qmp::Json toJson(const DomainXml& xml) {
  qmp::Json result = qmp::jsonObject();
  result.AddMember("xml", qmp::jsonString(xml.text, result.GetAllocator()), result.GetAllocator());
  return result;
}

namespace {

void describe(qmp::Json& doc, qmp::JsonValue& obj, const SnapshotRecord& s) {
  put(doc, obj, "tag", s.tag);
  putNumber(doc, obj, "time-us", s.created_us);
  put(doc, obj, "state-file", s.state_file);
  putNumber(doc, obj, "state-bytes", s.state_bytes);
  qmp::JsonValue disks(rapidjson::kArrayType);
  for (const std::string& id : s.disks) disks.PushBack(qmp::jsonString(id, doc.GetAllocator()), doc.GetAllocator());
  obj.AddMember("disks", disks, doc.GetAllocator());
}

}  // namespace

qmp::Json toJson(const SnapshotRecord& snapshot) {
  qmp::Json result = qmp::jsonObject();
  describe(result, result, snapshot);
  return result;
}

qmp::Json toJson(const std::vector<SnapshotRecord>& snapshots) {
  qmp::Json result = qmp::jsonArray();
  for (const SnapshotRecord& s : snapshots) {
    qmp::JsonValue row(rapidjson::kObjectType);
    describe(result, row, s);
    result.PushBack(row, result.GetAllocator());
  }
  return result;
}

qmp::Json toJson(const MigrationOutcome& outcome) {
  qmp::Json result = qmp::jsonObject();
  put(result, result, "destination", outcome.destination);
  qmp::JsonValue status;
  status.CopyFrom(outcome.status, result.GetAllocator());
  result.AddMember("migration", status, result.GetAllocator());
  return result;
}

qmp::Json toJson(const IncomingEndpoint& endpoint) {
  qmp::Json result = qmp::jsonObject();
  put(result, result, "name", endpoint.name);
  put(result, result, "socket", endpoint.socket);
  return result;
}

}  // namespace vmmd::daemon
