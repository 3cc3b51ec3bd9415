#include "vmm/monitor/block_snapshot.h"

#include <optional>
#include <string>

#include "storage/qcow2.h"
#include "vmm/monitor/monitored_vm.h"

namespace vmmd {
namespace {

using qmp::ArgType;
using qmp::CommandResult;
using qmp::Json;
using qmp::JsonValue;
using qmp::QmpError;

// The drive named `device`, or QEMU's error for a name that is neither a device nor a node.
const DiskInfo* findDisk(MonitoredVm& vm, const std::string& device) {
  for (const auto& disk : vm.machine().disks()) {
    if (disk.device == device) return &disk;
  }
  return nullptr;
}

QmpError notFound(const std::string& device) {
  return QmpError::generic("Cannot find device='" + device + "' nor node-name='" + device + "'");
}

// A disk that a migration handed over (the guest is in postmigrate, e.g. after a save to a file)
// is taken back first, as QEMU activates an inactive node; refused while a destination has it.
std::optional<QmpError> takeBackIfReleased(const DiskInfo& disk) {
  if (!disk.image->released()) return std::nullopt;
  if (auto taken = disk.image->acquire(); !taken) {
    return QmpError::generic("Could not reactivate device '" + disk.device + "': " + taken.error().message());
  }
  return std::nullopt;
}

std::string optionalString(const JsonValue& args, const char* key) {
  return args.HasMember(key) ? std::string(qmp::jsonStringView(args[key])) : std::string();
}

}  // namespace

void registerBlockSnapshotCommands(qmp::CommandRegistry& registry, MonitoredVm& vm,
                                   std::chrono::steady_clock::time_point started) {
  registry.addObject("SnapshotInfo", {{"id", "str"}, {"name", "str"}, {"vm-state-size", "int"}, {"date-sec", "int"},
                                      {"date-nsec", "int"}, {"vm-clock-sec", "int"}, {"vm-clock-nsec", "int"},
                                      {"icount", "int", true}});
  registry.addSync({"blockdev-snapshot-internal-sync", {{"device", ArgType::Str}, {"name", ArgType::Str}}},
                   [&vm, started](const JsonValue& args, qmp::Session&) -> CommandResult {
                     const std::string device(qmp::jsonStringView(args["device"]));
                     const std::string name(qmp::jsonStringView(args["name"]));
                     const DiskInfo* disk = findDisk(vm, device);
                     if (!disk) return notFound(device);
                     if (disk->read_only) return QmpError::generic("Device '" + device + "' is read only");
                     auto* image = dynamic_cast<storage::Qcow2Device*>(disk->image.get());
                     if (!image) {
                       return QmpError::generic("Block format '" + disk->format + "' used by device '" + device +
                                                "' does not support internal snapshots");
                     }
                     if (name.empty()) return QmpError::generic("Name is empty");
                     if (auto refused = takeBackIfReleased(*disk)) return *refused;
                     if (storage::findSnapshot(image->snapshots(), "", name) >= 0) {
                       return QmpError::generic("Snapshot with name '" + name + "' already exists on device '" + device + "'");
                     }
                     storage::SnapshotRequest request;
                     request.name = name;
                     request.vmClockNsec = static_cast<uint64_t>(
                         std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count());
                     auto made = image->createSnapshot(request);
                     if (!made) {
                       return QmpError::generic("Failed to create snapshot '" + name + "' on device '" + device +
                                                "': " + made.error().message());
                     }
                     return qmp::jsonObject();
                   });
  registry.addSync({"blockdev-snapshot-delete-internal-sync",
                    {{"device", ArgType::Str}, {"id", ArgType::Str, true}, {"name", ArgType::Str, true}},
                    "SnapshotInfo"},
                   [&vm](const JsonValue& args, qmp::Session&) -> CommandResult {
                     const std::string device(qmp::jsonStringView(args["device"]));
                     const DiskInfo* disk = findDisk(vm, device);
                     if (!disk) return notFound(device);
                     const bool hasId = args.HasMember("id"), hasName = args.HasMember("name");
                     const std::string id = optionalString(args, "id"), name = optionalString(args, "name");
                     if (!hasId && !hasName) return QmpError::generic("Name or id must be provided");
                     auto* image = dynamic_cast<storage::Qcow2Device*>(disk->image.get());
                     if (!image) return QmpError::generic("Failed to get a snapshot list: Operation not supported");
                     if (disk->read_only) return QmpError::generic("Device '" + device + "' is read only");
                     if (auto refused = takeBackIfReleased(*disk)) return *refused;
                     // QEMU matches an empty string given as id or name literally.
                     int index = -1;
                     const auto list = image->snapshots();
                     for (size_t i = 0; i < list.size() && index < 0; ++i) {
                       if ((!hasId || list[i].id == id) && (!hasName || list[i].name == name)) index = static_cast<int>(i);
                     }
                     if (index < 0) {
                       return QmpError::generic("Snapshot with id '" + (hasId ? id : std::string("null")) + "' and name '" +
                                                (hasName ? name : std::string("null")) + "' does not exist on device '" +
                                                device + "'");
                     }
                     auto gone = image->deleteSnapshot(list[index].id, "");
                     if (!gone) {
                       return QmpError::generic("Failed to delete snapshot with id '" + list[index].id + "' and name '" +
                                                list[index].name + "' on device '" + device + "': " + gone.error().message());
                     }
                     Json info = qmp::jsonObject();
                     auto& alloc = info.GetAllocator();
                     info.AddMember("id", qmp::jsonString(gone->id, alloc), alloc);
                     info.AddMember("name", qmp::jsonString(gone->name, alloc), alloc);
                     info.AddMember("vm-state-size", gone->vmStateSize, alloc);
                     info.AddMember("date-sec", static_cast<uint64_t>(gone->dateSec), alloc);
                     info.AddMember("date-nsec", static_cast<uint64_t>(gone->dateNsec), alloc);
                     info.AddMember("vm-clock-sec", gone->vmClockNsec / 1000000000, alloc);
                     info.AddMember("vm-clock-nsec", gone->vmClockNsec % 1000000000, alloc);
                     if (gone->icount != -1) info.AddMember("icount", gone->icount, alloc);
                     return info;
                   });
}

}  // namespace vmmd
