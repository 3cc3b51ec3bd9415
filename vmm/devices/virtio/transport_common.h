// What every virtio transport does the same way (virtio 1.x, sections 2.1-2.2 and 3.1): the
// feature words the driver reads and writes, the device status it may set, and enabling a queue
// from the addresses it wrote. virtio_pci and virtio_mmio map their registers onto these, so a
// driver negotiates identically over both.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "vmm/devices/device_state.h"
#include "vmm/devices/virtio/virtio_device.h"
#include "vmm/devices/virtio/virtqueue.h"
#include "vmm/platform/guest_memory.h"

namespace vmmd::virtio {

constexpr uint8_t kStatusAcknowledge = 1, kStatusDriver = 2, kStatusDriverOk = 4, kStatusFeaturesOk = 8,
                  kStatusNeedsReset = 64, kStatusFailed = 128;
// What the transport offers on top of the device's own bits.
constexpr uint64_t kTransportFeatures = kFeatureVersion1 | kFeatureEventIdx | kFeatureIndirectDesc;

inline uint64_t offeredFeatures(const VirtioDevice& device) { return device.deviceFeatures() | kTransportFeatures; }
// 32-bit window `select` (0 or 1) of a 64-bit feature set; 0 past the second.
uint32_t featureWord(uint64_t features, uint32_t select);
// The driver wrote window `select` of its features: ignored once FEATURES_OK stuck (the set is frozen).
void writeFeatureWord(uint64_t& features, uint32_t select, uint32_t value, uint8_t status);
// Half of a 64-bit queue address (the driver may write them as two 32-bit registers).
void setAddressHalf(uint64_t& field, bool high, uint32_t value);

// The device status after the driver wrote `written` (not 0: that is a reset, the transport's
// job). FEATURES_OK only sticks for a modern driver that accepted offered bits only;
// DEVICE_NEEDS_RESET is the device's to set and stays.
uint8_t acceptStatus(uint8_t current, uint8_t written, uint64_t driver_features, uint64_t offered);

// The driver wrote a non-zero device status: `status` becomes what sticks (acceptStatus), and
// DRIVER_OK newly set on a healthy device activates it (`active`). With the device's lock held.
void writeDeviceStatus(VirtioDevice& device, uint8_t& status, bool& active, uint8_t written, uint64_t driver_features);

// One queue's registers as the driver programs them, and the ring they describe once enabled.
struct QueueRegisters {
  Virtqueue queue;
  uint16_t size = 0;  // 0: not written, the device's maximum applies
  bool enabled = false;
  uint64_t desc = 0, driver = 0, device = 0;
  UniqueFd notify;  // eventfd the queue's kicks arrive on (ioeventfd, or written by the transport)

  // Back to power-on values (the eventfd stays).
  void clear();
};

// Enables `q` with the size and addresses the driver wrote: the size checked against the device's
// maximum, the rings against guest memory (Virtqueue::configure).
Status enableQueue(QueueRegisters& q, const GuestMemory& memory, uint16_t max_size, uint64_t driver_features);

// Saved state of one queue as both transports keep it: size, enabled, ring addresses and the
// device's position in the rings (virtio-blk is drained first, so nothing is in flight).
void saveQueue(StateWriter& out, const QueueRegisters& q);
struct SavedQueue {
  bool enabled = false;
  Virtqueue::Position position;
};
// Reads what saveQueue wrote into `q`'s registers; the ring is set up by restoreQueue.
SavedQueue loadQueueRegisters(StateReader& in, QueueRegisters& q);
// Enables a queue that was enabled (its rings checked against guest memory again) and puts the
// device where it was in them.
Status restoreQueue(QueueRegisters& q, const SavedQueue& saved, const GuestMemory& memory, uint16_t max_size,
                    uint64_t driver_features);

// A transport's saved queues: the count (it must be this device's), then per queue the fields of
// saveQueue and whatever `extra(in, queue)` reads after them (virtio-pci's MSI-X vector).
template <typename Queue, typename Extra>
std::vector<SavedQueue> loadQueues(StateReader& in, std::vector<Queue>& queues, Extra extra) {
  if (uint16_t count = in.u16(); count != queues.size()) {
    in.reject(std::to_string(count) + " queues, this device has " + std::to_string(queues.size()));
  }
  std::vector<SavedQueue> saved;
  for (auto& q : queues) {
    saved.push_back(loadQueueRegisters(in, q));
    extra(in, q);
  }
  return saved;
}

// The end of a transport's load: the reader must be done, every queue that was enabled is
// enabled again, then the device takes its own state. An error names the device (and queue).
template <typename Queue>
Status restoreQueuesAndDevice(const StateReader& in, std::vector<Queue>& queues, const std::vector<SavedQueue>& saved,
                              const GuestMemory& memory, VirtioDevice& device, uint64_t driver_features,
                              const DeviceState& device_state) {
  if (auto st = in.finish(device.name()); !st) return st;
  for (size_t i = 0; i < queues.size(); ++i) {
    if (auto st = restoreQueue(queues[i], saved[i], memory, device.queueMaxSize(), driver_features); !st) {
      return st.error().withContext("queue " + std::to_string(i));
    }
  }
  return device.loadState(device_state);
}

// After a load: serves every enabled queue once, as if kicked, so requests the driver offered
// before the source stopped are not left waiting for a kick that already came.
template <typename Queue>
void kickEnabledQueues(Transport& transport, const std::vector<Queue>& queues) {
  for (uint16_t index = 0; index < queues.size(); ++index) {
    if (queues[index].enabled) transport.kickAgain(index);
  }
}

// An eventfd for kicks or interrupts (non-blocking, close-on-exec); one count added to one; all
// counts taken from one (what the main loop does before serving a kick).
UniqueFd makeEventFd();
void signalEventFd(int fd);
void drainEventFd(int fd);

// How a transport asks the main loop to call `on_readable` whenever `fd` (a queue's notify
// eventfd) becomes readable.
using FdWatcher = std::function<void(int fd, std::function<void()> on_readable)>;

// Watches each queue's notify eventfd: when one is readable the loop drains it and, with the
// device's lock held, kicks the device if `runs(index)` says the queue is served (device active,
// queue enabled, no DEVICE_NEEDS_RESET). `Queue` is QueueRegisters or a transport's extension.
template <typename Queue, typename Runs>
void watchKicks(const FdWatcher& watch, VirtioDevice& device, std::vector<Queue>& queues, Runs runs) {
  for (uint16_t index = 0; index < queues.size(); ++index) {
    int fd = queues[index].notify.get();
    watch(fd, [&device, runs, index, fd] {
      drainEventFd(fd);
      auto lock = device.lock();
      if (!device.ioStopped() && runs(index)) device.kick(index);
    });
  }
}

}  // namespace vmmd::virtio
