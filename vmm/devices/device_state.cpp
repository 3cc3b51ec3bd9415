#include "vmm/devices/device_state.h"

#include <cstring>

namespace vmmd {

void StateWriter::put(const void* data, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  out_.insert(out_.end(), bytes, bytes + size);
}

void StateWriter::bytes(std::span<const uint8_t> data) {
  u32(static_cast<uint32_t>(data.size()));
  put(data.data(), data.size());
}

void StateWriter::string(const std::string& text) {
  bytes({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

void StateWriter::state(const DeviceState& nested) {
  string(nested.kind);
  u32(nested.version);
  bytes(nested.bytes);
}

bool StateReader::take(void* out, size_t size) {
  if (!error_.empty()) {
    std::memset(out, 0, size);
    return false;
  }
  if (data_.size() - at_ < size) {
    reject("truncated at byte " + std::to_string(at_));
    std::memset(out, 0, size);
    return false;
  }
  std::memcpy(out, data_.data() + at_, size);
  at_ += size;
  return true;
}

bool StateReader::boolean() {
  uint8_t value = u8();
  if (value > 1) reject("byte " + std::to_string(at_ - 1) + " is not a boolean");
  return value == 1;
}

std::vector<uint8_t> StateReader::bytes() {
  uint32_t size = u32();
  if (!error_.empty() || data_.size() - at_ < size) {
    reject("truncated at byte " + std::to_string(at_));
    return {};
  }
  std::vector<uint8_t> out(data_.begin() + static_cast<std::ptrdiff_t>(at_), data_.begin() + static_cast<std::ptrdiff_t>(at_ + size));
  at_ += size;
  return out;
}

std::string StateReader::string() {
  auto raw = bytes();
  return {raw.begin(), raw.end()};
}

DeviceState StateReader::state() {
  DeviceState nested;
  nested.kind = string();
  nested.version = u32();
  nested.bytes = bytes();
  return nested;
}

void StateReader::reject(const std::string& why) {
  if (error_.empty()) error_ = why;
}

Status StateReader::finish(const std::string& what) const {
  if (!error_.empty()) return Error(what + ": bad state: " + error_);
  if (at_ != data_.size()) return Error(what + ": bad state: " + std::to_string(data_.size() - at_) + " bytes left over");
  return {};
}

Status checkState(const DeviceState& state, const std::string& kind, uint32_t version) {
  if (state.kind != kind) return Error(kind + ": the state is for " + (state.kind.empty() ? "no device" : state.kind));
  if (state.version != version) {
    return Error(kind + ": state version " + std::to_string(state.version) + " is not supported (" + std::to_string(version) + ")");
  }
  return {};
}

}  // namespace vmmd
