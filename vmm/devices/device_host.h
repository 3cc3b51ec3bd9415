// What the device models need from the process that runs them, as one interface: the main loop
// that watches their eventfds, the threads that serve block I/O, the host ends of their ports
// and NICs, and where their events go. The worker implements it; the machine and the device
// factory hand it on. A new device event is one method here, its call in the device, and its
// implementation in the worker.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "base/file_opener.h"
#include "base/result.h"
#include "vmm/config/machine_config.h"
#include "vmm/devices/acpi_pm.h"
#include "vmm/devices/virtio/console.h"
#include "vmm/devices/virtio/net.h"

namespace vmmd {

class DeviceHost {
 public:
  virtual ~DeviceHost() = default;

  // The main loop calls `on_readable` whenever `fd` (a queue's ioeventfd) is readable.
  virtual void watchFd(int fd, std::function<void()> on_readable) = 0;
  // Runs `work` on an I/O thread, then `done` on the main loop thread (block requests).
  virtual void runIo(std::function<void()> work, std::function<void()> done) = 0;
  // The host end of a virtio-serial port, from its -chardev.
  virtual Result<std::unique_ptr<virtio::PortBackend>> openPort(const std::string& chardev_id) = 0;
  // The host end of a NIC, from its -netdev.
  virtual Result<std::unique_ptr<virtio::NetBackend>> openNetdev(const config::NetdevConfig& netdev) = 0;
  // How every file named by path is opened (disk images and their backing files, the kernel,
  // /dev/kvm): the worker's fd sets.
  virtual const FileOpener& files() const = 0;

  // Events. From any thread: a power request (ACPI, reset register, triple fault) and a vCPU
  // that cannot go on (`report`: what the vCPU thread saw, registers included).
  virtual void powerRequest(PowerRequest request) = 0;
  virtual void vcpuFailed(const std::string& report) = 0;
  // COM1's output bytes, from vCPU threads.
  virtual void serialOutput(std::span<const uint8_t> bytes) = 0;
  // On the main loop: a host-side I/O error reached the guest (QMP BLOCK_IO_ERROR); the guest
  // opened or closed a virtio-serial port (QMP VSERPORT_CHANGE).
  virtual void blockIoError(const std::string& device, const std::string& operation, const std::string& reason) = 0;
  virtual void portChanged(const std::string& port_id, bool open) = 0;
};

}  // namespace vmmd
