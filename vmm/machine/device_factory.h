// Turns "-device DRIVER,prop=value..." into device models. Every property is checked: unknown
// drivers and properties are errors naming them.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "base/result.h"
#include "vmm/config/machine_config.h"
#include "vmm/devices/virtio/blk.h"
#include "vmm/devices/virtio/console.h"
#include "vmm/devices/virtio/net.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace vmmd {

// A disk as QMP's query-block describes it.
struct DiskInfo {
  std::string device;  // the drive id / node name
  std::string path;
  std::string format;
  bool read_only;
  bool direct;
  bool no_flush;
  uint64_t size;
};

struct PlannedDevice {
  std::unique_ptr<virtio::VirtioDevice> device;
  int slot = -1;  // addr=, or -1 for the next free slot
  std::string id;
  std::optional<DiskInfo> disk;
  std::string netdev;  // for NICs: the -netdev id (QMP set_link accepts it or the device id)
};

// What devices need from the machine around them.
struct DeviceContext {
  const config::MachineConfig& machine;
  virtio::VirtioBlk::Executor io_executor;
  // device id, operation, reason: a host-side I/O error reached the guest.
  std::function<void(const std::string&, const std::string&, const std::string&)> block_io_error;
  // The host end of a virtio-serial port, from its -chardev.
  std::function<Result<std::unique_ptr<virtio::PortBackend>>(const std::string& chardev_id)> open_port;
  // The host end of a NIC, from its -netdev.
  std::function<Result<std::unique_ptr<virtio::NetBackend>>(const config::NetdevConfig&)> open_netdev;
  // A port was opened or closed by the guest (QMP VSERPORT_CHANGE).
  std::function<void(const std::string& id, bool open)> port_changed;
  // The -device virtserialport/virtconsole entries; the controller they name takes them.
  std::vector<const config::DeviceConfig*> ports;
  std::vector<bool>* ports_taken = nullptr;
  mutable int serial_controllers = 0;
  mutable int nics = 0;  // virtio-serial-pci seen so far (ports without bus= go to the first)
};

// virtserialport and virtconsole are not PCI functions: they belong to a virtio-serial bus.
bool isSerialPort(const config::DeviceConfig& config);

Result<PlannedDevice> createDevice(const config::DeviceConfig& config, const DeviceContext& context);

}  // namespace vmmd
