// A virtio device model, independent of its transport. The transport negotiates features, owns
// the queues' configuration, and tells the device when the driver is ready and when it kicks.
// Lock, reset and saved state are the Device base's; the device holds one pointer to its
// transport, bound once.
#pragma once

#include <cstdint>
#include <span>
#include <algorithm>
#include <string>

#include "vmm/devices/device.h"
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
  // Serves queue `index` again on a later turn of the main loop, as if the driver had kicked: a
  // kick handler that served its budget (kickBudget) yields with this instead of spinning for a
  // driver that keeps offering.
  virtual void kickAgain(uint16_t index) = 0;
  // virtio-mmio (microvm) rather than PCI: the device then goes by its "-device" name.
  virtual bool memoryMapped() const { return false; }
};

// The most chains one kick serves before it yields (Transport::kickAgain): a queue's size, so a
// driver that filled its ring is served in one pass, while one that keeps bumping avail.idx (and
// reusing heads the device returned at once) cannot keep the main loop, QMP and the console,
// from their turn.
inline uint32_t kickBudget(const Virtqueue& queue) { return queue.size(); }

// Device::lock() is the one lock of the device and its transport: the transport holds it around
// every register access, kick, activate and reset; the device takes it in its own callbacks.
class VirtioDevice : public Device {
 public:
  // QEMU's names of the device model on each transport ("virtio-rng-pci", "virtio-rng-device").
  struct Names {
    const char* pci;
    const char* mmio;
  };
  virtual Names names() const = 0;
  // The name for messages and saved states: the one of the transport it is bound to.
  const char* name() const final { return transport_ && transport_->memoryMapped() ? names().mmio : names().pci; }
  virtual uint16_t deviceType() const = 0;   // 1 net, 2 block, 3 console, 4 entropy
  virtual uint32_t pciClass() const = 0;      // class << 16 | subclass << 8 | prog-if
  virtual uint64_t deviceFeatures() const = 0;  // device-specific bits
  virtual uint16_t queueCount() const = 0;
  virtual uint16_t queueMaxSize() const { return 256; }
  virtual void readConfig(uint64_t, std::span<uint8_t> data) { std::fill(data.begin(), data.end(), 0); }
  virtual void writeConfig(uint64_t, std::span<const uint8_t>) {}
  // Called once by the transport that owns the device, before anything else.
  void bind(Transport& transport) { transport_ = &transport; }
  // DRIVER_OK: the queues the driver enabled are configured (until reset()).
  virtual void activate() = 0;
  // The driver kicked `queue` (runs on the main loop thread, never on a vCPU thread).
  virtual void kick(uint16_t queue) = 0;
  // Waits until no request is being served off the main thread (before reset and teardown,
  // so nothing writes into guest memory that is about to be reused or unmapped).
  virtual void quiesce() {}

  // Machine::stopDeviceIo (migration, snapshots), with the lock held: until resumeIo() the device
  // serves no kick and writes no host input (frames, console bytes, control messages) into guest
  // memory, so its state and the guest's rings stay as saved. Requests already handed to I/O
  // threads still complete: the machine drains them.
  void stopIo() {
    io_stopped_ = true;
    hostInputStopped();
  }
  void resumeIo() {
    io_stopped_ = false;
    hostInputResumed();
  }
  bool ioStopped() const { return io_stopped_; }
  // Requests handed to I/O threads whose completion has not reached the guest (virtio-blk).
  virtual size_t requestsInFlight() const { return 0; }

 protected:
  // A device with host-side input stops watching it / takes what waited (and watches again).
  virtual void hostInputStopped() {}
  virtual void hostInputResumed() {}

  Transport* transport_ = nullptr;  // bound for the device's whole life
  bool active_ = false;             // the device sets it in activate(), clears it in reset()

 private:
  bool io_stopped_ = false;
};

}  // namespace vmmd::virtio
