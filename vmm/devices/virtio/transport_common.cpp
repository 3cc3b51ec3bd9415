#include "vmm/devices/virtio/transport_common.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <string>

namespace vmmd::virtio {

uint32_t featureWord(uint64_t features, uint32_t select) {
  return select < 2 ? static_cast<uint32_t>(features >> (32 * select)) : 0;
}

void writeFeatureWord(uint64_t& features, uint32_t select, uint32_t value, uint8_t status) {
  if ((status & kStatusFeaturesOk) || select >= 2) return;
  uint64_t shift = 32 * select;
  features = (features & ~(0xFFFFFFFFull << shift)) | (uint64_t{value} << shift);
}

void setAddressHalf(uint64_t& field, bool high, uint32_t value) {
  field = high ? (field & 0xFFFFFFFFull) | (uint64_t{value} << 32) : (field & ~0xFFFFFFFFull) | value;
}

uint8_t acceptStatus(uint8_t current, uint8_t written, uint64_t driver_features, uint64_t offered) {
  uint8_t added = static_cast<uint8_t>(written & ~current);
  if ((added & kStatusFeaturesOk) && ((driver_features & ~offered) || !(driver_features & kFeatureVersion1))) {
    written &= static_cast<uint8_t>(~kStatusFeaturesOk);
  }
  constexpr uint8_t kDriverBits = kStatusAcknowledge | kStatusDriver | kStatusDriverOk | kStatusFeaturesOk | kStatusFailed;
  return static_cast<uint8_t>((written & kDriverBits) | (current & kStatusNeedsReset));
}

void writeDeviceStatus(VirtioDevice& device, uint8_t& status, bool& active, uint8_t written, uint64_t driver_features) {
  uint8_t added = static_cast<uint8_t>(written & ~status);
  status = acceptStatus(status, written, driver_features, offeredFeatures(device));
  if ((added & kStatusDriverOk) && !active && !(status & kStatusNeedsReset)) {
    active = true;
    device.activate();
  }
}

void QueueRegisters::clear() {
  queue.reset();
  size = 0;
  enabled = false;
  desc = driver = device = 0;
}

Status enableQueue(QueueRegisters& q, const GuestMemory& memory, uint16_t max_size, uint64_t driver_features) {
  uint16_t size = q.size ? q.size : max_size;
  if (size > max_size) return Error("size " + std::to_string(size) + " above the maximum " + std::to_string(max_size));
  if (auto st = q.queue.configure(memory, {size, q.desc, q.driver, q.device}, driver_features & kFeatureEventIdx); !st) return st;
  q.size = size;
  q.enabled = true;
  return {};
}

void saveQueue(StateWriter& out, const QueueRegisters& q) {
  out.u16(q.size);
  out.boolean(q.enabled);
  out.u64(q.desc);
  out.u64(q.driver);
  out.u64(q.device);
  Virtqueue::Position position = q.queue.position();
  out.u16(position.next_avail);
  out.u16(position.next_used);
  out.u16(position.signalled_used);
}

SavedQueue loadQueueRegisters(StateReader& in, QueueRegisters& q) {
  SavedQueue saved;
  q.size = in.u16();
  saved.enabled = in.boolean();
  q.desc = in.u64();
  q.driver = in.u64();
  q.device = in.u64();
  saved.position = {in.u16(), in.u16(), in.u16()};
  return saved;
}

Status restoreQueue(QueueRegisters& q, const SavedQueue& saved, const GuestMemory& memory, uint16_t max_size,
                    uint64_t driver_features) {
  if (!saved.enabled) return {};
  if (auto st = enableQueue(q, memory, max_size, driver_features); !st) return st;
  q.queue.setPosition(saved.position);
  return {};
}

UniqueFd makeEventFd() { return UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)); }

void signalEventFd(int fd) {
  uint64_t one = 1;
  (void)!::write(fd, &one, sizeof one);
}

void drainEventFd(int fd) {
  uint64_t count;
  while (::read(fd, &count, sizeof count) > 0) {
  }
}

}  // namespace vmmd::virtio
