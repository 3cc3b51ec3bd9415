#include "vmm/devices/virtio/virtio_pci.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "vmm/log/log.h"

namespace vmmd::virtio {
namespace {

constexpr uint8_t kCapVendor = 0x09, kCapMsix = 0x11;
constexpr uint8_t kCfgCommon = 1, kCfgNotify = 2, kCfgIsr = 3, kCfgDevice = 4;
constexpr uint8_t kStatusAcknowledge = 1, kStatusDriver = 2, kStatusDriverOk = 4, kStatusFeaturesOk = 8,
                  kStatusNeedsReset = 64, kStatusFailed = 128;
constexpr uint16_t kNoVector = 0xFFFF;
constexpr uint16_t kMsixEnable = 1u << 15, kMsixFunctionMask = 1u << 14;
constexpr uint64_t kTransportFeatures = kFeatureVersion1 | kFeatureEventIdx | kFeatureIndirectDesc;

// Common configuration structure offsets (virtio 1.x, 4.1.4.3).
enum CommonOffset : uint64_t {
  kDeviceFeatureSelect = 0, kDeviceFeature = 4, kDriverFeatureSelect = 8, kDriverFeature = 12, kMsixConfig = 16,
  kNumQueues = 18, kDeviceStatus = 20, kConfigGeneration = 21, kQueueSelect = 22, kQueueSize = 24,
  kQueueMsixVector = 26, kQueueEnable = 28, kQueueNotifyOff = 30, kQueueDesc = 32, kQueueDriver = 40,
  kQueueDevice = 48, kCommonSize = 56,
};

uint64_t little(std::span<const uint8_t> data) {
  uint64_t value = 0;
  std::memcpy(&value, data.data(), std::min<size_t>(data.size(), 8));
  return value;
}

std::vector<uint8_t> virtioCap(uint8_t cfg_type, uint32_t offset, uint32_t length, bool notify) {
  std::vector<uint8_t> body(notify ? 18 : 14, 0);
  body[0] = notify ? 20 : 16;  // cap_len, counting the id and next bytes
  body[1] = cfg_type;
  body[2] = 0;  // BAR 0
  std::memcpy(&body[6], &offset, 4);
  std::memcpy(&body[10], &length, 4);
  if (notify) std::memcpy(&body[14], &VirtioPci::kNotifyMultiplier, 4);
  return body;
}

UniqueFd makeEventFd() { return UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)); }

}  // namespace

Result<std::unique_ptr<VirtioPci>> VirtioPci::create(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory,
                                                     IrqRouting& routing, uint64_t bar_address) {
  auto pci = std::make_unique<VirtioPci>(std::move(device), memory, routing);
  VirtioDevice& dev = pci->device();
  dev.bind(*pci);
  pci->addMemoryBar(0, bar_address, kBarSize);
  uint16_t vectors = static_cast<uint16_t>(dev.queueCount() + 1);
  std::vector<uint8_t> msix(10, 0);
  uint16_t control = static_cast<uint16_t>(vectors - 1);
  uint32_t table = static_cast<uint32_t>(kMsixTableOffset), pba = static_cast<uint32_t>(kMsixPbaOffset);
  std::memcpy(&msix[0], &control, 2);
  std::memcpy(&msix[2], &table, 4);
  std::memcpy(&msix[6], &pba, 4);
  pci->msix_capability_ = pci->addCapability(kCapMsix, msix);
  pci->setWritable(pci->msix_capability_ + 3, 0xC0);  // enable and function-mask bits
  for (auto cap : {virtioCap(kCfgCommon, kCommonOffset, kCommonSize, false), virtioCap(kCfgIsr, kIsrOffset, 1, false),
                   virtioCap(kCfgDevice, kDeviceOffset, 0x1000, false),
                   virtioCap(kCfgNotify, kNotifyOffset, kNotifyMultiplier * dev.queueCount(), true)}) {
    pci->addCapability(kCapVendor, cap);
  }
  pci->queues_.resize(dev.queueCount());
  for (auto& queue : pci->queues_) {
    queue.notify = makeEventFd();
    if (!queue.notify) return Error::fromErrno(std::string(dev.name()) + ": eventfd");
  }
  pci->vectors_.resize(vectors);
  for (auto& vector : pci->vectors_) {
    auto gsi = routing.allocateMsiGsi();
    if (!gsi) return gsi.error();
    vector.gsi = *gsi;
    vector.irqfd = makeEventFd();
    if (!vector.irqfd) return Error::fromErrno(std::string(dev.name()) + ": eventfd");
  }
  return pci;
}

VirtioPci::VirtioPci(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory, IrqRouting& routing)
    : PciFunction({0x1AF4, static_cast<uint16_t>(0x1040 + device->deviceType()), 1, device->pciClass(), 0x1AF4,
                   static_cast<uint16_t>(0x1100)}),
      device_(std::move(device)),
      memory_(memory),
      routing_(routing) {}

void VirtioPci::watchNotifications(const FdWatcher& watch) {
  for (uint16_t index = 0; index < queues_.size(); ++index) {
    int fd = queues_[index].notify.get();
    watch(fd, [this, index, fd] {
      uint64_t count;
      while (::read(fd, &count, sizeof count) > 0) {
      }
      std::lock_guard lock(mutex_);
      if (active_ && queues_[index].enabled && !(status_ & kStatusNeedsReset)) device_->kick(index);
    });
  }
}

Status VirtioPci::attach(kvm::Vm* vm) {
  std::lock_guard lock(mutex_);
  vm_ = vm;
  registered_notify_base_ = 0;
  if (!vm_) return {};
  for (auto& vector : vectors_) {
    if (auto st = vm_->setIrqfd(vector.irqfd.get(), vector.gsi); !st) return st.error().withContext(device_->name());
  }
  return registerIoeventfds();
}

Status VirtioPci::registerIoeventfds() {
  uint64_t base = barAddress(0);
  if (!vm_ || base == registered_notify_base_) return {};
  for (uint16_t i = 0; i < queues_.size(); ++i) {
    if (registered_notify_base_) {
      (void)vm_->setIoeventfd(queues_[i].notify.get(), registered_notify_base_ + kNotifyOffset + i * kNotifyMultiplier, 2,
                              false, false);
    }
    if (base) {
      if (auto st = vm_->setIoeventfd(queues_[i].notify.get(), base + kNotifyOffset + i * kNotifyMultiplier, 2, false); !st) {
        return st.error().withContext(device_->name());
      }
    }
  }
  registered_notify_base_ = base;
  return {};
}

void VirtioPci::barsChanged() {
  std::lock_guard lock(mutex_);
  if (auto st = registerIoeventfds(); !st) log::error(st.error().message());
}

void VirtioPci::resetDevice() {
  std::lock_guard lock(mutex_);
  resetLocked();
  for (auto& vector : vectors_) {
    vector.address = 0;
    vector.data = 0;
    vector.masked = true;
    vector.pending = false;
  }
}

void VirtioPci::resetLocked() {
  device_->reset();
  for (auto& queue : queues_) {
    queue.queue.reset();
    queue.size = 0;
    queue.msix_vector = kNoVector;
    queue.enabled = false;
    queue.desc = queue.driver = queue.device = 0;
  }
  driver_features_ = 0;
  device_feature_select_ = driver_feature_select_ = 0;
  config_vector_ = kNoVector;
  queue_select_ = 0;
  status_ = 0;
  isr_ = 0;
  active_ = false;
}

uint8_t VirtioPci::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

bool VirtioPci::msixEnabled() const {
  uint16_t control;
  std::memcpy(&control, const_cast<VirtioPci*>(this)->config() + msix_capability_ + 2, 2);
  return control & kMsixEnable;
}

bool VirtioPci::msixFunctionMasked() const {
  uint16_t control;
  std::memcpy(&control, const_cast<VirtioPci*>(this)->config() + msix_capability_ + 2, 2);
  return control & kMsixFunctionMask;
}

void VirtioPci::fire(uint16_t vector) {
  if (vector >= vectors_.size()) return;  // NO_VECTOR: the driver asked for no interrupt
  Vector& v = vectors_[vector];
  if (!msixEnabled() || msixFunctionMasked() || v.masked) {
    v.pending = true;  // delivered when unmasked; INTx is not offered
    return;
  }
  uint64_t one = 1;
  (void)::write(v.irqfd.get(), &one, sizeof one);
}

void VirtioPci::updateVectorRoute(size_t index) {
  Vector& v = vectors_[index];
  if (auto st = routing_.setMsi(v.gsi, std::make_pair(v.address, v.data)); !st) {
    log::error(std::string(device_->name()) + ": MSI-X vector " + std::to_string(index) + ": " + st.error().message());
  }
  if (v.pending && msixEnabled() && !msixFunctionMasked() && !v.masked) {
    v.pending = false;
    uint64_t one = 1;
    (void)::write(v.irqfd.get(), &one, sizeof one);
  }
}

void VirtioPci::configWritten(uint16_t offset, unsigned size) {
  if (offset + size <= msix_capability_ + 2u || offset >= msix_capability_ + 4u) return;
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < vectors_.size(); ++i) updateVectorRoute(i);
}

void VirtioPci::signalUsed(uint16_t index) {
  std::lock_guard lock(mutex_);
  if (index >= queues_.size() || !queues_[index].queue.shouldNotify()) return;
  isr_ |= 1;
  fire(queues_[index].msix_vector);
}

void VirtioPci::configChanged() {
  std::lock_guard lock(mutex_);
  ++config_generation_;
  isr_ |= 2;
  if (active_) fire(config_vector_);
}

void VirtioPci::fail(const std::string& why) {
  std::lock_guard lock(mutex_);
  log::error(std::string(device_->name()) + ": " + why + "; the device needs a reset");
  status_ |= kStatusNeedsReset;
  active_ = false;
  isr_ |= 2;  // configuration change
  fire(config_vector_);
}

void VirtioPci::barRead(int, uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  std::fill(data.begin(), data.end(), 0);
  if (offset < kCommonOffset + kCommonSize) {
    readCommon(offset, data);
  } else if (offset == kIsrOffset) {
    data[0] = isr_;
    isr_ = 0;  // read to clear
  } else if (offset >= kDeviceOffset && offset < kNotifyOffset) {
    device_->readConfig(offset - kDeviceOffset, data);
  } else if (offset >= kMsixTableOffset && offset < kMsixTableOffset + 16 * vectors_.size()) {
    const Vector& v = vectors_[(offset - kMsixTableOffset) / 16];
    uint8_t entry[16];
    uint32_t control = v.masked ? 1 : 0;
    std::memcpy(entry, &v.address, 8);
    std::memcpy(entry + 8, &v.data, 4);
    std::memcpy(entry + 12, &control, 4);
    size_t at = (offset - kMsixTableOffset) % 16;
    std::memcpy(data.data(), entry + at, std::min(data.size(), 16 - at));
  } else if (offset >= kMsixPbaOffset && offset < kMsixPbaOffset + 8 * ((vectors_.size() + 63) / 64)) {
    // One pending bit per vector, 64 to a qword.
    size_t qword = (offset - kMsixPbaOffset) / 8;
    uint64_t pending = 0;
    for (size_t bit = 0; bit < 64 && qword * 64 + bit < vectors_.size(); ++bit) {
      pending |= uint64_t{vectors_[qword * 64 + bit].pending} << bit;
    }
    size_t at = (offset - kMsixPbaOffset) % 8;
    std::memcpy(data.data(), reinterpret_cast<uint8_t*>(&pending) + at, std::min(data.size(), 8 - at));
  }
}

void VirtioPci::barWrite(int, uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mutex_);
  if (offset < kCommonOffset + kCommonSize) {
    writeCommon(offset, data);
  } else if (offset >= kDeviceOffset && offset < kNotifyOffset) {
    device_->writeConfig(offset - kDeviceOffset, data);
  } else if (offset >= kNotifyOffset && offset < kNotifyOffset + kNotifyMultiplier * queues_.size()) {
    // Only reached when no ioeventfd caught the write: forward it the same way.
    uint64_t one = 1;
    (void)::write(queues_[(offset - kNotifyOffset) / kNotifyMultiplier].notify.get(), &one, sizeof one);
  } else if (offset >= kMsixTableOffset && offset < kMsixTableOffset + 16 * vectors_.size()) {
    size_t index = (offset - kMsixTableOffset) / 16;
    Vector& v = vectors_[index];
    uint8_t entry[16];
    uint32_t control = v.masked ? 1 : 0;
    std::memcpy(entry, &v.address, 8);
    std::memcpy(entry + 8, &v.data, 4);
    std::memcpy(entry + 12, &control, 4);
    size_t at = (offset - kMsixTableOffset) % 16;
    std::memcpy(entry + at, data.data(), std::min(data.size(), 16 - at));
    std::memcpy(&v.address, entry, 8);
    std::memcpy(&v.data, entry + 8, 4);
    std::memcpy(&control, entry + 12, 4);
    v.masked = control & 1;
    updateVectorRoute(index);
  }
}

void VirtioPci::readCommon(uint64_t offset, std::span<uint8_t> data) {
  uint8_t image[kCommonSize] = {};
  auto put = [&](uint64_t at, uint64_t value, size_t width) { std::memcpy(image + at, &value, width); };
  uint64_t offered = device_->deviceFeatures() | kTransportFeatures;
  put(kDeviceFeatureSelect, device_feature_select_, 4);
  put(kDeviceFeature, device_feature_select_ < 2 ? (offered >> (32 * device_feature_select_)) & 0xFFFFFFFF : 0, 4);
  put(kDriverFeatureSelect, driver_feature_select_, 4);
  put(kDriverFeature, driver_feature_select_ < 2 ? (driver_features_ >> (32 * driver_feature_select_)) & 0xFFFFFFFF : 0, 4);
  put(kMsixConfig, config_vector_, 2);
  put(kNumQueues, queues_.size(), 2);
  put(kDeviceStatus, status_, 1);
  put(kConfigGeneration, config_generation_, 1);
  put(kQueueSelect, queue_select_, 2);
  if (queue_select_ < queues_.size()) {
    const QueueState& q = queues_[queue_select_];
    put(kQueueSize, q.size ? q.size : device_->queueMaxSize(), 2);
    put(kQueueMsixVector, q.msix_vector, 2);
    put(kQueueEnable, q.enabled, 2);
    put(kQueueNotifyOff, queue_select_, 2);
    put(kQueueDesc, q.desc, 8);
    put(kQueueDriver, q.driver, 8);
    put(kQueueDevice, q.device, 8);
  }
  std::memcpy(data.data(), image + offset, std::min<size_t>(data.size(), kCommonSize - offset));
}

void VirtioPci::writeCommon(uint64_t offset, std::span<const uint8_t> data) {
  uint64_t value = little(data);
  QueueState* q = queue_select_ < queues_.size() ? &queues_[queue_select_] : nullptr;
  // 64-bit queue addresses may be written as two 32-bit halves.
  auto setHalf = [&](uint64_t& field, uint64_t base) {
    if (offset == base && data.size() == 8) {
      field = value;
    } else if (offset == base) {
      field = (field & ~0xFFFFFFFFull) | (value & 0xFFFFFFFF);
    } else {
      field = (field & 0xFFFFFFFF) | (value << 32);
    }
  };
  switch (offset) {
    case kDeviceFeatureSelect: device_feature_select_ = static_cast<uint32_t>(value); return;
    case kDriverFeatureSelect: driver_feature_select_ = static_cast<uint32_t>(value); return;
    case kDriverFeature:
      if (status_ & kStatusFeaturesOk) return;  // frozen once accepted
      if (driver_feature_select_ < 2) {
        uint64_t shift = 32 * driver_feature_select_;
        driver_features_ = (driver_features_ & ~(0xFFFFFFFFull << shift)) | ((value & 0xFFFFFFFF) << shift);
      }
      return;
    case kMsixConfig: config_vector_ = static_cast<uint16_t>(value); return;
    case kDeviceStatus: writeStatus(static_cast<uint8_t>(value)); return;
    case kQueueSelect: queue_select_ = static_cast<uint16_t>(value); return;
    default: break;
  }
  if (!q || q->enabled) return;  // queue registers are fixed once the queue is enabled
  switch (offset) {
    case kQueueSize:
      q->size = static_cast<uint16_t>(value);
      return;
    case kQueueMsixVector: q->msix_vector = static_cast<uint16_t>(value); return;
    case kQueueDesc: case kQueueDesc + 4: setHalf(q->desc, kQueueDesc); return;
    case kQueueDriver: case kQueueDriver + 4: setHalf(q->driver, kQueueDriver); return;
    case kQueueDevice: case kQueueDevice + 4: setHalf(q->device, kQueueDevice); return;
    case kQueueEnable: {
      if (value != 1) return;
      uint16_t size = q->size ? q->size : device_->queueMaxSize();
      if (size > device_->queueMaxSize()) {
        fail("queue " + std::to_string(queue_select_) + ": size " + std::to_string(size) + " above the maximum");
        return;
      }
      auto st = q->queue.configure(memory_, {size, q->desc, q->driver, q->device}, driver_features_ & kFeatureEventIdx);
      if (!st) {
        fail("queue " + std::to_string(queue_select_) + ": " + st.error().message());
        return;
      }
      q->size = size;
      q->enabled = true;
      return;
    }
    default:
      return;
  }
}

void VirtioPci::writeStatus(uint8_t status) {
  if (status == 0) {
    resetLocked();
    return;
  }
  uint8_t added = static_cast<uint8_t>(status & ~status_);
  if (added & kStatusFeaturesOk) {
    uint64_t offered = device_->deviceFeatures() | kTransportFeatures;
    // Only modern drivers (VERSION_1) and only offered bits: otherwise FEATURES_OK does not stick.
    if ((driver_features_ & ~offered) || !(driver_features_ & kFeatureVersion1)) status &= ~kStatusFeaturesOk;
  }
  status_ = static_cast<uint8_t>((status & (kStatusAcknowledge | kStatusDriver | kStatusDriverOk | kStatusFeaturesOk |
                                            kStatusFailed)) |
                                 (status_ & kStatusNeedsReset));
  if ((added & kStatusDriverOk) && !active_ && !(status_ & kStatusNeedsReset)) {
    active_ = true;
    device_->activate(*this);
  }
}

}  // namespace vmmd::virtio
