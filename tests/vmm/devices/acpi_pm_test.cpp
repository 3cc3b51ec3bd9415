#include "vmm/devices/acpi_pm.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "tests/vmm/devices/fake_line.h"
#include "tests/vmm/devices/state_checks.h"

namespace vmmd {
namespace {

// Offsets within the 12-byte PM block at 0x600.
constexpr uint64_t kStatus = 0, kEnable = 2, kControl = 4, kTimer = 8;
constexpr uint16_t kPowerButton = 1u << 8;
constexpr uint16_t kSciEn = 1u << 0, kSlpEn = 1u << 13;
constexpr uint16_t slpTyp(uint16_t type) { return static_cast<uint16_t>(type << 10); }

class AcpiPmTest : public ::testing::Test {
 protected:
  AcpiPmTest() : sci_(9), pm_(sci_.line(), 5, [this](PowerRequest r) { requests_.push_back(r); }) {}

  uint16_t readWord(uint64_t offset) {
    uint8_t data[2];
    pm_.read(offset, data);
    return static_cast<uint16_t>(data[0] | data[1] << 8);
  }
  uint8_t readByte(uint64_t offset) {
    uint8_t value;
    pm_.read(offset, {&value, 1});
    return value;
  }
  void writeWord(uint64_t offset, uint16_t value) {
    uint8_t data[2] = {static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8)};
    pm_.write(offset, data);
  }
  void writeByte(uint64_t offset, uint8_t value) { pm_.write(offset, {&value, 1}); }
  uint32_t readTimer() {
    uint8_t data[4];
    pm_.read(kTimer, data);
    return static_cast<uint32_t>(data[0] | data[1] << 8 | data[2] << 16 | uint32_t{data[3]} << 24);
  }

  testing::RecordedLine sci_;
  std::vector<PowerRequest> requests_;
  AcpiPm pm_;
};

TEST_F(AcpiPmTest, PowerOnState) {
  EXPECT_EQ(readWord(kStatus), 0);
  EXPECT_EQ(readWord(kEnable), 0);
  EXPECT_EQ(readWord(kControl), kSciEn) << "always in ACPI mode";
  EXPECT_FALSE(sci_.level());
}

TEST_F(AcpiPmTest, PowerButtonWithoutEnableSetsStatusButNoSci) {
  pm_.pressPowerButton();
  EXPECT_EQ(readWord(kStatus), kPowerButton);
  EXPECT_EQ(sci_.changes(), 0u);
}

TEST_F(AcpiPmTest, PowerButtonRaisesSciWhenEnabled) {
  writeWord(kEnable, kPowerButton);
  EXPECT_EQ(readWord(kEnable), kPowerButton);
  EXPECT_FALSE(sci_.level());
  pm_.pressPowerButton();
  EXPECT_TRUE(sci_.level());
  // The guest acknowledges by writing 1 to the status bit.
  writeWord(kStatus, kPowerButton);
  EXPECT_EQ(readWord(kStatus), 0);
  EXPECT_FALSE(sci_.level());
}

TEST_F(AcpiPmTest, EnablingAfterThePressRaisesSci) {
  pm_.pressPowerButton();
  EXPECT_FALSE(sci_.level());
  writeWord(kEnable, kPowerButton);
  EXPECT_TRUE(sci_.level());
  writeWord(kEnable, 0);
  EXPECT_FALSE(sci_.level());
  EXPECT_EQ(readWord(kStatus), kPowerButton) << "disabling does not clear the status";
}

TEST_F(AcpiPmTest, StatusIsWriteOneToClear) {
  pm_.pressPowerButton();
  writeWord(kStatus, 0);
  EXPECT_EQ(readWord(kStatus), kPowerButton) << "writing 0 leaves it set";
  writeWord(kStatus, static_cast<uint16_t>(~kPowerButton));
  EXPECT_EQ(readWord(kStatus), kPowerButton) << "writing 1s elsewhere leaves it set";
  writeWord(kStatus, 0xFFFF);
  EXPECT_EQ(readWord(kStatus), 0);
}

TEST_F(AcpiPmTest, ByteAccessesToTheStatusAndEnableRegisters) {
  pm_.pressPowerButton();
  EXPECT_EQ(readByte(kStatus), 0x00);
  EXPECT_EQ(readByte(kStatus + 1), 0x01);
  writeByte(kEnable + 1, 0x01);
  EXPECT_EQ(readWord(kEnable), kPowerButton);
  EXPECT_TRUE(sci_.level());
  writeByte(kStatus, 0xFF);  // low byte only: the button bit stays
  EXPECT_EQ(readWord(kStatus), kPowerButton);
  writeByte(kStatus + 1, 0x01);
  EXPECT_EQ(readWord(kStatus), 0);
  EXPECT_FALSE(sci_.level());
}

TEST_F(AcpiPmTest, DwordWriteCoversStatusAndEnable) {
  pm_.pressPowerButton();
  uint8_t data[4] = {0x00, 0x01, 0x00, 0x01};  // clear PWRBTN_STS, set PWRBTN_EN
  pm_.write(kStatus, data);
  EXPECT_EQ(readWord(kStatus), 0);
  EXPECT_EQ(readWord(kEnable), kPowerButton);
  uint8_t both[4];
  pm_.read(kStatus, both);
  EXPECT_EQ(both[1], 0x00);
  EXPECT_EQ(both[3], 0x01);
}

TEST_F(AcpiPmTest, SleepTypeFiveWithSleepEnableRequestsPowerOff) {
  writeWord(kControl, slpTyp(5) | kSlpEn | kSciEn);
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0], PowerRequest::PowerOff);
  EXPECT_EQ(readWord(kControl), slpTyp(5) | kSciEn) << "SLP_EN reads back as 0";
}

TEST_F(AcpiPmTest, SleepTypeWrittenFirstThenSleepEnable) {
  // ACPICA writes SLP_TYP, then SLP_TYP | SLP_EN.
  writeWord(kControl, slpTyp(5) | kSciEn);
  EXPECT_TRUE(requests_.empty());
  writeWord(kControl, slpTyp(5) | kSlpEn | kSciEn);
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0], PowerRequest::PowerOff);
}

TEST_F(AcpiPmTest, OtherSleepTypesDoNotPowerOff) {
  for (uint16_t type : {0, 1, 2, 3, 4, 6, 7}) {
    writeWord(kControl, slpTyp(type) | kSlpEn | kSciEn);
    EXPECT_TRUE(requests_.empty()) << "SLP_TYP " << type;
  }
}

TEST_F(AcpiPmTest, SleepTypeFiveWithoutSleepEnableDoesNothing) {
  writeWord(kControl, slpTyp(5));
  EXPECT_TRUE(requests_.empty());
  EXPECT_EQ(readWord(kControl), slpTyp(5) | kSciEn) << "SCI_EN cannot be cleared";
}

TEST_F(AcpiPmTest, ByteWriteOfTheControlHighByteRequestsPowerOff) {
  writeByte(kControl + 1, static_cast<uint8_t>((slpTyp(5) | kSlpEn) >> 8));
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0], PowerRequest::PowerOff);
  EXPECT_EQ(readByte(kControl), kSciEn) << "the low byte was not touched";
}

TEST_F(AcpiPmTest, OtherS5SleepTypeFromTheDsdt) {
  std::vector<PowerRequest> requests;
  testing::RecordedLine sci(9);
  AcpiPm pm(sci.line(), 7, [&](PowerRequest r) { requests.push_back(r); });
  uint8_t data[2];
  uint16_t five = slpTyp(5) | kSlpEn;
  data[0] = static_cast<uint8_t>(five);
  data[1] = static_cast<uint8_t>(five >> 8);
  pm.write(kControl, data);
  EXPECT_TRUE(requests.empty());
  uint16_t seven = slpTyp(7) | kSlpEn;
  data[0] = static_cast<uint8_t>(seven);
  data[1] = static_cast<uint8_t>(seven >> 8);
  pm.write(kControl, data);
  EXPECT_EQ(requests.size(), 1u);
}

TEST_F(AcpiPmTest, TimerIs24BitsAndAdvances) {
  uint32_t first = readTimer();
  EXPECT_LE(first, 0xFFFFFFu);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  uint32_t second = readTimer();
  EXPECT_LE(second, 0xFFFFFFu);
  uint32_t elapsed = (second - first) & 0xFFFFFF;
  // 3.579545 MHz: 2 ms is ~7159 ticks; allow a slow, loaded machine.
  EXPECT_GE(elapsed, 7000u);
  EXPECT_LT(elapsed, 3579545u) << "more than a second for a 2 ms sleep";
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(readTimer() >> 24, 0u);
}

TEST_F(AcpiPmTest, TimerIsReadOnlyAndReadableByByte) {
  uint32_t before = readTimer();
  uint8_t zeros[4] = {0, 0, 0, 0};
  pm_.write(kTimer, zeros);
  uint32_t after = readTimer();
  EXPECT_GE((after - before) & 0xFFFFFF, 0u);
  EXPECT_LT((after - before) & 0xFFFFFF, 3579545u) << "a write must not reset the timer";
  EXPECT_EQ(readByte(kTimer + 3), 0) << "bits 31:24 of a 24-bit timer";
}

TEST_F(AcpiPmTest, ResetClearsStatusEnableAndSci) {
  writeWord(kEnable, kPowerButton);
  pm_.pressPowerButton();
  ASSERT_TRUE(sci_.level());
  writeWord(kControl, slpTyp(3) | kSciEn);
  pm_.reset();
  EXPECT_FALSE(sci_.level());
  EXPECT_EQ(readWord(kStatus), 0);
  EXPECT_EQ(readWord(kEnable), 0);
  EXPECT_EQ(readWord(kControl), kSciEn);
}

TEST(ResetRegister, SixResetsTheMachine) {
  std::vector<PowerRequest> requests;
  AcpiPm::ResetRegister reg(0x06, [&](PowerRequest r) { requests.push_back(r); });
  uint8_t value = 0x06;
  reg.write(0, {&value, 1});
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0], PowerRequest::Reset);
  value = 0x0E;  // full reset: also a reset
  reg.write(0, {&value, 1});
  EXPECT_EQ(requests.size(), 2u);
}

TEST(ResetRegister, OtherValuesDoNothing) {
  std::vector<PowerRequest> requests;
  AcpiPm::ResetRegister reg(0x06, [&](PowerRequest r) { requests.push_back(r); });
  for (uint8_t value : {0x00, 0x02, 0x04, 0x08}) reg.write(0, {&value, 1});
  uint8_t word[2] = {0x06, 0x00};
  reg.write(0, word);  // only byte writes count
  EXPECT_TRUE(requests.empty());
  uint8_t read = 0xAA;
  reg.read(0, {&read, 1});
  EXPECT_EQ(read, 0);
}

}  // namespace
}  // namespace vmmd

namespace vmmd {
namespace {

TEST_F(AcpiPmTest, StateCarriesRegistersSciAndTheTimersCount) {
  writeWord(kEnable, 0x0100);  // power button enabled
  pm_.pressPowerButton();
  ASSERT_TRUE(sci_.level());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  uint32_t before = readTimer();
  auto saved = pm_.saveState();
  ASSERT_TRUE(saved.ok()) << saved.error().message();

  testing::RecordedLine target_sci(9);
  AcpiPm target(target_sci.line(), 5, [](PowerRequest) {});
  ASSERT_TRUE(target.loadState(*saved).ok());
  EXPECT_TRUE(target_sci.level()) << "the SCI is raised again on the loaded device";
  uint8_t data[4];
  target.read(kStatus, {data, 2});
  EXPECT_EQ(data[1], 0x01) << "power button status";
  target.read(kEnable, {data, 2});
  EXPECT_EQ(data[1], 0x01) << "power button enable";
  target.read(kTimer, data);
  uint32_t after = static_cast<uint32_t>(data[0] | data[1] << 8 | data[2] << 16);
  // The timer goes on from where it was (a fresh device would be near 0, 5 ms = ~17900 ticks behind).
  uint32_t advanced = (after - before) & 0xFFFFFF;
  EXPECT_LT(advanced, 3579545u) << "before " << before << " after " << after;
  // Saved again: everything but the timer's count (it moved on) is the same.
  auto again = target.saveState();
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->bytes.size(), saved->bytes.size());
  EXPECT_TRUE(std::equal(saved->bytes.begin(), saved->bytes.end() - 8, again->bytes.begin()));

  AcpiPm hostile(testing::RecordedLine(9).line(), 5, [](PowerRequest) {});
  testing::expectHostileStatesRefused(hostile, *saved);
}

}  // namespace
}  // namespace vmmd
