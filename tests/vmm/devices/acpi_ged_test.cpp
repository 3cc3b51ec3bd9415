#include "vmm/devices/acpi_ged.h"

#include <gtest/gtest.h>

#include <vector>

#include "tests/vmm/devices/fake_line.h"
#include "tests/vmm/devices/state_checks.h"

namespace vmmd {
namespace {

// Sleep control: SLP_TYP in bits 2-4, SLP_EN bit 5 (ACPI 6.4, 4.8.3.7).
constexpr uint8_t sleepControl(uint8_t type, bool enable) { return static_cast<uint8_t>(type << 2 | (enable ? 1u << 5 : 0)); }

class AcpiGedTest : public ::testing::Test {
 protected:
  AcpiGedTest() : line_(9), ged_(line_.line(), 5, [this](PowerRequest r) { requests_.push_back(r); }) {}

  uint32_t readSelector() {
    uint8_t data[4];
    ged_.read(AcpiGed::kEventSelector, data);
    return static_cast<uint32_t>(data[0] | data[1] << 8 | data[2] << 16 | uint32_t{data[3]} << 24);
  }
  void writeByte(uint64_t offset, uint8_t value) { ged_.write(offset, {&value, 1}); }
  uint8_t readByte(uint64_t offset) {
    uint8_t value = 0xAA;
    ged_.read(offset, {&value, 1});
    return value;
  }

  testing::RecordedLine line_;
  std::vector<PowerRequest> requests_;
  AcpiGed ged_;
};

TEST_F(AcpiGedTest, NothingPendingAtPowerOn) {
  EXPECT_EQ(readSelector(), 0u);
  EXPECT_EQ(line_.changes(), 0u);
}

TEST_F(AcpiGedTest, PowerButtonPulsesTheLineAndTheSelectorClearsWhenRead) {
  ged_.pressPowerButton();
  ASSERT_EQ(line_.changes(), 2u) << "one edge: high, then low";
  EXPECT_TRUE((*line_.levels)[0]);
  EXPECT_FALSE((*line_.levels)[1]);
  EXPECT_EQ(readSelector(), AcpiGed::kPowerDownEvent);
  EXPECT_EQ(readSelector(), 0u) << "read-to-clear, as QEMU's GED";
}

TEST_F(AcpiGedTest, PressesBeforeTheGuestReadsAreOneEvent) {
  ged_.pressPowerButton();
  ged_.pressPowerButton();
  EXPECT_EQ(line_.changes(), 4u) << "every press is an edge";
  EXPECT_EQ(readSelector(), AcpiGed::kPowerDownEvent);
}

TEST_F(AcpiGedTest, SleepControlS5PowersOff) {
  writeByte(AcpiGed::kSleepControl, sleepControl(5, true));
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0], PowerRequest::PowerOff);
}

TEST_F(AcpiGedTest, SleepControlWithoutEnableOrWithAnotherTypeDoesNothing) {
  writeByte(AcpiGed::kSleepControl, sleepControl(5, false));
  writeByte(AcpiGed::kSleepControl, sleepControl(3, true));
  writeByte(AcpiGed::kSleepControl, sleepControl(0, true));
  EXPECT_TRUE(requests_.empty());
}

TEST_F(AcpiGedTest, ResetRegisterTakesOnlyItsValue) {
  writeByte(AcpiGed::kReset, 0x06);
  writeByte(AcpiGed::kReset, 0x00);
  EXPECT_TRUE(requests_.empty());
  writeByte(AcpiGed::kReset, AcpiGed::kResetValue);
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0], PowerRequest::Reset);
}

TEST_F(AcpiGedTest, WideWritesAndTheSelectorAreIgnored) {
  uint8_t wide[4] = {sleepControl(5, true), 0, 0, 0};
  ged_.write(AcpiGed::kSleepControl, wide);
  uint8_t value = 0xFF;
  ged_.write(AcpiGed::kEventSelector, {&value, 1});
  EXPECT_TRUE(requests_.empty());
  EXPECT_EQ(readSelector(), 0u);
}

TEST_F(AcpiGedTest, SleepStatusAndTheRestOfTheWindowReadZero) {
  EXPECT_EQ(readByte(AcpiGed::kSleepStatus), 0) << "no wake event";
  EXPECT_EQ(readByte(AcpiGed::kSleepControl), 0);
  EXPECT_EQ(readByte(0x100), 0);
}

TEST_F(AcpiGedTest, ResetDropsAPendingEvent) {
  ged_.pressPowerButton();
  ged_.reset();
  EXPECT_EQ(readSelector(), 0u);
}

TEST_F(AcpiGedTest, APendingPressSurvivesSaveAndLoad) {
  ged_.pressPowerButton();
  testing::RecordedLine other_line(9);
  AcpiGed fresh(other_line.line(), 5, [](PowerRequest) {});
  testing::expectRoundTrip(ged_, fresh);
  uint8_t data[4];
  fresh.read(AcpiGed::kEventSelector, data);
  EXPECT_EQ(data[0], AcpiGed::kPowerDownEvent);
}

TEST_F(AcpiGedTest, HostileStatesAreRefused) {
  ged_.pressPowerButton();
  auto good = ged_.saveState();
  ASSERT_TRUE(good.ok());
  AcpiGed fresh(testing::RecordedLine(9).line(), 5, [](PowerRequest) {});
  testing::expectHostileStatesRefused(fresh, *good);
  DeviceState unknown_event = *good;
  unknown_event.bytes = {0x04, 0, 0, 0};
  EXPECT_FALSE(fresh.loadState(unknown_event).ok()) << "an event this machine never raises";
}

}  // namespace
}  // namespace vmmd
