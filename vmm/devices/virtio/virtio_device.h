// A virtio device model, independent of its transport. The transport negotiates features, owns
// the queues' configuration, and tells the device when the driver is ready and when it kicks.
#pragma once

#include <cstdint>
#include <span>
#include <algorithm>
#include <mutex>
#include <string>

#include "vmm/devices/virtio/virtqueue.h"

namespace vmmd::virtio {

// Feature bits the transport handles (virtio 1.x, section 6).
constexpr uint64_t kFeatureIndirectDesc = 1ull << 28;
constexpr uint64_t kFeatureEventIdx = 1ull << 29;
constexpr uint64_t kFeatureVersion1 = 1ull << 32;
constexpr uint64_t kFeatureAccessPlatform = 1ull << 33;

// What a device may ask of its transport.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual Virtqueue& queue(uint16_t index) = 0;
  // Signals the driver that queue `index` has used buffers (if it wants to be told).
  virtual void signalUsed(uint16_t index) = 0;
  // The device found the driver's input broken: DEVICE_NEEDS_RESET, logged, nothing more runs.
  virtual void fail(const std::string& why) = 0;
  virtual uint64_t negotiatedFeatures() const = 0;
  // The device configuration changed (e.g. link status): tell the driver.
  virtual void configChanged() = 0;
  // Held while the device touches its queues from a main-loop callback of its own (an I/O
  // completion, a socket event): a vCPU may be resetting the device at the same moment.
  // Kicks and activate/reset already run with it held.
  virtual std::unique_lock<std::recursive_mutex> lock() = 0;
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;
  virtual uint16_t deviceType() const = 0;   // 1 net, 2 block, 3 console, 4 entropy
  virtual uint32_t pciClass() const = 0;      // class << 16 | subclass << 8 | prog-if
  virtual const char* name() const = 0;       // for messages: "virtio-rng-pci"
  virtual uint64_t deviceFeatures() const = 0;  // device-specific bits
  virtual uint16_t queueCount() const = 0;
  virtual uint16_t queueMaxSize() const { return 256; }
  virtual void readConfig(uint64_t, std::span<uint8_t> data) { std::fill(data.begin(), data.end(), 0); }
  virtual void writeConfig(uint64_t, std::span<const uint8_t>) {}
  // Called once by the transport that owns the device.
  virtual void bind(Transport& transport) { (void)transport; }
  // DRIVER_OK: the queues the driver enabled are configured.
  virtual void activate(Transport& transport) = 0;
  // The driver kicked `queue` (runs on the main loop thread, never on a vCPU thread).
  virtual void kick(uint16_t queue) = 0;
  // Device reset (status 0) or machine reset: drop everything in flight.
  virtual void reset() = 0;
  // Waits until no request is being served off the main thread (before reset and teardown,
  // so nothing writes into guest memory that is about to be reused or unmapped).
  virtual void quiesce() {}
};

}  // namespace vmmd::virtio
