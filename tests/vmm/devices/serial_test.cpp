#include "vmm/devices/serial.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/vmm/devices/fake_line.h"
#include "tests/vmm/devices/state_checks.h"

namespace vmmd {
namespace {

// Register offsets from COM1's base.
constexpr uint64_t kData = 0, kIer = 1, kIir = 2, kFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7;

class SerialTest : public ::testing::Test {
 protected:
  SerialTest() : irq_(4), serial_(irq_.line(), [this](std::span<const uint8_t> bytes) { output_.append(bytes.begin(), bytes.end()); }) {}

  uint8_t in(uint64_t offset) {
    uint8_t value = 0;
    serial_.read(offset, {&value, 1});
    return value;
  }
  void out(uint64_t offset, uint8_t value) { serial_.write(offset, {&value, 1}); }
  size_t receive(const std::string& text) {
    return serial_.receive({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  }

  testing::RecordedLine irq_;
  std::string output_;
  Serial16550 serial_;
};

TEST_F(SerialTest, TransmittedBytesGoToTheSink) {
  for (char c : std::string("hello\n")) out(kData, static_cast<uint8_t>(c));
  EXPECT_EQ(output_, "hello\n");
}

TEST_F(SerialTest, MultiByteWriteTouchesConsecutiveRegisters) {
  uint8_t bytes[2] = {'A', 0x00};  // THR then IER
  serial_.write(kData, bytes);
  EXPECT_EQ(output_, "A");
  EXPECT_EQ(in(kIer), 0x00);
}

TEST_F(SerialTest, LineStatusShowsTransmitterEmptyAndDataReady) {
  EXPECT_EQ(in(kLsr), 0x60) << "THRE | TEMT, no data";
  out(kData, 'x');
  EXPECT_EQ(in(kLsr), 0x60) << "transmission is instantaneous";
  EXPECT_EQ(receive("ab"), 2u);
  EXPECT_EQ(in(kLsr), 0x61) << "data ready";
  EXPECT_EQ(in(kData), 'a');
  EXPECT_EQ(in(kLsr), 0x61);
  EXPECT_EQ(in(kData), 'b');
  EXPECT_EQ(in(kLsr), 0x60);
  EXPECT_EQ(in(kData), 0) << "empty receiver reads 0";
}

TEST_F(SerialTest, IirReportsFifoEnabledBits) {
  EXPECT_EQ(in(kIir), 0x01) << "no interrupt, FIFOs off";
  out(kFcr, 0x01);
  EXPECT_EQ(in(kIir), 0xC1) << "FIFOs enabled";
  out(kFcr, 0x00);
  EXPECT_EQ(in(kIir), 0x01);
}

TEST_F(SerialTest, FcrClearReceiveEmptiesTheFifo) {
  receive("abc");
  out(kFcr, 0x03);  // enable + clear RX
  EXPECT_EQ(in(kLsr) & 0x01, 0);
  EXPECT_EQ(in(kData), 0);
}

TEST_F(SerialTest, LoopbackMapsModemControlToModemStatus) {
  out(kMcr, 0x10 | 0x01);  // LOOP + DTR
  EXPECT_EQ(in(kMsr), 0x20) << "DTR -> DSR";
  out(kMcr, 0x10 | 0x02);
  EXPECT_EQ(in(kMsr), 0x10) << "RTS -> CTS";
  out(kMcr, 0x10 | 0x04);
  EXPECT_EQ(in(kMsr), 0x40) << "OUT1 -> RI";
  out(kMcr, 0x10 | 0x08);
  EXPECT_EQ(in(kMsr), 0x80) << "OUT2 -> DCD";
  out(kMcr, 0x1F);
  EXPECT_EQ(in(kMsr), 0xF0);
  out(kMcr, 0x10);
  EXPECT_EQ(in(kMsr), 0x00);
}

TEST_F(SerialTest, ModemStatusWithoutLoopbackShowsAnAttachedTerminal) {
  EXPECT_EQ(in(kMsr), 0xB0) << "DCD | DSR | CTS";
  out(kMcr, 0x0B);  // DTR | RTS | OUT2, as Linux sets them
  EXPECT_EQ(in(kMsr), 0xB0);
  EXPECT_EQ(in(kMcr), 0x0B);
}

TEST_F(SerialTest, LoopbackSendsTransmittedBytesToTheReceiverNotTheSink) {
  out(kMcr, 0x10);
  out(kData, 0x5A);
  EXPECT_TRUE(output_.empty());
  EXPECT_EQ(in(kLsr) & 0x01, 0x01);
  EXPECT_EQ(in(kData), 0x5A);
  out(kMcr, 0x00);
  out(kData, 'z');
  EXPECT_EQ(output_, "z");
}

TEST_F(SerialTest, DlabSelectsTheDivisorLatch) {
  EXPECT_EQ(in(kLcr), 0x00);
  out(kLcr, 0x80);
  EXPECT_EQ(in(kData), 12) << "power-on divisor: 9600 baud";
  EXPECT_EQ(in(kIer), 0);
  out(kData, 0x01);  // DLL: 115200 baud
  out(kIer, 0x00);   // DLM
  EXPECT_EQ(in(kData), 0x01);
  EXPECT_EQ(in(kIer), 0x00);
  out(kIer, 0x12);
  EXPECT_EQ(in(kIer), 0x12);
  EXPECT_TRUE(output_.empty()) << "divisor writes are not data";
  out(kLcr, 0x03);  // 8N1, DLAB off
  EXPECT_EQ(in(kLcr), 0x03);
  EXPECT_EQ(in(kIer), 0x00) << "IER, not DLM, once DLAB is off";
  out(kData, 'k');
  EXPECT_EQ(output_, "k");
  EXPECT_EQ(irq_.changes(), 0u) << "DLM writes never enabled interrupts";
}

TEST_F(SerialTest, ScratchRegisterHoldsAByte) {
  out(kScr, 0xA5);
  EXPECT_EQ(in(kScr), 0xA5);
}

TEST_F(SerialTest, IerKeepsOnlyTheLowNibble) {
  out(kIer, 0xFF);
  EXPECT_EQ(in(kIer), 0x0F);
}

TEST_F(SerialTest, ThreInterruptWhenEnabledAndClearedByReadingIir) {
  EXPECT_FALSE(irq_.level());
  out(kIer, 0x02);  // ETBEI
  EXPECT_TRUE(irq_.level()) << "THR is empty: enabling ETBEI raises THRE at once";
  EXPECT_EQ(in(kIir), 0x02);
  EXPECT_FALSE(irq_.level()) << "reading IIR acknowledges THRE";
  EXPECT_EQ(in(kIir), 0x01);
  out(kData, 'a');
  EXPECT_TRUE(irq_.level()) << "THR empty again after the byte went out";
  out(kIer, 0x00);
  EXPECT_FALSE(irq_.level()) << "disabling ETBEI drops the line";
  EXPECT_EQ(irq_.levels->size(), 4u);
}

TEST_F(SerialTest, NoThreInterruptWhileDisabled) {
  out(kData, 'a');
  out(kData, 'b');
  EXPECT_EQ(irq_.changes(), 0u);
  EXPECT_EQ(in(kIir), 0x01);
}

TEST_F(SerialTest, ReceivedDataRaisesTheInterruptUntilDrained) {
  out(kIer, 0x01);  // ERBFI
  EXPECT_FALSE(irq_.level());
  receive("hi");
  EXPECT_TRUE(irq_.level());
  EXPECT_EQ(in(kIir), 0x04);
  EXPECT_TRUE(irq_.level()) << "reading IIR does not acknowledge received data";
  EXPECT_EQ(in(kData), 'h');
  EXPECT_TRUE(irq_.level());
  EXPECT_EQ(in(kData), 'i');
  EXPECT_FALSE(irq_.level());
}

TEST_F(SerialTest, ReceivedDataOutranksThre) {
  out(kIer, 0x03);
  receive("x");
  EXPECT_EQ(in(kIir), 0x04);
  EXPECT_EQ(in(kData), 'x');
  EXPECT_EQ(in(kIir), 0x02) << "THRE still pending once data is read";
  EXPECT_EQ(in(kIir), 0x01);
}

TEST_F(SerialTest, NoReceiveInterruptWhileDisabled) {
  receive("x");
  EXPECT_EQ(irq_.changes(), 0u);
  out(kIer, 0x01);
  EXPECT_TRUE(irq_.level()) << "enabling ERBFI with data waiting raises it";
}

TEST_F(SerialTest, ReceiveStopsAtTheInputLimit) {
  std::vector<uint8_t> lots(Serial16550::kInputLimit + 10, 'q');
  EXPECT_EQ(serial_.receive(lots), Serial16550::kInputLimit);
  EXPECT_EQ(receive("more"), 0u);
  EXPECT_EQ(in(kData), 'q');
  EXPECT_EQ(receive("ab"), 1u) << "one byte of room after one was read";
}

TEST_F(SerialTest, LoopbackRespectsTheInputLimit) {
  std::vector<uint8_t> lots(Serial16550::kInputLimit, 'q');
  ASSERT_EQ(serial_.receive(lots), Serial16550::kInputLimit);
  out(kMcr, 0x10);
  out(kData, 'z');  // dropped: the receiver is full
  out(kMcr, 0x00);
  for (size_t i = 0; i < Serial16550::kInputLimit; ++i) ASSERT_EQ(in(kData), 'q') << i;
  EXPECT_EQ(in(kLsr) & 0x01, 0);
}

TEST_F(SerialTest, ResetRestoresPowerOnStateButKeepsInput) {
  out(kIer, 0x03);
  out(kLcr, 0x83);
  out(kData, 0x01);
  out(kMcr, 0x1F);
  out(kScr, 0x42);
  out(kFcr, 0x01);
  receive("k");
  ASSERT_TRUE(irq_.level());
  serial_.reset();
  EXPECT_FALSE(irq_.level());
  EXPECT_EQ(in(kIer), 0);
  EXPECT_EQ(in(kLcr), 0);
  EXPECT_EQ(in(kMcr), 0);
  EXPECT_EQ(in(kScr), 0);
  EXPECT_EQ(in(kIir), 0x01);
  out(kLcr, 0x80);
  EXPECT_EQ(in(kData), 12);
  out(kLcr, 0x00);
  EXPECT_EQ(in(kData), 'k');
}

TEST(Serial16550, WorksWithoutASinkOrInterruptLine) {
  Serial16550 serial(InterruptLine(), nullptr);
  uint8_t value = 'a';
  serial.write(kData, {&value, 1});
  value = 0x02;
  serial.write(kIer, {&value, 1});
  serial.read(kIir, {&value, 1});
  EXPECT_EQ(value, 0x02);
}

}  // namespace
}  // namespace vmmd

namespace vmmd {
namespace {

TEST_F(SerialTest, StateCarriesRegistersAndUnreadInput) {
  out(kLcr, 0x80);  // DLAB: the divisor
  out(kData, 0x01);
  out(kIer, 0x00);
  out(kLcr, 0x03);  // 8N1
  out(kMcr, 0x0B);
  out(kScr, 0x5A);
  out(kIer, 0x01);  // interrupt on received data
  receive("hi");
  ASSERT_TRUE(irq_.level());

  testing::RecordedLine target_irq(4);
  Serial16550 target(target_irq.line(), [](std::span<const uint8_t>) {});
  auto saved = testing::expectRoundTrip(serial_, target);
  EXPECT_TRUE(target_irq.level()) << "the line is driven to the loaded state";
  auto read = [&](uint64_t offset) {
    uint8_t value = 0;
    target.read(offset, {&value, 1});
    return value;
  };
  EXPECT_EQ(read(kScr), 0x5A);
  EXPECT_EQ(read(kMcr), 0x0B);
  EXPECT_EQ(read(kLcr), 0x03);
  EXPECT_EQ(read(kIer), 0x01);
  EXPECT_EQ(read(kLsr) & 0x01, 0x01) << "data ready";
  EXPECT_EQ(read(kData), 'h');
  EXPECT_EQ(read(kData), 'i');
  EXPECT_EQ(read(kLsr) & 0x01, 0x00);
  EXPECT_FALSE(target_irq.level());

  Serial16550 hostile(testing::RecordedLine(4).line(), [](std::span<const uint8_t>) {});
  testing::expectHostileStatesRefused(hostile, saved);
}

}  // namespace
}  // namespace vmmd
