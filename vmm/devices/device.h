// What every device model has, in one place: its name, its lock, reset, and its state for
// migration and snapshots.
#pragma once

#include <mutex>
#include <string>

#include "base/result.h"
#include "vmm/devices/device_state.h"

namespace vmmd {

class Device {
 public:
  virtual ~Device() = default;

  virtual const char* name() const = 0;  // for messages and states: "virtio-rng-pci"
  // Device reset (by the driver, or the machine's): drop everything in flight. A virtio device's
  // transport calls it with lock() held; the legacy devices take it themselves.
  virtual void reset() = 0;

  // The device's state, taken and given back while its vCPUs are paused and lock() is held. A
  // device whose state is not written yet says so: never an empty state that loads "fine".
  virtual Result<DeviceState> saveState() const { return notSupported("saving"); }
  virtual Status loadState(const DeviceState&) { return notSupported("loading"); }

  // The device's one lock. Its transport holds it around every guest access (registers,
  // kicks, reset); the device takes it around work from its own main-loop callbacks (an I/O
  // completion, a socket event), since a vCPU may be resetting the device at the same moment.
  std::unique_lock<std::recursive_mutex> lock() const { return std::unique_lock(mutex_); }

 protected:
  Error notSupported(const std::string& what) const { return Error(std::string(name()) + ": " + what + " device state is not supported"); }

 private:
  mutable std::recursive_mutex mutex_;
};

}  // namespace vmmd
