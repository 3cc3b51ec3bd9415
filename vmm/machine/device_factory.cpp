#include "vmm/machine/device_factory.h"

#include "vmm/config/keyval.h"
#include "vmm/devices/virtio/rng.h"

namespace vmmd {
namespace {

// QEMU's addr= is "SLOT" or "SLOT.FUNCTION" in hex; only function 0 exists here.
Result<int> parseSlot(const std::string& option, const std::string& text) {
  std::string slot = text.substr(0, text.find('.'));
  if (text.find('.') != std::string::npos && text.substr(text.find('.') + 1) != "0") {
    return Error(option + ": addr=" + text + ": only function 0 is supported");
  }
  char* end = nullptr;
  long value = std::strtol(slot.c_str(), &end, 16);
  if (slot.empty() || *end || value < 1 || value > 31) return Error(option + ": addr=" + text + " is not a PCI slot (1-1f)");
  return static_cast<int>(value);
}

}  // namespace

Result<PlannedDevice> createDevice(const config::DeviceConfig& config, const DeviceContext& context) {
  std::string option = "-device " + config.driver;
  PlannedDevice planned;
  auto properties = config.properties;
  auto take = [&](const char* key) -> std::optional<std::string> {
    auto it = properties.find(key);
    if (it == properties.end()) return std::nullopt;
    std::string value = it->second;
    properties.erase(it);
    return value;
  };
  if (auto id = take("id")) planned.id = *id;
  if (auto addr = take("addr")) {
    auto slot = parseSlot(option, *addr);
    if (!slot) return slot.error();
    planned.slot = *slot;
  }
  if (auto bus = take("bus"); bus && *bus != "pci.0" && *bus != "pcie.0") {
    return Error(option + ": bus '" + *bus + "' does not exist (pci.0)");
  }

  if (config.driver == "virtio-rng-pci") {
    (void)take("rng");  // QEMU's rng backend object; ours always reads /dev/urandom
    auto rng = virtio::VirtioRng::create();
    if (!rng) return rng.error();
    planned.device = std::move(*rng);
  } else if (config.driver == "virtio-blk-pci") {
    auto drive_id = take("drive");
    if (!drive_id) return Error(option + ": drive= is required");
    const config::DriveConfig* drive = context.machine.findDrive(*drive_id);
    if (!drive) return Error(option + ": drive '" + *drive_id + "' not found");
    std::string serial = take("serial").value_or(*drive_id);
    for (const char* accepted : {"num-queues", "queue-size", "bootindex", "config-wce", "scsi", "write-cache"}) (void)take(accepted);
    storage::OpenOptions open;
    auto format = storage::parseFormat(drive->format.empty() ? "auto" : drive->format);
    if (!format) return format.error().withContext(option);
    open.format = *format;
    open.readOnly = drive->read_only;
    open.cache = drive->direct ? storage::CacheMode::None : storage::CacheMode::Writeback;
    auto disk = storage::openImage(drive->path, open);
    if (!disk) return disk.error().withContext("drive " + drive->id);
    std::shared_ptr<storage::BlockDevice> shared = std::move(*disk);
    planned.disk = DiskInfo{drive->id, drive->path, storage::formatName(shared->format()), drive->read_only,
                            drive->direct, drive->no_flush, shared->size()};
    std::string device_id = drive->id;
    auto on_error = context.block_io_error;
    planned.device = std::make_unique<virtio::VirtioBlk>(
        shared, serial, drive->no_flush, context.io_executor,
        [on_error, device_id](const std::string& operation, const std::string& reason) {
          if (on_error) on_error(device_id, operation, reason);
        });
  } else {
    return Error(option + ": device '" + config.driver + "' is not supported");
  }
  if (!properties.empty()) return Error(option + ": invalid parameter '" + properties.begin()->first + "'");
  return planned;
}

}  // namespace vmmd
