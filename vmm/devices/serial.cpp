#include "vmm/devices/serial.h"

namespace vmmd {
namespace {

// Register offsets and bits (National Semiconductor PC16550D data sheet).
constexpr uint64_t kData = 0, kIer = 1, kIir = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7;
constexpr uint8_t kIerRxData = 0x01, kIerThre = 0x02, kIerLineStatus = 0x04;
constexpr uint8_t kIirNone = 0x01, kIirThre = 0x02, kIirRxData = 0x04, kIirFifoEnabled = 0xC0;
constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kLsrDataReady = 0x01, kLsrThre = 0x20, kLsrTemt = 0x40;
constexpr uint8_t kFcrEnable = 0x01, kFcrClearRx = 0x02;

}  // namespace

void Serial16550::read(uint64_t offset, std::span<uint8_t> data) {
  auto guard = lock();
  for (size_t i = 0; i < data.size(); ++i) data[i] = readRegister(offset + i);
  updateInterrupt();
}

void Serial16550::write(uint64_t offset, std::span<const uint8_t> data) {
  auto guard = lock();
  for (size_t i = 0; i < data.size(); ++i) writeRegister(offset + i, data[i]);
  updateInterrupt();
}

size_t Serial16550::receive(std::span<const uint8_t> bytes) {
  auto guard = lock();
  size_t room = kInputLimit > rx_.size() ? kInputLimit - rx_.size() : 0;
  size_t taken = std::min(room, bytes.size());
  rx_.insert(rx_.end(), bytes.begin(), bytes.begin() + static_cast<long>(taken));
  updateInterrupt();
  return taken;
}

void Serial16550::reset() {
  auto guard = lock();
  divisor_ = 12;
  ier_ = lcr_ = mcr_ = scr_ = fcr_ = 0;
  thr_empty_pending_ = false;
  updateInterrupt();
}

Result<DeviceState> Serial16550::saveState() const {
  auto guard = lock();
  StateWriter out;
  out.u16(divisor_);
  for (uint8_t reg : {ier_, lcr_, mcr_, scr_, fcr_}) out.u8(reg);
  out.boolean(thr_empty_pending_);
  out.boolean(irq_level_);
  out.bytes(std::vector<uint8_t>(rx_.begin(), rx_.end()));
  return DeviceState{name(), kStateVersion, out.take()};
}

Status Serial16550::loadState(const DeviceState& state) {
  if (auto st = checkState(state, name(), kStateVersion); !st) return st;
  StateReader in(state.bytes);
  uint16_t divisor = in.u16();
  uint8_t regs[5];
  for (auto& reg : regs) reg = in.u8();
  bool thr_empty_pending = in.boolean();
  bool irq_level = in.boolean();
  auto rx = in.bytes();
  if (rx.size() > kInputLimit) in.reject(std::to_string(rx.size()) + " bytes of input (at most " + std::to_string(kInputLimit) + ")");
  if (auto st = in.finish(name()); !st) return st;
  auto guard = lock();
  divisor_ = divisor;
  ier_ = regs[0], lcr_ = regs[1], mcr_ = regs[2], scr_ = regs[3], fcr_ = regs[4];
  thr_empty_pending_ = thr_empty_pending;
  rx_.assign(rx.begin(), rx.end());
  // The interrupt line is driven again to what the registers say, so KVM's view of it matches.
  irq_level_ = irq_level;
  irq_.set(irq_level_);
  updateInterrupt();
  return {};
}

uint8_t Serial16550::readRegister(uint64_t offset) {
  bool dlab = lcr_ & kLcrDlab;
  switch (offset) {
    case kData:
      if (dlab) return static_cast<uint8_t>(divisor_);
      if (rx_.empty()) return 0;
      {
        uint8_t byte = rx_.front();
        rx_.pop_front();
        return byte;
      }
    case kIer:
      return dlab ? static_cast<uint8_t>(divisor_ >> 8) : ier_;
    case kIir: {
      uint8_t iir = interruptIdentification();
      // Reading IIR acknowledges a THRE interrupt when that is what it reports.
      if ((iir & 0x0F) == kIirThre) thr_empty_pending_ = false;
      return iir;
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr:
      return static_cast<uint8_t>(kLsrThre | kLsrTemt | (rx_.empty() ? 0 : kLsrDataReady));
    case kMsr:
      return modemStatus();
    case kScr:
      return scr_;
    default:
      return 0xFF;
  }
}

void Serial16550::writeRegister(uint64_t offset, uint8_t value) {
  bool dlab = lcr_ & kLcrDlab;
  switch (offset) {
    case kData:
      if (dlab) {
        divisor_ = static_cast<uint16_t>((divisor_ & 0xFF00) | value);
        return;
      }
      if (mcr_ & kMcrLoop) {
        if (rx_.size() < kInputLimit) rx_.push_back(value);
      } else if (output_) {
        output_({&value, 1});
      }
      thr_empty_pending_ = true;  // sent at once: THR is empty again
      return;
    case kIer:
      if (dlab) {
        divisor_ = static_cast<uint16_t>((divisor_ & 0x00FF) | (value << 8));
        return;
      }
      // Enabling THRE while THR is empty raises it immediately, as on real parts.
      if ((value & kIerThre) && !(ier_ & kIerThre)) thr_empty_pending_ = true;
      ier_ = value & 0x0F;
      return;
    case kIir:  // FCR on write
      fcr_ = value & kFcrEnable;
      if (value & kFcrClearRx) rx_.clear();
      return;
    case kLcr:
      lcr_ = value;
      return;
    case kMcr:
      mcr_ = value & 0x1F;
      return;
    case kScr:
      scr_ = value;
      return;
    default:
      return;  // LSR and MSR are read-only
  }
}

uint8_t Serial16550::interruptIdentification() const {
  uint8_t fifo = (fcr_ & kFcrEnable) ? kIirFifoEnabled : 0;
  if ((ier_ & kIerRxData) && !rx_.empty()) return fifo | kIirRxData;
  if ((ier_ & kIerThre) && thr_empty_pending_) return fifo | kIirThre;
  (void)kIerLineStatus;  // no line errors are ever reported
  return fifo | kIirNone;
}

uint8_t Serial16550::modemStatus() const {
  if (mcr_ & kMcrLoop) {
    // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD (Linux's 8250 probe relies on this).
    uint8_t m = mcr_;
    return static_cast<uint8_t>(((m & 0x02) << 3) | ((m & 0x01) << 5) | ((m & 0x04) << 4) | ((m & 0x08) << 4));
  }
  return 0xB0;  // DCD, DSR, CTS: a terminal is attached
}

void Serial16550::updateInterrupt() {
  bool level = (interruptIdentification() & kIirNone) == 0;
  if (level == irq_level_) return;
  irq_level_ = level;
  irq_.set(level);
}

}  // namespace vmmd
