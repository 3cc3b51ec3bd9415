#include "vmm/devices/cmos_rtc.h"

#include <gtest/gtest.h>

#include <ctime>

namespace vmmd {
namespace {

constexpr uint8_t kSeconds = 0x00, kMinutes = 0x02, kHours = 0x04, kWeekday = 0x06, kDay = 0x07, kMonth = 0x08,
                  kYear = 0x09, kRegA = 0x0A, kRegB = 0x0B, kRegC = 0x0C, kRegD = 0x0D, kCentury = 0x32;
constexpr uint8_t kSet = 0x80, k24Hour = 0x02, kBinary = 0x04;

class CmosRtcTest : public ::testing::Test {
 protected:
  CmosRtcTest() : rtc_(64ull << 20, 0) {}

  static uint8_t get(CmosRtc& rtc, uint8_t index) {
    rtc.write(0, {&index, 1});
    uint8_t value = 0;
    rtc.read(1, {&value, 1});
    return value;
  }
  static void set(CmosRtc& rtc, uint8_t index, uint8_t value) {
    rtc.write(0, {&index, 1});
    rtc.write(1, {&value, 1});
  }
  uint8_t get(uint8_t index) { return get(rtc_, index); }
  void set(uint8_t index, uint8_t value) { set(rtc_, index, value); }

  int decode(uint8_t value) {
    if (get(kRegB) & kBinary) return value;
    EXPECT_LE(value & 0x0F, 9) << "not BCD: " << int{value};
    EXPECT_LE(value >> 4, 9) << "not BCD: " << int{value};
    return (value >> 4) * 10 + (value & 0x0F);
  }
  static uint8_t bcd(int value) { return static_cast<uint8_t>(((value / 10) << 4) | (value % 10)); }

  // The guest's clock as a time_t, read the way Linux's mc146818 driver does (24-hour mode).
  time_t guestTime() {
    std::tm tm{};
    for (int attempt = 0; attempt < 3; ++attempt) {
      int seconds = decode(get(kSeconds));
      tm.tm_min = decode(get(kMinutes));
      tm.tm_hour = decode(get(kHours));
      tm.tm_mday = decode(get(kDay));
      tm.tm_mon = decode(get(kMonth)) - 1;
      tm.tm_year = decode(get(kCentury)) * 100 + decode(get(kYear)) - 1900;
      tm.tm_sec = decode(get(kSeconds));
      if (tm.tm_sec == seconds) break;  // no second boundary in between
    }
    return ::timegm(&tm);
  }

  CmosRtc rtc_;
};

TEST_F(CmosRtcTest, PowerOnRegisters) {
  EXPECT_EQ(get(kRegA), 0x26) << "32.768 kHz base, 1024 Hz rate, UIP clear";
  EXPECT_EQ(get(kRegB), k24Hour) << "24-hour BCD, no interrupts";
  EXPECT_EQ(get(kRegC), 0x00);
  EXPECT_EQ(get(kRegD), 0x80) << "valid RAM and time";
}

TEST_F(CmosRtcTest, TimeInBcdMatchesTheHostClock) {
  time_t before = ::time(nullptr);
  time_t guest = guestTime();
  time_t after = ::time(nullptr);
  EXPECT_GE(guest, before);
  EXPECT_LE(guest, after);
  EXPECT_EQ(decode(get(kCentury)), 20);
}

TEST_F(CmosRtcTest, TimeInBinaryMode) {
  set(kRegB, k24Hour | kBinary);
  time_t before = ::time(nullptr);
  time_t guest = guestTime();
  time_t after = ::time(nullptr);
  EXPECT_GE(guest, before);
  EXPECT_LE(guest, after);
  EXPECT_EQ(get(kCentury), 20);
  // Binary mode: the year register is the plain number, e.g. 26 (0x1a), not BCD 0x26.
  std::tm now{};
  time_t t = ::time(nullptr);
  ::gmtime_r(&t, &now);
  EXPECT_EQ(get(kYear), now.tm_year % 100);
  EXPECT_EQ(get(kMonth), now.tm_mon + 1);
}

TEST_F(CmosRtcTest, WeekdayIsOneForSunday) {
  std::tm now{};
  time_t t = ::time(nullptr);
  ::gmtime_r(&t, &now);
  EXPECT_EQ(decode(get(kWeekday)), now.tm_wday + 1);
}

TEST_F(CmosRtcTest, TwelveHourModeMarksPm) {
  set(kRegB, 0x00);  // 12-hour, BCD
  std::tm now{};
  time_t t = ::time(nullptr);
  ::gmtime_r(&t, &now);
  uint8_t hours = get(kHours);
  if (::time(nullptr) / 3600 != t / 3600) GTEST_SKIP() << "the hour changed while reading";
  int expected = now.tm_hour % 12 == 0 ? 12 : now.tm_hour % 12;
  EXPECT_EQ(hours & 0x7F, bcd(expected));
  EXPECT_EQ((hours & 0x80) != 0, now.tm_hour >= 12);
}

TEST_F(CmosRtcTest, GuestSetsTheClockWithTheSetBit) {
  set(kRegB, kSet | k24Hour);
  set(kCentury, 0x20);
  set(kYear, 0x30);
  set(kMonth, 0x05);
  set(kDay, 0x17);
  set(kHours, 0x12);
  set(kMinutes, 0x34);
  set(kSeconds, 0x56);
  // While SET is on, the registers read back what was written, not the running clock.
  EXPECT_EQ(get(kYear), 0x30);
  EXPECT_EQ(get(kSeconds), 0x56);
  EXPECT_EQ(get(kHours), 0x12);
  set(kRegB, k24Hour);

  std::tm set_tm{};
  set_tm.tm_year = 2030 - 1900;
  set_tm.tm_mon = 4;
  set_tm.tm_mday = 17;
  set_tm.tm_hour = 12;
  set_tm.tm_min = 34;
  set_tm.tm_sec = 56;
  time_t expected = ::timegm(&set_tm);
  time_t guest = guestTime();
  EXPECT_GE(guest, expected);
  EXPECT_LE(guest, expected + 2);
  EXPECT_EQ(get(kWeekday), 6) << "17 May 2030 is a Friday";
}

TEST_F(CmosRtcTest, GuestSetsTheClockInBinaryMode) {
  set(kRegB, kSet | k24Hour | kBinary);
  set(kCentury, 19);
  set(kYear, 99);
  set(kMonth, 12);
  set(kDay, 31);
  set(kHours, 23);
  set(kMinutes, 59);
  set(kSeconds, 30);
  set(kRegB, k24Hour | kBinary);
  std::tm set_tm{};
  set_tm.tm_year = 99;
  set_tm.tm_mon = 11;
  set_tm.tm_mday = 31;
  set_tm.tm_hour = 23;
  set_tm.tm_min = 59;
  set_tm.tm_sec = 30;
  time_t expected = ::timegm(&set_tm);
  time_t guest = guestTime();
  EXPECT_GE(guest, expected);
  EXPECT_LE(guest, expected + 2);
}

TEST_F(CmosRtcTest, SettingTheClockFreezesTheCurrentTimeFirst) {
  // A guest that sets SET and changes only the minutes keeps the rest of the date.
  time_t before = ::time(nullptr);
  set(kRegB, kSet | k24Hour);
  uint8_t frozen_day = get(kDay);
  uint8_t frozen_year = get(kYear);
  uint8_t frozen_weekday = get(kWeekday);
  std::tm now{};
  ::gmtime_r(&before, &now);
  EXPECT_EQ(decode(frozen_year), now.tm_year % 100);
  EXPECT_EQ(decode(frozen_weekday), now.tm_wday + 1) << "the weekday is frozen too";
  EXPECT_NE(frozen_day, 0);
  set(kRegB, k24Hour);
  time_t guest = guestTime();
  EXPECT_GE(guest, before);
  EXPECT_LE(guest, ::time(nullptr) + 1);
}

TEST_F(CmosRtcTest, GuestSetsAPmTimeInTwelveHourMode) {
  set(kRegB, kSet);  // 12-hour BCD
  set(kCentury, 0x20);
  set(kYear, 0x30);
  set(kMonth, 0x05);
  set(kDay, 0x17);
  set(kHours, 0x80 | 0x03);  // 3 PM
  set(kMinutes, 0x00);
  set(kSeconds, 0x00);
  set(kRegB, 0x00);
  uint8_t hours = get(kHours);
  EXPECT_EQ(hours, 0x80 | 0x03) << "reads back as 3 PM";
  set(kRegB, k24Hour);
  EXPECT_EQ(get(kHours), 0x15) << "15:00 in 24-hour mode";
}

TEST_F(CmosRtcTest, FrozenHoursFollowTwelveHourMode) {
  set(kRegB, 0x00);  // 12-hour BCD
  time_t t = ::time(nullptr);
  set(kRegB, kSet);
  uint8_t hours = get(kHours);
  if (::time(nullptr) / 3600 != t / 3600) GTEST_SKIP() << "the hour changed while reading";
  std::tm now{};
  ::gmtime_r(&t, &now);
  int expected = now.tm_hour % 12 == 0 ? 12 : now.tm_hour % 12;
  EXPECT_EQ(hours & 0x7F, bcd(expected));
  EXPECT_EQ((hours & 0x80) != 0, now.tm_hour >= 12);
}

// Sets the guest clock to 15:00:00 on 17 May 2030 in 24-hour BCD mode.
void setAfternoon(CmosRtc& rtc) {
  auto set = [&](uint8_t index, uint8_t value) {
    rtc.write(0, {&index, 1});
    rtc.write(1, {&value, 1});
  };
  set(kRegB, kSet | k24Hour);
  set(kCentury, 0x20);
  set(kYear, 0x30);
  set(kMonth, 0x05);
  set(kDay, 0x17);
  set(kHours, 0x15);
  set(kMinutes, 0x00);
  set(kSeconds, 0x00);
  set(kRegB, k24Hour);
}

TEST_F(CmosRtcTest, TwelveHourModeShowsAfternoonWithThePmBit) {
  setAfternoon(rtc_);
  set(kRegB, 0x00);  // 12-hour BCD
  EXPECT_EQ(get(kHours), 0x80 | 0x03);
  set(kRegB, kBinary);  // 12-hour binary
  EXPECT_EQ(get(kHours), 0x80 | 3);
}

TEST_F(CmosRtcTest, FreezingInTwelveHourModeKeepsThePmBit) {
  setAfternoon(rtc_);
  set(kRegB, 0x00);
  set(kRegB, kSet);
  EXPECT_EQ(get(kHours), 0x80 | 0x03);
  set(kRegB, 0x00);  // nothing changed: the clock goes on at 3 PM, not 3 AM
  set(kRegB, k24Hour);
  EXPECT_EQ(get(kHours), 0x15);
}

TEST_F(CmosRtcTest, TwelveAmAndTwelvePmInTwelveHourMode) {
  set(kRegB, kSet);  // 12-hour BCD
  set(kCentury, 0x20);
  set(kYear, 0x30);
  set(kMonth, 0x05);
  set(kDay, 0x17);
  set(kHours, 0x12);  // 12 AM: midnight
  set(kMinutes, 0x00);
  set(kSeconds, 0x00);
  set(kRegB, 0x00);  // SET off, still 12-hour
  set(kRegB, k24Hour);
  EXPECT_EQ(get(kHours), 0x00);
  set(kRegB, kSet);
  set(kHours, 0x80 | 0x12);  // 12 PM: noon
  set(kRegB, 0x00);
  set(kRegB, k24Hour);
  EXPECT_EQ(get(kHours), 0x12);
}

TEST_F(CmosRtcTest, RegisterCReadsZeroAndIgnoresWrites) {
  // Nothing in this model raises an RTC interrupt flag; C must still read back clear and
  // writes (it is read-only) must not stick.
  set(kRegC, 0xF0);
  EXPECT_EQ(get(kRegC), 0x00);
  EXPECT_EQ(get(kRegC), 0x00);
}

TEST_F(CmosRtcTest, RegisterDIsReadOnly) {
  set(kRegD, 0x00);
  EXPECT_EQ(get(kRegD), 0x80);
}

TEST_F(CmosRtcTest, RegisterANeverShowsUpdateInProgress) {
  set(kRegA, 0xA6);
  EXPECT_EQ(get(kRegA), 0x26);
}

TEST_F(CmosRtcTest, NvramBytesPersist) {
  for (uint8_t index = 0x40; index < 0x80; ++index) set(index, static_cast<uint8_t>(index ^ 0x5A));
  // Clock reads and setting the clock do not disturb NVRAM.
  (void)guestTime();
  set(kRegB, kSet | k24Hour);
  set(kRegB, k24Hour);
  for (uint8_t index = 0x40; index < 0x80; ++index) EXPECT_EQ(get(index), index ^ 0x5A) << int{index};
}

TEST_F(CmosRtcTest, IndexBit7IsTheNmiMaskNotPartOfTheIndex) {
  set(0x40, 0x11);
  EXPECT_EQ(get(0x80 | 0x40), 0x11);
  set(0x80 | 0x41, 0x22);
  EXPECT_EQ(get(0x41), 0x22);
}

TEST_F(CmosRtcTest, IndexPortReadsAllOnes) {
  uint8_t value = 0;
  rtc_.read(0, {&value, 1});
  EXPECT_EQ(value, 0xFF);
}

TEST_F(CmosRtcTest, TwoByteAccessCoversIndexAndData) {
  uint8_t write[2] = {0x42, 0x99};  // index 0x42, then data
  rtc_.write(0, write);
  EXPECT_EQ(get(0x42), 0x99);
  uint8_t read[2] = {0, 0};
  uint8_t index = 0x42;
  rtc_.write(0, {&index, 1});
  rtc_.read(0, read);
  EXPECT_EQ(read[0], 0xFF);
  EXPECT_EQ(read[1], 0x99);
}

TEST(CmosRtc, MemorySizesForA64MiBGuest) {
  CmosRtc rtc(64ull << 20, 0);
  auto get = [&](uint8_t index) {
    rtc.write(0, {&index, 1});
    uint8_t value = 0;
    rtc.read(1, {&value, 1});
    return value;
  };
  EXPECT_EQ(get(0x15) | get(0x16) << 8, 640) << "base memory in KiB";
  EXPECT_EQ(get(0x17) | get(0x18) << 8, 63 * 1024) << "extended memory in KiB";
  EXPECT_EQ(get(0x30) | get(0x31) << 8, 63 * 1024);
  EXPECT_EQ(get(0x34) | get(0x35) << 8, 48 * 16) << "memory above 16 MiB in 64 KiB units";
  EXPECT_EQ(get(0x5B) | get(0x5C) << 8 | get(0x5D) << 16, 0);
}

TEST(CmosRtc, MemorySizesForA4GiBGuest) {
  CmosRtc rtc(3ull << 30, 1ull << 30);
  auto get = [&](uint8_t index) {
    rtc.write(0, {&index, 1});
    uint8_t value = 0;
    rtc.read(1, {&value, 1});
    return value;
  };
  EXPECT_EQ(get(0x17) | get(0x18) << 8, 0xFFFF) << "extended memory saturates";
  EXPECT_EQ(get(0x34) | get(0x35) << 8, static_cast<int>(((3ull << 30) - (16ull << 20)) >> 16));
  EXPECT_EQ(get(0x5B) | get(0x5C) << 8 | get(0x5D) << 16, static_cast<int>((1ull << 30) >> 16)) << "above 4 GiB in 64 KiB units";
}

TEST_F(CmosRtcTest, StateCarriesNvramIndexAndTheGuestsClock) {
  set(0x40, 0x5A);  // an NVRAM byte the guest wrote (the probe counts boots this way)
  set(kRegB, kSet | k24Hour);
  set(kCentury, 0x20);
  set(kYear, 0x30);
  set(kRegB, k24Hour);  // the guest's clock now runs in 2030
  uint8_t index = 0x41;
  rtc_.write(0, {&index, 1});
  auto saved = rtc_.saveState();
  ASSERT_TRUE(saved.ok()) << saved.error().message();

  CmosRtc target(64ull << 20, 0);
  ASSERT_TRUE(target.loadState(*saved).ok());
  uint8_t at_index = 0xEE;
  target.read(1, {&at_index, 1});
  EXPECT_EQ(at_index, get(0x41)) << "the index register came along";
  EXPECT_EQ(get(target, 0x40), 0x5A);
  EXPECT_EQ(get(target, kYear), 0x30);
  EXPECT_EQ(get(target, kCentury), 0x20);

  DeviceState truncated = *saved;
  truncated.bytes.pop_back();
  CmosRtc untouched(64ull << 20, 0);
  EXPECT_FALSE(untouched.loadState(truncated).ok());
  EXPECT_EQ(get(untouched, 0x40), 0);
  EXPECT_FALSE(untouched.loadState({"isa-serial", CmosRtc::kStateVersion, saved->bytes}).ok());
}

TEST_F(CmosRtcTest, ResetKeepsNvramAndClock) {
  set(0x40, 0x5A);
  rtc_.reset();
  EXPECT_EQ(get(0x40), 0x5A);
}

}  // namespace
}  // namespace vmmd
