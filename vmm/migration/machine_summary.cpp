#include "vmm/migration/machine_summary.h"

#include "vmm/devices/device_state.h"

namespace vmmd::migration {
namespace {

constexpr uint32_t kMaxDevices = 4096;  // far above any real machine; bounds a hostile count

// pc and q35 (and their versioned names) are one machine model in vmm.
std::string machineModel(const std::string& type) { return type == "microvm" ? "microvm" : "pc"; }

std::string describe(size_t index, const MachineSummary::Device& device) {
  std::string text = "device #" + std::to_string(index) + " " + device.driver;
  if (!device.id.empty()) text += " (id " + device.id + ")";
  return text;
}

}  // namespace

MachineSummary MachineSummary::of(const config::MachineConfig& config) {
  MachineSummary summary;
  summary.machine_type = machineModel(config.machine_type);
  summary.ram_bytes = config.memory_bytes;
  summary.vcpus = config.vcpus;
  for (const auto& device : config.devices) {
    auto id = device.properties.find("id");
    summary.devices.push_back({device.driver, id == device.properties.end() ? "" : id->second});
  }
  return summary;
}

std::vector<uint8_t> MachineSummary::encode() const {
  StateWriter out;
  out.string(machine_type);
  out.u64(ram_bytes);
  out.u32(vcpus);
  out.u32(static_cast<uint32_t>(devices.size()));
  for (const auto& device : devices) {
    out.string(device.driver);
    out.string(device.id);
  }
  return out.take();
}

Result<MachineSummary> MachineSummary::decode(std::span<const uint8_t> payload) {
  StateReader in(payload);
  MachineSummary summary;
  summary.machine_type = in.string();
  summary.ram_bytes = in.u64();
  summary.vcpus = in.u32();
  uint32_t count = in.u32();
  if (count > kMaxDevices) in.reject(std::to_string(count) + " devices");
  for (uint32_t i = 0; i < count && count <= kMaxDevices; ++i) {
    Device device;
    device.driver = in.string();
    device.id = in.string();
    summary.devices.push_back(std::move(device));
  }
  if (auto st = in.finish("machine summary"); !st) return st.error();
  return summary;
}

Status checkCompatible(const MachineSummary& source, const MachineSummary& destination) {
  if (source.machine_type != destination.machine_type) {
    return Error("the source is a '" + source.machine_type + "' machine, the destination a '" + destination.machine_type + "' one");
  }
  if (source.ram_bytes != destination.ram_bytes) {
    return Error("RAM size differs: the source has " + std::to_string(source.ram_bytes >> 20) + " MiB, the destination " +
                 std::to_string(destination.ram_bytes >> 20) + " MiB");
  }
  if (source.vcpus != destination.vcpus) {
    return Error("vCPU count differs: the source has " + std::to_string(source.vcpus) + ", the destination " +
                 std::to_string(destination.vcpus));
  }
  size_t common = std::min(source.devices.size(), destination.devices.size());
  for (size_t i = 0; i < common; ++i) {
    if (!(source.devices[i] == destination.devices[i])) {
      return Error(describe(i, source.devices[i]) + " on the source is " + describe(i, destination.devices[i]) +
                   " on the destination");
    }
  }
  if (source.devices.size() > common) return Error(describe(common, source.devices[common]) + ": the destination has none");
  if (destination.devices.size() > common) {
    return Error(describe(common, destination.devices[common]) + ": the source has none");
  }
  return {};
}

}  // namespace vmmd::migration
