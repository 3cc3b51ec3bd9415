#include "vmm/devices/acpi_ged.h"

#include <cstring>

namespace vmmd {
namespace {

// Sleep control register (ACPI 6.4, 4.8.3.7): SLP_TYPx in bits 2-4, SLP_EN in bit 5.
constexpr uint8_t kSleepEnable = 1u << 5;
constexpr int kSleepTypeShift = 2;

}  // namespace

AcpiGed::AcpiGed(InterruptLine line, uint8_t s5_sleep_type, RequestHandler on_request)
    : line_(std::move(line)), s5_sleep_type_(s5_sleep_type), on_request_(std::move(on_request)) {}

void AcpiGed::read(uint64_t offset, std::span<uint8_t> data) {
  auto guard = lock();
  std::memset(data.data(), 0, data.size());
  // The selector is read whole (the DSDT's field is DWordAcc); any read of it takes the events.
  if (offset < kEventSelector + 4) {
    uint8_t bytes[4];
    std::memcpy(bytes, &pending_, 4);
    for (size_t i = 0; i < data.size() && offset + i < 4; ++i) data[i] = bytes[offset + i];
    pending_ = 0;
  }
  // The sleep status register reads 0: no wake event is ever pending. Sleep control and reset
  // are write-only.
}

void AcpiGed::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.size() != 1) return;  // the three registers are bytes; the selector is read-only
  uint8_t value = data[0];
  if (offset == kSleepControl && (value & kSleepEnable) && ((value >> kSleepTypeShift) & 7) == s5_sleep_type_) {
    on_request_(PowerRequest::PowerOff);
  } else if (offset == kReset && value == kResetValue) {
    on_request_(PowerRequest::Reset);
  }
}

void AcpiGed::pressPowerButton() {
  auto guard = lock();
  pending_ |= kPowerDownEvent;
  line_.set(true);
  line_.set(false);
}

void AcpiGed::reset() {
  auto guard = lock();
  pending_ = 0;
}

Result<DeviceState> AcpiGed::saveState() const {
  auto guard = lock();
  StateWriter out;
  out.u32(pending_);
  return DeviceState{name(), kStateVersion, out.take()};
}

Status AcpiGed::loadState(const DeviceState& state) {
  if (auto st = checkState(state, name(), kStateVersion); !st) return st;
  StateReader in(state.bytes);
  uint32_t pending = in.u32();
  if (pending & ~kPowerDownEvent) in.reject("GED events " + std::to_string(pending) + " this machine never raises");
  if (auto st = in.finish(name()); !st) return st;
  auto guard = lock();
  pending_ = pending;
  return {};
}

}  // namespace vmmd
