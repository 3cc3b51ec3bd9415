#include "vmm/devices/i8042.h"

#include <algorithm>

namespace vmmd {
namespace {

constexpr uint8_t kStatusOutputFull = 0x01, kStatusSystemFlag = 0x04, kStatusUnlocked = 0x10;
constexpr uint8_t kAck = 0xFA, kSelfTestPassed = 0x55, kKeyboardResetDone = 0xAA;
constexpr size_t kMaxQueued = 16;  // a guest that never reads cannot grow the queue

}  // namespace

void I8042::Port::read(uint64_t, std::span<uint8_t> data) {
  auto guard = controller.lock();
  uint8_t value = command ? controller.readStatus() : controller.readData();
  std::fill(data.begin(), data.end(), value);
}

void I8042::Port::write(uint64_t, std::span<const uint8_t> data) {
  if (data.empty()) return;
  auto guard = controller.lock();
  if (command) {
    controller.writeCommand(data[0]);
  } else {
    controller.writeData(data[0]);
  }
}

void I8042::reset() {
  auto guard = lock();
  output_.clear();
  last_output_ = 0;
  command_byte_ = 0x45;
  pending_command_ = pending_keyboard_ = 0;
}

Result<DeviceState> I8042::saveState() const {
  auto guard = lock();
  StateWriter out;
  out.u8(command_byte_);
  out.u8(pending_command_);
  out.u8(pending_keyboard_);
  out.u8(last_output_);
  out.bytes(std::vector<uint8_t>(output_.begin(), output_.end()));
  return DeviceState{name(), kStateVersion, out.take()};
}

Status I8042::loadState(const DeviceState& state) {
  if (auto st = checkState(state, name(), kStateVersion); !st) return st;
  StateReader in(state.bytes);
  uint8_t command_byte = in.u8(), pending_command = in.u8(), pending_keyboard = in.u8(), last_output = in.u8();
  auto output = in.bytes();
  // The device never queues more than kMaxQueued reply bytes.
  if (output.size() > kMaxQueued) in.reject(std::to_string(output.size()) + " queued reply bytes");
  if (auto st = in.finish(name()); !st) return st;
  auto guard = lock();
  command_byte_ = command_byte;
  pending_command_ = pending_command;
  pending_keyboard_ = pending_keyboard;
  last_output_ = last_output;
  output_.assign(output.begin(), output.end());
  return {};
}

void I8042::reply(std::initializer_list<uint8_t> bytes) {
  for (uint8_t byte : bytes) {
    if (output_.size() < kMaxQueued) output_.push_back(byte);
  }
}

uint8_t I8042::readStatus() const {
  return static_cast<uint8_t>(kStatusSystemFlag | kStatusUnlocked | (output_.empty() ? 0 : kStatusOutputFull));
}

uint8_t I8042::readData() {
  if (!output_.empty()) {
    last_output_ = output_.front();
    output_.pop_front();
  }
  return last_output_;  // an empty buffer repeats the last byte, as the chip's latch does
}

void I8042::writeCommand(uint8_t value) {
  pending_command_ = 0;
  switch (value) {
    case 0x20: reply({command_byte_}); break;               // read command byte
    case 0x60: case 0xD1: case 0xD2: case 0xD3: case 0xD4:  // the next data byte is this command's
      pending_command_ = value;
      break;
    case 0xAA: reply({kSelfTestPassed}); break;             // controller self-test
    case 0xAB: case 0xA9: reply({0x00}); break;             // keyboard / aux interface test: ok
    case 0xAD: command_byte_ |= 0x10; break;                // disable keyboard
    case 0xAE: command_byte_ &= static_cast<uint8_t>(~0x10); break;
    case 0xA7: command_byte_ |= 0x20; break;                // disable aux
    case 0xA8: command_byte_ &= static_cast<uint8_t>(~0x20); break;
    default:
      // 0xF0-0xFF pulse the output port lines whose bit is clear; bit 0 is the CPU reset line.
      if (value >= 0xF0 && !(value & 0x01)) on_request_(PowerRequest::Reset);
      break;
  }
}

void I8042::writeData(uint8_t value) {
  uint8_t command = pending_command_;
  pending_command_ = 0;
  switch (command) {
    case 0x60: command_byte_ = value; return;
    case 0xD1:  // write output port: bit 0 low holds the CPU in reset
      if (!(value & 0x01)) on_request_(PowerRequest::Reset);
      return;
    case 0xD2: reply({value}); return;  // as if from the keyboard
    case 0xD3: case 0xD4: return;       // to the aux port: no mouse here, no answer
    default: keyboardCommand(value); return;
  }
}

void I8042::keyboardCommand(uint8_t value) {
  if (pending_keyboard_) {  // the argument of set LEDs / typematic rate
    pending_keyboard_ = 0;
    reply({kAck});
    return;
  }
  switch (value) {
    case 0xFF: output_.clear(); reply({kAck, kKeyboardResetDone}); break;
    case 0xF2: reply({kAck, 0xAB, 0x83}); break;  // identify: an MF2 keyboard
    case 0xED: case 0xF3: pending_keyboard_ = value; reply({kAck}); break;
    case 0xEE: reply({0xEE}); break;              // echo
    default: reply({kAck}); break;
  }
}

void SystemControlPortA::read(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), uint8_t{0x02});  // A20 enabled
}

void SystemControlPortA::write(uint64_t, std::span<const uint8_t> data) {
  if (!data.empty() && (data[0] & 0x01)) on_request_(PowerRequest::Reset);
}

}  // namespace vmmd
