// Turns "-device DRIVER,prop=value..." into device models. Every property is checked: unknown
// drivers and properties are errors naming them.
#pragma once

#include <memory>

#include "base/result.h"
#include "vmm/config/machine_config.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace vmmd {

struct PlannedDevice {
  std::unique_ptr<virtio::VirtioDevice> device;
  int slot = -1;  // addr=, or -1 for the next free slot
  std::string id;
};

Result<PlannedDevice> createDevice(const config::DeviceConfig& config);

}  // namespace vmmd
