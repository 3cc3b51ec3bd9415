// virtio over PCI, modern interface only (virtio 1.x, section 4.1): one 32 KiB memory BAR with the
// common configuration, ISR, device configuration and notification areas plus the MSI-X table and
// PBA. Queue notifications arrive through ioeventfds (the vCPU only signals an eventfd; the main
// loop runs the device), and MSI-X vectors are delivered through irqfds.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "vmm/devices/device_state.h"
#include "vmm/devices/guest_triggered_log.h"
#include "vmm/devices/pci/msix_table.h"
#include "vmm/devices/pci/pci_function.h"
#include "vmm/devices/virtio/transport_common.h"
#include "vmm/devices/virtio/virtio_device.h"
#include "vmm/kvm/kvm.h"
#include "vmm/platform/guest_memory.h"
#include "vmm/platform/irq_routing.h"

namespace vmmd::virtio {

class VirtioPci : public PciFunction, public Transport {
 public:
  static constexpr uint32_t kBarSize = 0x8000;
  static constexpr uint64_t kCommonOffset = 0x0000, kIsrOffset = 0x1000, kDeviceOffset = 0x2000,
                            kNotifyOffset = 0x3000, kMsixTableOffset = 0x4000, kMsixPbaOffset = 0x5000;
  static constexpr uint32_t kNotifyMultiplier = 4;
  using FdWatcher = virtio::FdWatcher;

  // `bar_address`: where firmware places BAR0; `routing`: GSIs for the MSI-X vectors.
  static Result<std::unique_ptr<VirtioPci>> create(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory,
                                                   IrqRouting& routing, uint64_t bar_address);
  VirtioPci(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory, IrqRouting& routing);

  // Each queue's notification eventfd is watched by the main loop.
  void watchNotifications(const FdWatcher& watch);
  // A (new) KVM VM: register ioeventfds and irqfds with it. nullptr: the VM went away.
  Status attach(kvm::Vm* vm);
  // Machine reset.
  void resetDevice();

  // The transport's state (common configuration, queues, MSI-X table) with the device's inside:
  // fails when the device cannot save its own. Taken with the machine paused. PCI configuration
  // space (BARs, command register) is the PCI function's and not part of it.
  Result<DeviceState> saveState() const;
  // Gives a saved state to this transport and its device (same kind, same queue count); the
  // queues are checked against guest memory again and the MSI routes set again.
  Status loadState(const DeviceState& state);
  static constexpr const char* kStateKind = "virtio-pci";
  static constexpr uint32_t kStateVersion = 1;

  VirtioDevice& device() { return *device_; }
  uint8_t status() const;

  // PciFunction
  void barRead(int bar, uint64_t offset, std::span<uint8_t> data) override;
  void barWrite(int bar, uint64_t offset, std::span<const uint8_t> data) override;
  // Transport
  Virtqueue& queue(uint16_t index) override { return queues_[index].queue; }
  void signalUsed(uint16_t index) override;
  void fail(const std::string& why) override;
  uint64_t negotiatedFeatures() const override { return driver_features_; }
  void configChanged() override;
  void kickAgain(uint16_t index) override;

 protected:
  void configWritten(uint16_t offset, unsigned size) override;
  void barsChanged() override;

 private:
  struct QueueState : QueueRegisters {
    uint16_t msix_vector = 0xFFFF;
  };
  struct VectorRoute {  // where MSI-X vector i goes: its GSI and the irqfd that raises it
    uint32_t gsi = 0;
    UniqueFd irqfd;
  };

  void readCommon(uint64_t offset, std::span<uint8_t> data);
  void writeCommon(uint64_t offset, std::span<const uint8_t> data);
  void writeStatus(uint8_t status);
  void resetLocked();
  // All with the device's lock held.
  void fire(uint16_t vector);
  void signal(size_t vector);
  void updateVectorRoute(size_t index);
  void readMsixControl();
  Status registerIoeventfds();

  std::unique_ptr<VirtioDevice> device_;
  const GuestMemory& memory_;
  IrqRouting& routing_;
  kvm::Vm* vm_ = nullptr;
  uint8_t msix_capability_ = 0;
  uint64_t registered_notify_base_ = 0;
  // What a guest can make this transport log in a loop (failures, BAR moves, MSI-X routes).
  GuestTriggeredLog failure_log_, bar_log_, msix_log_;

  // Guarded by the device's lock (device_->lock()), the one lock of device and transport.
  std::vector<QueueState> queues_;
  std::vector<VectorRoute> vectors_;
  MsixTable msix_{0};
  uint32_t device_feature_select_ = 0, driver_feature_select_ = 0;
  uint64_t driver_features_ = 0;
  uint16_t config_vector_ = 0xFFFF;
  uint16_t queue_select_ = 0;
  uint8_t status_ = 0;
  uint8_t config_generation_ = 0;
  uint8_t isr_ = 0;
  bool active_ = false;
};

}  // namespace vmmd::virtio
