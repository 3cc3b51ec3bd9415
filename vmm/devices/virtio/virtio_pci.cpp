#include "vmm/devices/virtio/virtio_pci.h"


#include <cstring>

#include "base/log.h"

namespace vmmd::virtio {
namespace {

constexpr uint8_t kCapVendor = 0x09, kCapMsix = 0x11;
constexpr uint8_t kCfgCommon = 1, kCfgNotify = 2, kCfgIsr = 3, kCfgDevice = 4;
constexpr uint16_t kNoVector = 0xFFFF;
constexpr uint16_t kMsixEnable = 1u << 15, kMsixFunctionMask = 1u << 14;

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
  pci->msix_ = MsixTable(vectors);
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
  watchKicks(watch, *device_, queues_,
             [this](uint16_t index) { return active_ && queues_[index].enabled && !(status_ & kStatusNeedsReset); });
}

Status VirtioPci::attach(kvm::Vm* vm) {
  auto lock = device_->lock();
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
  auto lock = device_->lock();
  if (auto st = registerIoeventfds(); !st) bar_log_.error(st.error().message());
}

void VirtioPci::resetDevice() {
  auto lock = device_->lock();
  resetLocked();
  msix_.reset();
}

void VirtioPci::resetLocked() {
  device_->reset();
  for (auto& queue : queues_) {
    queue.clear();
    queue.msix_vector = kNoVector;
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
  auto lock = device_->lock();
  return status_;
}

void VirtioPci::readMsixControl() {
  uint16_t control;
  std::memcpy(&control, config() + msix_capability_ + 2, 2);
  msix_.setControl(control & kMsixEnable, control & kMsixFunctionMask);
}

void VirtioPci::fire(uint16_t vector) {
  if (msix_.fire(vector)) signal(vector);  // NO_VECTOR (past the table): no interrupt wanted
}

void VirtioPci::signal(size_t vector) { signalEventFd(vectors_[vector].irqfd.get()); }

void VirtioPci::updateVectorRoute(size_t index) {
  const MsixTable::Entry& entry = msix_.entry(index);
  if (auto st = routing_.setMsi(vectors_[index].gsi, std::make_pair(entry.address, entry.data)); !st) {
    msix_log_.error(std::string(device_->name()) + ": MSI-X vector " + std::to_string(index) + ": " + st.error().message());
  }
  if (msix_.takePending(index)) signal(index);
}

void VirtioPci::configWritten(uint16_t offset, unsigned size) {
  if (offset + size <= msix_capability_ + 2u || offset >= msix_capability_ + 4u) return;
  auto lock = device_->lock();
  readMsixControl();
  for (size_t i = 0; i < vectors_.size(); ++i) updateVectorRoute(i);
}

void VirtioPci::signalUsed(uint16_t index) {
  auto lock = device_->lock();
  if (index >= queues_.size() || !queues_[index].queue.shouldNotify()) return;
  isr_ |= 1;
  fire(queues_[index].msix_vector);
}

void VirtioPci::configChanged() {
  auto lock = device_->lock();
  ++config_generation_;
  isr_ |= 2;
  if (active_) fire(config_vector_);
}

void VirtioPci::kickAgain(uint16_t index) {
  // Through the queue's notify eventfd: the loop polls it with every other fd, so the next pass
  // comes after whatever else is ready (QMP, the console, timers).
  if (index < queues_.size()) signalEventFd(queues_[index].notify.get());
}

void VirtioPci::fail(const std::string& why) {
  auto lock = device_->lock();
  failure_log_.error(std::string(device_->name()) + ": " + why + "; the device needs a reset");
  status_ |= kStatusNeedsReset;
  active_ = false;
  isr_ |= 2;  // configuration change
  fire(config_vector_);
}

void VirtioPci::barRead(int, uint64_t offset, std::span<uint8_t> data) {
  auto lock = device_->lock();
  std::fill(data.begin(), data.end(), 0);
  if (offset < kCommonOffset + kCommonSize) {
    readCommon(offset, data);
  } else if (offset == kIsrOffset) {
    data[0] = isr_;
    isr_ = 0;  // read to clear
  } else if (offset >= kDeviceOffset && offset < kNotifyOffset) {
    device_->readConfig(offset - kDeviceOffset, data);
  } else if (offset >= kMsixTableOffset && offset < kMsixTableOffset + msix_.tableBytes()) {
    msix_.readTable(offset - kMsixTableOffset, data);
  } else if (offset >= kMsixPbaOffset && offset < kMsixPbaOffset + msix_.pbaBytes()) {
    msix_.readPba(offset - kMsixPbaOffset, data);
  }
}

void VirtioPci::barWrite(int, uint64_t offset, std::span<const uint8_t> data) {
  auto lock = device_->lock();
  if (offset < kCommonOffset + kCommonSize) {
    writeCommon(offset, data);
  } else if (offset >= kDeviceOffset && offset < kNotifyOffset) {
    device_->writeConfig(offset - kDeviceOffset, data);
  } else if (offset >= kNotifyOffset && offset < kNotifyOffset + kNotifyMultiplier * queues_.size()) {
    // Only reached when no ioeventfd caught the write: forward it the same way.
    signalEventFd(queues_[(offset - kNotifyOffset) / kNotifyMultiplier].notify.get());
  } else if (offset >= kMsixTableOffset && offset < kMsixTableOffset + msix_.tableBytes()) {
    updateVectorRoute(msix_.writeTable(offset - kMsixTableOffset, data));
  }
}

void VirtioPci::readCommon(uint64_t offset, std::span<uint8_t> data) {
  uint8_t image[kCommonSize] = {};
  auto put = [&](uint64_t at, uint64_t value, size_t width) { std::memcpy(image + at, &value, width); };
  put(kDeviceFeatureSelect, device_feature_select_, 4);
  put(kDeviceFeature, featureWord(offeredFeatures(*device_), device_feature_select_), 4);
  put(kDriverFeatureSelect, driver_feature_select_, 4);
  put(kDriverFeature, featureWord(driver_features_, driver_feature_select_), 4);
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
    } else {
      setAddressHalf(field, offset != base, static_cast<uint32_t>(value));
    }
  };
  switch (offset) {
    case kDeviceFeatureSelect: device_feature_select_ = static_cast<uint32_t>(value); return;
    case kDriverFeatureSelect: driver_feature_select_ = static_cast<uint32_t>(value); return;
    case kDriverFeature:
      writeFeatureWord(driver_features_, driver_feature_select_, static_cast<uint32_t>(value), status_);
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
    case kQueueEnable:
      if (value != 1) return;
      if (auto st = enableQueue(*q, memory_, device_->queueMaxSize(), driver_features_); !st) {
        fail("queue " + std::to_string(queue_select_) + ": " + st.error().message());
      }
      return;
    default:
      return;
  }
}

void VirtioPci::writeStatus(uint8_t status) {
  if (status == 0) {
    resetLocked();
    return;
  }
  writeDeviceStatus(*device_, status_, active_, status, driver_features_);
}

Result<DeviceState> VirtioPci::saveState() const {
  auto lock = device_->lock();
  auto device_state = device_->saveState();
  if (!device_state) return device_state.error();
  StateWriter out;
  out.u8(status_);
  out.u64(driver_features_);
  out.u32(device_feature_select_);
  out.u32(driver_feature_select_);
  out.u16(config_vector_);
  out.u16(queue_select_);
  out.u8(config_generation_);
  out.u8(isr_);
  out.boolean(active_);
  out.u16(static_cast<uint16_t>(queues_.size()));
  for (const auto& q : queues_) {
    saveQueue(out, q);
    out.u16(q.msix_vector);
  }
  msix_.save(out);
  out.state(*device_state);
  return DeviceState{kStateKind, kStateVersion, out.take()};
}

Status VirtioPci::loadState(const DeviceState& state) {
  if (auto st = checkState(state, kStateKind, kStateVersion); !st) return st;
  auto lock = device_->lock();
  resetLocked();
  StateReader in(state.bytes);
  status_ = in.u8();
  driver_features_ = in.u64();
  device_feature_select_ = in.u32();
  driver_feature_select_ = in.u32();
  config_vector_ = in.u16();
  queue_select_ = in.u16();
  config_generation_ = in.u8();
  isr_ = in.u8();
  bool active = in.boolean();
  auto saved_queues = loadQueues(in, queues_, [](StateReader& reader, QueueState& q) { q.msix_vector = reader.u16(); });
  msix_.load(in);
  DeviceState device_state = in.state();
  Status loaded = restoreQueuesAndDevice(in, queues_, saved_queues, memory_, *device_, driver_features_, device_state);
  if (!loaded) {
    resetLocked();
    msix_.reset();
    return loaded;
  }
  readMsixControl();
  for (size_t i = 0; i < vectors_.size(); ++i) updateVectorRoute(i);
  active_ = active;
  if (active_) device_->activate();
  kickEnabledQueues(*this, queues_);
  return {};
}

}  // namespace vmmd::virtio
