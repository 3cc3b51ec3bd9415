#include "vmm/devices/acpi_pm.h"

#include <cstring>

namespace vmmd {
namespace {

constexpr uint16_t kPwrBtnStatus = 1u << 8;   // PM1 status/enable: power button
constexpr uint16_t kTmrStatus = 1u << 0;
constexpr uint16_t kWakeStatus = 1u << 15;
constexpr uint16_t kSciEnable = 1u << 0;      // PM1 control
constexpr uint16_t kSleepEnable = 1u << 13;
constexpr int kSleepTypeShift = 10;
constexpr uint64_t kPmTimerHz = 3579545;
constexpr uint64_t kStatusOffset = 0, kEnableOffset = 2, kControlOffset = 4, kTimerOffset = 8;

}  // namespace

AcpiPm::AcpiPm(InterruptLine sci, uint8_t s5_sleep_type, RequestHandler on_request)
    : sci_(std::move(sci)), s5_sleep_type_(s5_sleep_type), on_request_(std::move(on_request)) {}

uint32_t AcpiPm::timerTicks() const {
  auto elapsed = std::chrono::steady_clock::now() - start_;
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
  return static_cast<uint32_t>((static_cast<unsigned __int128>(ns) * kPmTimerHz / 1000000000u) & 0xFFFFFF);
}

uint16_t AcpiPm::readWord(uint64_t offset) {
  switch (offset) {
    case kStatusOffset: return status_;
    case kEnableOffset: return enable_;
    case kControlOffset: return control_;  // SLP_EN is write-only and reads as 0
    default: return 0xFFFF;
  }
}

void AcpiPm::read(uint64_t offset, std::span<uint8_t> data) {
  auto guard = lock();
  if (offset >= kTimerOffset) {
    uint32_t ticks = timerTicks();
    uint8_t bytes[4];
    std::memcpy(bytes, &ticks, 4);
    for (size_t i = 0; i < data.size(); ++i) data[i] = offset - kTimerOffset + i < 4 ? bytes[offset - kTimerOffset + i] : 0xFF;
    return;
  }
  // Byte and word accesses into the 16-bit registers.
  for (size_t i = 0; i < data.size(); ++i) {
    uint64_t at = offset + i;
    uint16_t word = readWord(at & ~uint64_t{1});
    data[i] = static_cast<uint8_t>(at & 1 ? word >> 8 : word);
  }
}

void AcpiPm::writeWord(uint64_t offset, uint16_t value, uint16_t mask) {
  switch (offset) {
    case kStatusOffset:
      status_ &= static_cast<uint16_t>(~(value & mask));  // write 1 to clear
      break;
    case kEnableOffset:
      enable_ = static_cast<uint16_t>((enable_ & ~mask) | (value & mask));
      break;
    case kControlOffset: {
      uint16_t merged = static_cast<uint16_t>((control_ & ~mask) | (value & mask));
      control_ = static_cast<uint16_t>((merged & ~kSleepEnable) | kSciEnable);
      if ((merged & kSleepEnable) && ((merged >> kSleepTypeShift) & 7) == s5_sleep_type_) {
        on_request_(PowerRequest::PowerOff);
      }
      break;
    }
    default:
      break;
  }
}

void AcpiPm::write(uint64_t offset, std::span<const uint8_t> data) {
  auto guard = lock();
  if (offset >= kTimerOffset) return;  // the timer is read-only
  if (data.size() >= 2 && (offset & 1) == 0) {
    for (size_t i = 0; i + 1 < data.size(); i += 2) {
      writeWord(offset + i, static_cast<uint16_t>(data[i] | (data[i + 1] << 8)), 0xFFFF);
    }
  } else {
    for (size_t i = 0; i < data.size(); ++i) {
      uint64_t at = offset + i;
      bool high = at & 1;
      writeWord(at & ~uint64_t{1}, static_cast<uint16_t>(high ? data[i] << 8 : data[i]), high ? 0xFF00 : 0x00FF);
    }
  }
  updateSci();
}

void AcpiPm::pressPowerButton() {
  auto guard = lock();
  status_ |= kPwrBtnStatus;
  updateSci();
}

void AcpiPm::reset() {
  auto guard = lock();
  status_ = enable_ = 0;
  control_ = kSciEnable;
  (void)kTmrStatus;
  (void)kWakeStatus;
  updateSci();
}

Result<DeviceState> AcpiPm::saveState() const {
  auto guard = lock();
  StateWriter out;
  out.u16(status_);
  out.u16(enable_);
  out.u16(control_);
  out.boolean(sci_level_);
  auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_);
  out.u64(static_cast<uint64_t>(elapsed.count()));
  return DeviceState{name(), kStateVersion, out.take()};
}

Status AcpiPm::loadState(const DeviceState& state) {
  if (auto st = checkState(state, name(), kStateVersion); !st) return st;
  StateReader in(state.bytes);
  uint16_t status = in.u16(), enable = in.u16(), control = in.u16();
  bool sci_level = in.boolean();
  uint64_t elapsed_ns = in.u64();
  // More than a century of uptime is no timer state but garbage (and would overflow the clock).
  if (elapsed_ns > (100ull * 365 * 24 * 3600) * 1000000000ull) in.reject("a PM timer " + std::to_string(elapsed_ns) + " ns old");
  if (auto st = in.finish(name()); !st) return st;
  auto guard = lock();
  status_ = status;
  enable_ = enable;
  control_ = control;
  start_ = std::chrono::steady_clock::now() - std::chrono::nanoseconds(static_cast<int64_t>(elapsed_ns));
  sci_level_ = sci_level;
  sci_.set(sci_level_);
  updateSci();
  return {};
}

void AcpiPm::updateSci() {
  bool level = (status_ & enable_ & kPwrBtnStatus) != 0;
  if (level == sci_level_) return;
  sci_level_ = level;
  sci_.set(level);
}

void AcpiPm::ResetRegister::read(uint64_t, std::span<uint8_t> data) { std::memset(data.data(), 0, data.size()); }

void AcpiPm::ResetRegister::write(uint64_t, std::span<const uint8_t> data) {
  // The ICH's reset control register: SYS_RST|RST_CPU (0x06) resets the machine.
  if (data.size() == 1 && (data[0] & value_) == value_) on_request_(PowerRequest::Reset);
}

}  // namespace vmmd
