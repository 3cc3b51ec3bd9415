#include "vmm/devices/cmos_rtc.h"

#include <algorithm>
#include <ctime>
#include <string>

namespace vmmd {
namespace {

constexpr uint8_t kSeconds = 0x00, kMinutes = 0x02, kHours = 0x04, kWeekday = 0x06, kDay = 0x07, kMonth = 0x08,
                  kYear = 0x09, kRegA = 0x0A, kRegB = 0x0B, kRegC = 0x0C, kRegD = 0x0D, kCentury = 0x32;
constexpr uint8_t kRegBSet = 0x80, kRegB24Hour = 0x02, kRegBBinary = 0x04;
constexpr uint8_t kRegDValidRam = 0x80;

}  // namespace

CmosRtc::CmosRtc(uint64_t ram_below_4g, uint64_t ram_above_4g) {
  nvram_[kRegA] = 0x26;  // 32.768 kHz time base, 1024 Hz periodic rate
  nvram_[kRegB] = kRegB24Hour;
  nvram_[kRegD] = kRegDValidRam;
  // Base memory 640 KiB; extended memory (1..64 MiB) in KiB; memory above 16 MiB and above
  // 4 GiB in 64 KiB units, as the PC BIOS convention has it.
  nvram_[0x15] = 0x80;
  nvram_[0x16] = 0x02;
  uint64_t extended_kib = ram_below_4g > (1u << 20) ? std::min<uint64_t>((ram_below_4g >> 10) - 1024, 0xFFFF) : 0;
  nvram_[0x17] = nvram_[0x30] = static_cast<uint8_t>(extended_kib);
  nvram_[0x18] = nvram_[0x31] = static_cast<uint8_t>(extended_kib >> 8);
  uint64_t above_16m = ram_below_4g > (16u << 20) ? std::min<uint64_t>((ram_below_4g - (16u << 20)) >> 16, 0xFFFF) : 0;
  nvram_[0x34] = static_cast<uint8_t>(above_16m);
  nvram_[0x35] = static_cast<uint8_t>(above_16m >> 8);
  uint64_t above_4g = ram_above_4g >> 16;
  nvram_[0x5B] = static_cast<uint8_t>(above_4g);
  nvram_[0x5C] = static_cast<uint8_t>(above_4g >> 8);
  nvram_[0x5D] = static_cast<uint8_t>(above_4g >> 16);
}

void CmosRtc::reset() {
  auto guard = lock();
  index_ = 0;
}

Result<DeviceState> CmosRtc::saveState() const {
  auto guard = lock();
  StateWriter out;
  out.u8(index_);
  out.bytes(nvram_);
  out.u64(static_cast<uint64_t>(offset_seconds_));
  return DeviceState{name(), kStateVersion, out.take()};
}

Status CmosRtc::loadState(const DeviceState& state) {
  if (auto st = checkState(state, name(), kStateVersion); !st) return st;
  StateReader in(state.bytes);
  uint8_t index = in.u8();
  auto nvram = in.bytes();
  auto offset_seconds = static_cast<time_t>(in.u64());
  if (nvram.size() != nvram_.size()) in.reject("NVRAM of " + std::to_string(nvram.size()) + " bytes");
  if (index >= nvram_.size()) in.reject("index register " + std::to_string(index));
  if (auto st = in.finish(name()); !st) return st;
  auto guard = lock();
  index_ = index;
  std::copy(nvram.begin(), nvram.end(), nvram_.begin());
  offset_seconds_ = offset_seconds;
  return {};
}

void CmosRtc::read(uint64_t offset, std::span<uint8_t> data) {
  auto guard = lock();
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = (offset + i == 1) ? readRegister(index_) : 0xFF;
  }
}

void CmosRtc::write(uint64_t offset, std::span<const uint8_t> data) {
  auto guard = lock();
  for (size_t i = 0; i < data.size(); ++i) {
    if (offset + i == 0) {
      index_ = data[i] & 0x7F;  // bit 7 masks NMI; nothing to mask here
    } else if (offset + i == 1) {
      writeRegister(index_, data[i]);
    }
  }
}

uint8_t CmosRtc::encode(int value) const {
  if (nvram_[kRegB] & kRegBBinary) return static_cast<uint8_t>(value);
  return static_cast<uint8_t>(((value / 10) << 4) | (value % 10));
}

int CmosRtc::decode(uint8_t value) const {
  if (nvram_[kRegB] & kRegBBinary) return value;
  return (value >> 4) * 10 + (value & 0x0F);
}

uint8_t CmosRtc::encodeHours(int hour24) const {
  if (nvram_[kRegB] & kRegB24Hour) return encode(hour24);
  int hour12 = hour24 % 12 == 0 ? 12 : hour24 % 12;
  return static_cast<uint8_t>(encode(hour12) | (hour24 >= 12 ? 0x80 : 0));
}

int CmosRtc::decodeHours(uint8_t value) const {
  if (nvram_[kRegB] & kRegB24Hour) return decode(value);
  int hour12 = decode(value & 0x7F) % 12;  // 12 AM is hour 0
  return (value & 0x80) ? hour12 + 12 : hour12;
}

std::tm CmosRtc::guestTime() const {
  time_t now = ::time(nullptr) + offset_seconds_;
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  return tm;
}

uint8_t CmosRtc::readRegister(uint8_t index) {
  // While the guest is setting the clock (SET), it reads back what it wrote.
  bool live = !(nvram_[kRegB] & kRegBSet);
  std::tm tm = guestTime();
  switch (index) {
    case kSeconds: return live ? encode(tm.tm_sec) : nvram_[index];
    case kMinutes: return live ? encode(tm.tm_min) : nvram_[index];
    case kHours: return live ? encodeHours(tm.tm_hour) : nvram_[index];
    case kWeekday: return live ? encode(tm.tm_wday + 1) : nvram_[index];
    case kDay: return live ? encode(tm.tm_mday) : nvram_[index];
    case kMonth: return live ? encode(tm.tm_mon + 1) : nvram_[index];
    case kYear: return live ? encode(tm.tm_year % 100) : nvram_[index];
    case kCentury: return live ? encode(1900 / 100 + tm.tm_year / 100) : nvram_[index];
    case kRegA: return nvram_[kRegA] & 0x7F;  // update-in-progress never set: updates are atomic here
    case kRegC: {
      uint8_t flags = nvram_[kRegC];
      nvram_[kRegC] = 0;  // reading C acknowledges
      return flags;
    }
    default: return nvram_[index];
  }
}

void CmosRtc::writeRegister(uint8_t index, uint8_t value) {
  switch (index) {
    case kRegC:
    case kRegD:
      return;  // read-only
    case kRegB: {
      bool was_setting = nvram_[kRegB] & kRegBSet;
      if (!was_setting && (value & kRegBSet)) {
        // Freeze the current time into the registers so partial writes read back sensibly.
        std::tm tm = guestTime();
        nvram_[kRegB] = value;
        nvram_[kSeconds] = encode(tm.tm_sec);
        nvram_[kMinutes] = encode(tm.tm_min);
        nvram_[kHours] = encodeHours(tm.tm_hour);
        nvram_[kWeekday] = encode(tm.tm_wday + 1);
        nvram_[kDay] = encode(tm.tm_mday);
        nvram_[kMonth] = encode(tm.tm_mon + 1);
        nvram_[kYear] = encode(tm.tm_year % 100);
        nvram_[kCentury] = encode(19 + tm.tm_year / 100);
        return;
      }
      nvram_[kRegB] = value;
      if (was_setting && !(value & kRegBSet)) {
        std::tm tm{};
        tm.tm_sec = decode(nvram_[kSeconds]);
        tm.tm_min = decode(nvram_[kMinutes]);
        tm.tm_hour = decodeHours(nvram_[kHours]);
        tm.tm_mday = decode(nvram_[kDay]);
        tm.tm_mon = decode(nvram_[kMonth]) - 1;
        tm.tm_year = decode(nvram_[kCentury]) * 100 + decode(nvram_[kYear]) - 1900;
        time_t guest = ::timegm(&tm);
        if (guest != -1) offset_seconds_ = guest - ::time(nullptr);
      }
      return;
    }
    default:
      nvram_[index] = value;
  }
}

}  // namespace vmmd
