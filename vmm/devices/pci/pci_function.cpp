#include "vmm/devices/pci/pci_function.h"

#include <cstring>

namespace vmmd {
namespace {

constexpr uint16_t kVendorId = 0x00, kDeviceId = 0x02, kCommand = 0x04, kStatus = 0x06, kRevision = 0x08,
                   kClassCode = 0x09, kHeaderType = 0x0E, kBar0 = 0x10, kSubsystemVendor = 0x2C, kSubsystem = 0x2E,
                   kCapabilityPointer = 0x34, kInterruptLine = 0x3C, kInterruptPin = 0x3D;
constexpr uint16_t kCommandMemory = 1u << 1, kCommandBusMaster = 1u << 2, kCommandIntxDisable = 1u << 10;
constexpr uint16_t kStatusCapabilities = 1u << 4;

void put16(uint8_t* at, uint16_t v) { std::memcpy(at, &v, 2); }
void put32(uint8_t* at, uint32_t v) { std::memcpy(at, &v, 4); }

}  // namespace

PciFunction::PciFunction(const Identity& identity) {
  put16(&config_[kVendorId], identity.vendor);
  put16(&config_[kDeviceId], identity.device);
  config_[kRevision] = identity.revision;
  config_[kClassCode] = static_cast<uint8_t>(identity.class_code);
  config_[kClassCode + 1] = static_cast<uint8_t>(identity.class_code >> 8);
  config_[kClassCode + 2] = static_cast<uint8_t>(identity.class_code >> 16);
  config_[kHeaderType] = 0;
  put16(&config_[kSubsystemVendor], identity.subsystem_vendor);
  put16(&config_[kSubsystem], identity.subsystem);
  config_[kInterruptPin] = 1;  // INTA#
  uint16_t command_mask = kCommandMemory | kCommandBusMaster | kCommandIntxDisable;
  put16(&writable_[kCommand], command_mask);
  writable_[kInterruptLine] = 0xFF;
}

void PciFunction::addMemoryBar(int index, uint64_t address, uint32_t size) {
  bars_[index] = {address, size};
  put32(&config_[kBar0 + 4 * index], static_cast<uint32_t>(address));  // 32-bit, non-prefetchable
  put32(&writable_[kBar0 + 4 * index], ~(size - 1));
}

uint8_t PciFunction::addCapability(uint8_t id, std::span<const uint8_t> body) {
  uint8_t offset = next_capability_offset_;
  config_[offset] = id;
  config_[offset + 1] = 0;
  std::memcpy(&config_[offset + 2], body.data(), body.size());
  if (last_capability_) {
    config_[last_capability_ + 1] = offset;
  } else {
    config_[kCapabilityPointer] = offset;
    put16(&config_[kStatus], kStatusCapabilities);
  }
  last_capability_ = offset;
  next_capability_offset_ = static_cast<uint8_t>((offset + 2 + body.size() + 3) & ~3u);
  return offset;
}

uint32_t PciFunction::configRead(uint16_t offset, unsigned size) {
  std::lock_guard lock(mutex_);
  if (offset + size > config_.size()) return 0xFFFFFFFF;
  uint32_t value = 0;
  std::memcpy(&value, &config_[offset], size);
  return value;
}

void PciFunction::configWrite(uint16_t offset, unsigned size, uint32_t value) {
  bool bars_changed = false;
  {
    std::lock_guard lock(mutex_);
    if (offset + size > config_.size()) return;
    uint16_t old_command;
    std::memcpy(&old_command, &config_[kCommand], 2);
    std::array<uint32_t, kMaxBars> old_bars{};
    for (int i = 0; i < kMaxBars; ++i) std::memcpy(&old_bars[static_cast<size_t>(i)], &config_[kBar0 + 4 * i], 4);
    for (unsigned i = 0; i < size; ++i) {
      uint8_t byte = static_cast<uint8_t>(value >> (8 * i));
      uint8_t mask = writable_[offset + i];
      config_[offset + i] = static_cast<uint8_t>((config_[offset + i] & ~mask) | (byte & mask));
    }
    uint16_t command;
    std::memcpy(&command, &config_[kCommand], 2);
    bars_changed = (command ^ old_command) & kCommandMemory;
    for (int i = 0; i < kMaxBars; ++i) {
      if (!bars_[static_cast<size_t>(i)].size) continue;
      uint32_t now;
      std::memcpy(&now, &config_[kBar0 + 4 * i], 4);
      // Size probing writes all-ones and reads back the size mask; only a real address moves it.
      if (now != old_bars[static_cast<size_t>(i)] && now != ~(bars_[static_cast<size_t>(i)].size - 1)) {
        bars_[static_cast<size_t>(i)].address = now & ~0xFu;
        bars_changed = true;
      }
    }
  }
  configWritten(offset, size);
  if (bars_changed) barsChanged();
}

void PciFunction::saveConfig(StateWriter& out) const {
  std::lock_guard lock(mutex_);
  out.bytes(config_);
  for (const auto& bar : bars_) out.u64(bar.address);
}

Status PciFunction::loadConfig(StateReader& in) {
  auto config = in.bytes();
  std::array<uint64_t, kMaxBars> addresses{};
  for (auto& address : addresses) address = in.u64();
  if (!in.failed() && config.size() != config_.size()) in.reject("a configuration space of " + std::to_string(config.size()) + " bytes");
  if (in.failed()) return in.finish("PCI configuration");
  {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < config_.size(); ++i) {
      if ((config[i] ^ config_[i]) & ~writable_[i]) {
        return Error("PCI configuration byte " + std::to_string(i) + " is " + std::to_string(config[i]) + ", read-only " +
                     std::to_string(config_[i]) + " here: the state is for another device");
      }
    }
    for (size_t i = 0; i < bars_.size(); ++i) {
      // A BAR decodes where its register says (a probe in progress aside): the address must agree.
      if (addresses[i] & 0xFFFu || addresses[i] > 0xFFFFFFFFu) return Error("PCI BAR " + std::to_string(i) + " at " + std::to_string(addresses[i]));
      if (!bars_[i].size && addresses[i]) return Error("PCI BAR " + std::to_string(i) + " is not implemented here");
    }
    std::copy(config.begin(), config.end(), config_.begin());
    for (size_t i = 0; i < bars_.size(); ++i) bars_[i].address = addresses[i];
  }
  barsChanged();
  return {};
}

uint64_t PciFunction::barAddress(int index) const {
  std::lock_guard lock(mutex_);
  uint16_t command;
  std::memcpy(&command, &config_[kCommand], 2);
  if (!(command & kCommandMemory) || !bars_[static_cast<size_t>(index)].size) return 0;
  uint32_t now;
  std::memcpy(&now, &config_[kBar0 + 4 * index], 4);
  if (now == ~(bars_[static_cast<size_t>(index)].size - 1)) return 0;  // mid-probe
  return bars_[static_cast<size_t>(index)].address;
}

bool PciFunction::busMaster() const {
  std::lock_guard lock(mutex_);
  uint16_t command;
  std::memcpy(&command, &config_[kCommand], 2);
  return command & kCommandBusMaster;
}

}  // namespace vmmd
