// virtio over MMIO, version 2 registers only (virtio 1.x, section 4.2): a 512-byte window with the
// control registers below 0x100 and the device configuration above, one level-triggered
// interrupt line driven by InterruptStatus. This is how QEMU's microvm machine attaches virtio
// devices (no PCI). QueueNotify writes arrive through one ioeventfd per queue (matching the
// queue index), so a vCPU only signals an eventfd and the main loop runs the device.
//
// Every register the guest writes is hostile input: a selector past the last queue reads as an
// absent queue and its writes vanish, sizes above the device's maximum and rings outside guest
// memory fail the device (DEVICE_NEEDS_RESET), unaligned or narrow register accesses are ignored.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/devices/guest_triggered_log.h"
#include "vmm/devices/io_bus.h"
#include "vmm/devices/virtio/transport_common.h"
#include "vmm/devices/virtio/virtio_device.h"
#include "vmm/kvm/kvm.h"
#include "vmm/platform/guest_memory.h"
#include "vmm/platform/interrupt_line.h"

namespace vmmd::virtio {

class VirtioMmio : public BusDevice, public Transport {
 public:
  static constexpr uint64_t kWindowSize = 0x200;  // QEMU's spacing of microvm transports
  static constexpr uint64_t kConfigOffset = 0x100;
  static constexpr uint32_t kMagic = 0x74726976;  // "virt"
  static constexpr uint32_t kVersion = 2;         // virtio 1.x (not the legacy layout)
  static constexpr uint32_t kVendorId = 0x1AF4;
  // Register offsets (virtio 1.x, 4.2.2).
  enum Register : uint64_t {
    kMagicValue = 0x000, kVersionReg = 0x004, kDeviceId = 0x008, kVendorIdReg = 0x00C, kDeviceFeatures = 0x010,
    kDeviceFeaturesSel = 0x014, kDriverFeatures = 0x020, kDriverFeaturesSel = 0x024, kQueueSel = 0x030,
    kQueueNumMax = 0x034, kQueueNum = 0x038, kQueueReady = 0x044, kQueueNotify = 0x050, kInterruptStatus = 0x060,
    kInterruptAck = 0x064, kStatus = 0x070, kQueueDescLow = 0x080, kQueueDescHigh = 0x084, kQueueDriverLow = 0x090,
    kQueueDriverHigh = 0x094, kQueueDeviceLow = 0x0A0, kQueueDeviceHigh = 0x0A4, kShmSel = 0x0AC, kShmLenLow = 0x0B0,
    kShmLenHigh = 0x0B4, kShmBaseLow = 0x0B8, kShmBaseHigh = 0x0BC, kConfigGeneration = 0x0FC,
  };
  static constexpr uint32_t kInterruptUsedBuffer = 1, kInterruptConfigChange = 2;

  // `base`: the window's guest-physical address (for the ioeventfds); `irq`: its interrupt line.
  static Result<std::unique_ptr<VirtioMmio>> create(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory,
                                                    uint64_t base, InterruptLine irq);
  VirtioMmio(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory, uint64_t base, InterruptLine irq);

  // Each queue's notification eventfd is watched by the main loop.
  void watchNotifications(const FdWatcher& watch);
  // A (new) KVM VM: register the QueueNotify ioeventfds with it. nullptr: the VM went away.
  Status attach(kvm::Vm* vm);
  // Machine reset.
  void resetDevice();

  // The transport's registers, queues and interrupt status with the device's state inside; taken
  // with the machine paused (virtio-blk drained). A load checks the queues against guest memory
  // again and drives the interrupt line to the saved status.
  Result<DeviceState> saveState() const;
  Status loadState(const DeviceState& state);
  static constexpr const char* kStateKind = "virtio-mmio";
  static constexpr uint32_t kStateVersion = 1;

  VirtioDevice& device() { return *device_; }
  uint64_t base() const { return base_; }
  uint32_t gsi() const { return irq_.gsi(); }
  uint8_t status() const;

  // BusDevice: `offset` within the window.
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;
  // Transport
  Virtqueue& queue(uint16_t index) override { return queues_[index].queue; }
  void signalUsed(uint16_t index) override;
  void fail(const std::string& why) override;
  uint64_t negotiatedFeatures() const override { return driver_features_; }
  void configChanged() override;
  void kickAgain(uint16_t index) override;
  bool memoryMapped() const override { return true; }

 private:
  // All with the device's lock held.
  uint32_t readRegister(uint64_t offset);
  void writeRegister(uint64_t offset, uint32_t value);
  void writeQueueRegister(uint64_t offset, uint32_t value);
  void writeStatus(uint8_t status);
  void raise(uint32_t cause);
  void updateLine();
  void resetLocked();

  std::unique_ptr<VirtioDevice> device_;
  const GuestMemory& memory_;
  const uint64_t base_;
  InterruptLine irq_;
  kvm::Vm* vm_ = nullptr;
  GuestTriggeredLog failure_log_;

  // Guarded by the device's lock (device_->lock()), the one lock of device and transport.
  std::vector<QueueRegisters> queues_;
  uint32_t device_features_sel_ = 0, driver_features_sel_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t queue_sel_ = 0;
  uint32_t interrupt_status_ = 0;
  bool line_high_ = false;
  uint8_t status_ = 0;
  uint8_t config_generation_ = 0;
  bool active_ = false;
};

}  // namespace vmmd::virtio
