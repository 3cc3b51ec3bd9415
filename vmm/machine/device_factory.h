// Turns "-device DRIVER,prop=value..." into device models. Every property is checked: unknown
// drivers and properties are errors naming them.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "base/result.h"
#include "vmm/config/machine_config.h"
#include "vmm/devices/virtio/blk.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace vmmd {

// A disk as QMP's query-block describes it.
struct DiskInfo {
  std::string device;  // the drive id / node name
  std::string path;
  std::string format;
  bool read_only;
  bool direct;
  bool no_flush;
  uint64_t size;
};

struct PlannedDevice {
  std::unique_ptr<virtio::VirtioDevice> device;
  int slot = -1;  // addr=, or -1 for the next free slot
  std::string id;
  std::optional<DiskInfo> disk;
};

// What devices need from the machine around them.
struct DeviceContext {
  const config::MachineConfig& machine;
  virtio::VirtioBlk::Executor io_executor;
  // device id, operation, reason: a host-side I/O error reached the guest.
  std::function<void(const std::string&, const std::string&, const std::string&)> block_io_error;
};

Result<PlannedDevice> createDevice(const config::DeviceConfig& config, const DeviceContext& context);

}  // namespace vmmd
