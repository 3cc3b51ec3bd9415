#include "vmm/devices/virtio/virtio_mmio.h"

#include <algorithm>
#include <cstring>

namespace vmmd::virtio {

Result<std::unique_ptr<VirtioMmio>> VirtioMmio::create(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory,
                                                       uint64_t base, InterruptLine irq) {
  auto mmio = std::make_unique<VirtioMmio>(std::move(device), memory, base, std::move(irq));
  VirtioDevice& dev = mmio->device();
  dev.bind(*mmio);
  mmio->queues_.resize(dev.queueCount());
  for (auto& queue : mmio->queues_) {
    queue.notify = makeEventFd();
    if (!queue.notify) return Error::fromErrno(std::string(dev.name()) + ": eventfd");
  }
  return mmio;
}

VirtioMmio::VirtioMmio(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory, uint64_t base, InterruptLine irq)
    : device_(std::move(device)), memory_(memory), base_(base), irq_(std::move(irq)) {}

void VirtioMmio::watchNotifications(const FdWatcher& watch) {
  watchKicks(watch, *device_, queues_,
             [this](uint16_t index) { return active_ && queues_[index].enabled && !(status_ & kStatusNeedsReset); });
}

Status VirtioMmio::attach(kvm::Vm* vm) {
  auto lock = device_->lock();
  vm_ = vm;
  if (!vm_) return {};
  // The old VM's registrations went with it (a reset builds a new VM); each queue's fd matches
  // the one value a driver writes to QueueNotify for it, its index.
  for (uint16_t i = 0; i < queues_.size(); ++i) {
    if (auto st = vm_->setIoeventfdMatching(queues_[i].notify.get(), base_ + kQueueNotify, 4, i); !st) {
      return st.error().withContext(device_->name());
    }
  }
  return {};
}

void VirtioMmio::resetDevice() {
  auto lock = device_->lock();
  resetLocked();
}

void VirtioMmio::resetLocked() {
  device_->reset();
  for (auto& queue : queues_) queue.clear();
  driver_features_ = 0;
  device_features_sel_ = driver_features_sel_ = 0;
  queue_sel_ = 0;
  status_ = 0;
  interrupt_status_ = 0;
  active_ = false;
  updateLine();
}

Result<DeviceState> VirtioMmio::saveState() const {
  auto lock = device_->lock();
  auto device_state = device_->saveState();
  if (!device_state) return device_state.error();
  StateWriter out;
  out.u8(status_);
  out.u64(driver_features_);
  out.u32(device_features_sel_);
  out.u32(driver_features_sel_);
  out.u32(queue_sel_);
  out.u32(interrupt_status_);
  out.u8(config_generation_);
  out.boolean(active_);
  out.u16(static_cast<uint16_t>(queues_.size()));
  for (const auto& q : queues_) saveQueue(out, q);
  out.state(*device_state);
  return DeviceState{kStateKind, kStateVersion, out.take()};
}

Status VirtioMmio::loadState(const DeviceState& state) {
  if (auto st = checkState(state, kStateKind, kStateVersion); !st) return st;
  auto lock = device_->lock();
  resetLocked();
  StateReader in(state.bytes);
  status_ = in.u8();
  driver_features_ = in.u64();
  device_features_sel_ = in.u32();
  driver_features_sel_ = in.u32();
  queue_sel_ = in.u32();
  uint32_t interrupt_status = in.u32();
  config_generation_ = in.u8();
  bool active = in.boolean();
  auto saved_queues = loadQueues(in, queues_, [](StateReader&, QueueRegisters&) {});
  if (interrupt_status & ~(kInterruptUsedBuffer | kInterruptConfigChange)) in.reject("interrupt status " + std::to_string(interrupt_status));
  DeviceState device_state = in.state();
  Status loaded = restoreQueuesAndDevice(in, queues_, saved_queues, memory_, *device_, driver_features_, device_state);
  if (!loaded) {
    resetLocked();
    return loaded;
  }
  interrupt_status_ = interrupt_status;
  updateLine();
  active_ = active;
  if (active_) device_->activate();
  kickEnabledQueues(*this, queues_);
  return {};
}

uint8_t VirtioMmio::status() const {
  auto lock = device_->lock();
  return status_;
}

void VirtioMmio::updateLine() {
  bool high = interrupt_status_ != 0;
  if (high == line_high_) return;
  line_high_ = high;
  irq_.set(high);
}

void VirtioMmio::raise(uint32_t cause) {
  interrupt_status_ |= cause;
  updateLine();
}

void VirtioMmio::signalUsed(uint16_t index) {
  auto lock = device_->lock();
  if (index >= queues_.size() || !queues_[index].queue.shouldNotify()) return;
  raise(kInterruptUsedBuffer);
}

void VirtioMmio::configChanged() {
  auto lock = device_->lock();
  ++config_generation_;
  if (active_) raise(kInterruptConfigChange);
}

void VirtioMmio::kickAgain(uint16_t index) {
  // Through the queue's notify eventfd: the loop serves it after whatever else is ready.
  if (index < queues_.size()) signalEventFd(queues_[index].notify.get());
}

void VirtioMmio::fail(const std::string& why) {
  auto lock = device_->lock();
  failure_log_.error(std::string(device_->name()) + ": " + why + "; the device needs a reset");
  status_ |= kStatusNeedsReset;
  active_ = false;
  raise(kInterruptConfigChange);
}

void VirtioMmio::read(uint64_t offset, std::span<uint8_t> data) {
  auto lock = device_->lock();
  std::fill(data.begin(), data.end(), 0);
  if (offset >= kConfigOffset) {
    device_->readConfig(offset - kConfigOffset, data);
    return;
  }
  // The control registers are 32 bits wide and read whole (4.2.2.2); anything else reads 0.
  if (data.size() != 4 || offset % 4) return;
  uint32_t value = readRegister(offset);
  std::memcpy(data.data(), &value, 4);
}

void VirtioMmio::write(uint64_t offset, std::span<const uint8_t> data) {
  auto lock = device_->lock();
  if (offset >= kConfigOffset) {
    device_->writeConfig(offset - kConfigOffset, data);
    return;
  }
  if (data.size() != 4 || offset % 4) return;
  uint32_t value;
  std::memcpy(&value, data.data(), 4);
  writeRegister(offset, value);
}

uint32_t VirtioMmio::readRegister(uint64_t offset) {
  const QueueRegisters* q = queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
  switch (offset) {
    case kMagicValue: return kMagic;
    case kVersionReg: return kVersion;
    case kDeviceId: return device_->deviceType();
    case kVendorIdReg: return kVendorId;
    case kDeviceFeatures: return featureWord(offeredFeatures(*device_), device_features_sel_);
    case kQueueNumMax: return q ? device_->queueMaxSize() : 0;  // 0: no such queue
    case kQueueReady: return q && q->enabled;
    case kInterruptStatus: return interrupt_status_;
    case kStatus: return status_;
    case kShmLenLow: case kShmLenHigh: return 0xFFFFFFFF;  // no shared memory regions (length -1)
    case kConfigGeneration: return config_generation_;
    default: return 0;  // write-only and reserved registers
  }
}

void VirtioMmio::writeRegister(uint64_t offset, uint32_t value) {
  switch (offset) {
    case kDeviceFeaturesSel: device_features_sel_ = value; return;
    case kDriverFeaturesSel: driver_features_sel_ = value; return;
    case kDriverFeatures: writeFeatureWord(driver_features_, driver_features_sel_, value, status_); return;
    case kQueueSel: queue_sel_ = value; return;
    case kQueueNotify:
      // Only reached when no ioeventfd caught the write (no VM attached, or a value that is no
      // queue's index): forward a real queue's kick the same way, drop the rest.
      if (value < queues_.size()) signalEventFd(queues_[value].notify.get());
      return;
    case kInterruptAck:
      interrupt_status_ &= ~value;
      updateLine();
      return;
    case kStatus: writeStatus(static_cast<uint8_t>(value)); return;
    default: writeQueueRegister(offset, value); return;
  }
}

void VirtioMmio::writeQueueRegister(uint64_t offset, uint32_t value) {
  if (queue_sel_ >= queues_.size()) return;  // a queue the device does not have
  QueueRegisters& q = queues_[queue_sel_];
  if (offset == kQueueReady) {
    if (value == 0) {
      // The driver takes the queue down (Linux does before deleting it). Its kicks stop being
      // served; the ring itself stays until the device is reset, as a device may hold chains.
      q.enabled = false;
    } else if (!q.enabled && !q.queue.ready()) {
      if (auto st = enableQueue(q, memory_, device_->queueMaxSize(), driver_features_); !st) {
        fail("queue " + std::to_string(queue_sel_) + ": " + st.error().message());
      }
    }
    return;
  }
  if (q.enabled || q.queue.ready()) return;  // fixed once the queue is enabled (until a reset)
  switch (offset) {
    case kQueueNum: q.size = static_cast<uint16_t>(std::min<uint32_t>(value, 0xFFFF)); return;  // above the maximum: enabling fails
    case kQueueDescLow: case kQueueDescHigh: setAddressHalf(q.desc, offset == kQueueDescHigh, value); return;
    case kQueueDriverLow: case kQueueDriverHigh: setAddressHalf(q.driver, offset == kQueueDriverHigh, value); return;
    case kQueueDeviceLow: case kQueueDeviceHigh: setAddressHalf(q.device, offset == kQueueDeviceHigh, value); return;
    default: return;
  }
}

void VirtioMmio::writeStatus(uint8_t status) {
  if (status == 0) {
    resetLocked();
    return;
  }
  writeDeviceStatus(*device_, status_, active_, status, driver_features_);
}

}  // namespace vmmd::virtio
