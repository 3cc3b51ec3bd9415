// A virtio Transport without a PCI bus, for driving a device model directly from a test or a
// benchmark: it owns the device's queues (one DriverHarness each, all on one GuestMemory), plays
// the parts of the PCI transport a device sees (DRIVER_OK, kicks, interrupts, DEVICE_NEEDS_RESET)
// and records what the device asked of it.
#pragma once

#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tests/vmm/devices/virtio/virtio_driver_harness.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace vmmd::virtio::testing {

class HarnessTransport : public Transport {
 public:
  // Queue i's rings start at (i + 1) * kQueueStride; DriverHarness::kData up to kQueueStride is
  // free for the test's buffers.
  static constexpr uint64_t kQueueStride = 16ull << 20;
  static constexpr uint64_t memoryFor(uint16_t queues) { return (queues + 1ull) * kQueueStride; }

  HarnessTransport(GuestMemory& memory, VirtioDevice& device, uint16_t queue_size, uint64_t features)
      : memory_(memory), device_(device), features_(features) {
    for (uint16_t i = 0; i < device.queueCount(); ++i) {
      drivers_.emplace_back(memory, queue_size, (i + 1ull) * kQueueStride);
    }
    queues_.resize(device.queueCount());
    signals_.resize(device.queueCount());
    kicks_asked_.resize(device.queueCount());
    device_.bind(*this);
  }
  ~HarnessTransport() override {
    if (active_) {
      device_.quiesce();
      device_.reset();
    }
  }

  // FEATURES_OK + queue setup + DRIVER_OK, as a driver does it.
  Status start() {
    bool event_idx = features_ & kFeatureEventIdx;
    for (size_t i = 0; i < queues_.size(); ++i) {
      if (auto st = queues_[i].configure(memory_, drivers_[i].layout(), event_idx); !st) return st;
    }
    auto lock = device_.lock();
    active_ = true;
    device_.activate();
    return {};
  }
  // The driver's notification: like the PCI transport, a broken or inactive device is not kicked.
  void kick(uint16_t index) {
    auto lock = device_.lock();
    if (active_ && !broken()) device_.kick(index);
  }
  // Device reset (status 0): waits for requests in flight, then resets.
  void resetDevice() {
    device_.quiesce();
    auto lock = device_.lock();
    device_.reset();
    active_ = false;
    for (auto& queue : queues_) queue.reset();
  }

  DriverHarness& driver(uint16_t index) { return drivers_[index]; }
  bool broken() const { return !failures_.empty(); }
  const std::vector<std::string>& failures() const { return failures_; }
  unsigned interrupts(uint16_t index) const { return signals_[index]; }
  unsigned configChanges() const { return config_changes_; }
  // Passes the device asked for with kickAgain() and not yet run (runKicksAsked runs them).
  unsigned kicksAsked(uint16_t index) const { return kicks_asked_[index]; }
  // Runs the passes the device asked for, as the PCI transport's loop does, until it asks for none
  // or `most` passes ran; returns how many ran.
  unsigned runKicksAsked(uint16_t index, unsigned most = 1000) {
    unsigned ran = 0;
    while (kicks_asked_[index] && ran < most) {
      kicks_asked_[index] = 0;
      kick(index);
      ++ran;
    }
    return ran;
  }

  // Transport
  Virtqueue& queue(uint16_t index) override { return queues_[index]; }
  void signalUsed(uint16_t index) override {
    std::lock_guard lock(mutex_);
    if (index < queues_.size() && queues_[index].shouldNotify()) ++signals_[index];
  }
  void fail(const std::string& why) override {
    std::lock_guard lock(mutex_);
    failures_.push_back(why);
  }
  uint64_t negotiatedFeatures() const override { return features_; }
  void configChanged() override { ++config_changes_; }
  void kickAgain(uint16_t index) override {
    std::lock_guard lock(mutex_);
    ++kicks_asked_[index];
  }

 private:
  GuestMemory& memory_;
  VirtioDevice& device_;
  uint64_t features_;
  std::deque<DriverHarness> drivers_;
  std::vector<Virtqueue> queues_;
  std::vector<unsigned> signals_;
  std::vector<unsigned> kicks_asked_;
  std::vector<std::string> failures_;
  unsigned config_changes_ = 0;
  bool active_ = false;
  std::recursive_mutex mutex_;  // the counters; the device's lock guards the rest, as on PCI
};

}  // namespace vmmd::virtio::testing
