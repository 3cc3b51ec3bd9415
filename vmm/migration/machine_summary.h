// What a destination must match for a stream to load: the machine type, RAM size, vCPU count and
// the devices in order (driver and id). Built from each side's configuration; a difference is an
// error naming what differs ("device #2 virtio-rng-pci (id rng0): the destination has none").
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/config/machine_config.h"

namespace vmmd::migration {

struct MachineSummary {
  struct Device {
    std::string driver;
    std::string id;  // the -device id=, or "" when it has none
    bool operator==(const Device&) const = default;
  };
  std::string machine_type;
  uint64_t ram_bytes = 0;
  uint32_t vcpus = 0;
  std::vector<Device> devices;

  static MachineSummary of(const config::MachineConfig& config);
  std::vector<uint8_t> encode() const;
  static Result<MachineSummary> decode(std::span<const uint8_t> payload);
};

// Ok when `destination` can take the state of `source`; else why not, naming the device.
Status checkCompatible(const MachineSummary& source, const MachineSummary& destination);

}  // namespace vmmd::migration
