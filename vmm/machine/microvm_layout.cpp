#include "vmm/machine/microvm_layout.h"

#include <cstdio>
#include <optional>

#include "base/parse.h"
#include "vmm/devices/virtio/virtio_mmio.h"
#include "vmm/machine/device_factory.h"

namespace vmmd::microvm {

Transport transport(uint32_t index, bool acpi) {
  return {index, kVirtioMmioBase + index * virtio::VirtioMmio::kWindowSize, (acpi ? kGsiBaseAcpi : kGsiBaseNoAcpi) + index};
}

Result<std::vector<Transport>> placeDevices(const config::MachineConfig& config) {
  std::vector<const config::DeviceConfig*> devices;
  for (const auto& device : config.devices) {
    if (!isSerialPort(device)) devices.push_back(&device);
  }
  std::vector<int> chosen(devices.size(), -1);
  std::vector<bool> taken(kTransportCount, false);
  constexpr std::string_view kBusPrefix = "virtio-mmio-bus.";
  // Explicit buses first, so a device without bus= never takes one named later.
  for (size_t i = 0; i < devices.size(); ++i) {
    auto bus = devices[i]->properties.find("bus");
    if (bus == devices[i]->properties.end()) continue;
    std::string option = "-device " + devices[i]->driver;
    std::optional<uint64_t> n;
    if (bus->second.rfind(kBusPrefix, 0) == 0) {
      if (auto parsed = parseUnsigned(bus->second.substr(kBusPrefix.size()))) n = *parsed;
    }
    if (!n || *n >= kTransportCount) {
      return Error(option + ": bus '" + bus->second + "' does not exist (virtio-mmio-bus.0 to virtio-mmio-bus." +
                   std::to_string(kTransportCount - 1) + ")");
    }
    if (taken[*n]) return Error(option + ": bus '" + bus->second + "' already has a device");
    taken[*n] = true;
    chosen[i] = static_cast<int>(*n);
  }
  uint32_t next = 0;
  for (size_t i = 0; i < devices.size(); ++i) {
    if (chosen[i] >= 0) continue;
    while (next < kTransportCount && taken[next]) ++next;
    if (next == kTransportCount) {
      return Error("-device " + devices[i]->driver + ": microvm has " + std::to_string(kTransportCount) +
                   " virtio-mmio transports, all in use");
    }
    taken[next] = true;
    chosen[i] = static_cast<int>(next);
  }
  std::vector<Transport> placed;
  for (int index : chosen) placed.push_back(transport(static_cast<uint32_t>(index), config.microvm.acpi));
  return placed;
}

std::string kernelCommandLine(const std::vector<Transport>& transports) {
  std::string text;
  for (const auto& t : transports) {
    char item[64];
    std::snprintf(item, sizeof item, " virtio_mmio.device=%u@0x%llx:%u", static_cast<unsigned>(virtio::VirtioMmio::kWindowSize),
                  static_cast<unsigned long long>(t.base), t.gsi);
    text += item;
  }
  return text;
}

}  // namespace vmmd::microvm
