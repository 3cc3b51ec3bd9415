// A device's saved state, for migration and snapshots: which device it belongs to, the version
// of its format, and its fields as bytes. Fields are written and read back in one order by the
// device itself (StateWriter / StateReader, little-endian), so the format lives beside the
// device it belongs to; a new field is a new version.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "base/result.h"

namespace vmmd {

struct DeviceState {
  std::string kind;       // the device's name(): a state is loaded only into the same kind
  uint32_t version = 0;   // of the device's format
  std::vector<uint8_t> bytes;
};

class StateWriter {
 public:
  void u8(uint8_t value) { put(&value, 1); }
  void u16(uint16_t value) { put(&value, 2); }
  void u32(uint32_t value) { put(&value, 4); }
  void u64(uint64_t value) { put(&value, 8); }
  void boolean(bool value) { u8(value ? 1 : 0); }
  // Length-prefixed, so a reader can check it and a nested state keeps its boundary.
  void bytes(std::span<const uint8_t> data);
  void string(const std::string& text);
  void state(const DeviceState& nested);
  // A plain struct as its bytes, length-prefixed: the kernel's uapi structs (kvm_regs...), whose
  // layout is the kernel's stable ABI.
  template <typename T>
  void object(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes({reinterpret_cast<const uint8_t*>(&value), sizeof value});
  }

  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  void put(const void* data, size_t size);
  std::vector<uint8_t> out_;
};

// Reads fields back in the order they were written. A read past the end, or a malformed field,
// makes every later read return zero and finish() report where it went wrong.
class StateReader {
 public:
  explicit StateReader(std::span<const uint8_t> data) : data_(data) {}

  uint8_t u8() { return get<uint8_t>(); }
  uint16_t u16() { return get<uint16_t>(); }
  uint32_t u32() { return get<uint32_t>(); }
  uint64_t u64() { return get<uint64_t>(); }
  bool boolean();
  std::vector<uint8_t> bytes();
  std::string string();
  DeviceState state();
  // What object() wrote; a length other than sizeof(T) is refused (and reads as zero).
  template <typename T>
  T object() {
    static_assert(std::is_trivially_copyable_v<T>);
    T value{};
    auto raw = bytes();
    if (raw.size() != sizeof value) {
      reject("a field of " + std::to_string(raw.size()) + " bytes where " + std::to_string(sizeof value) + " belong");
    } else {
      std::memcpy(&value, raw.data(), sizeof value);
    }
    return value;
  }

  // A read has failed (or reject() was called): later reads return zero.
  bool failed() const { return !error_.empty(); }
  // Marks the state as unusable (a field the reader refuses), with why.
  void reject(const std::string& why);
  // An error naming `what` if any read failed or if bytes are left over.
  Status finish(const std::string& what) const;

 private:
  bool take(void* out, size_t size);
  template <typename T>
  T get() {
    T value;
    take(&value, sizeof value);
    return value;
  }
  std::span<const uint8_t> data_;
  size_t at_ = 0;
  std::string error_;
};

// The error a state that is not `kind` version `version` gets (none when it is).
Status checkState(const DeviceState& state, const std::string& kind, uint32_t version);

}  // namespace vmmd
