// Turns "-device DRIVER,prop=value..." into device models. Every property is checked: unknown
// drivers and properties are errors naming them.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "base/result.h"
#include "vmm/config/machine_config.h"
#include "vmm/devices/device_host.h"
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
  // The open image the device serves (QMP's internal snapshots work on it).
  std::shared_ptr<storage::BlockDevice> image;
  // How it was opened (open.lock: whether the image holds its locks now) and the device that
  // serves it: a migration reopens the image (Machine::releaseDisks / claimDisks) and hands the
  // device the new one.
  storage::OpenOptions open;
  virtio::VirtioBlk* blk = nullptr;
};

struct PlannedDevice {
  std::unique_ptr<virtio::VirtioDevice> device;
  int slot = -1;  // addr=, or -1 for the next free slot
  int bootindex = -1;  // a disk's bootindex= (firmware boot order), or -1 for none
  std::string id;
  std::optional<DiskInfo> disk;
  std::string netdev;  // for NICs: the -netdev id (QMP set_link accepts it or the device id)
};

// What the factory needs around the devices it builds.
struct DeviceContext {
  const config::MachineConfig& machine;
  DeviceHost& host;  // back-ends to open, events to report
  // The -device virtserialport/virtconsole entries; the controller they name takes them.
  std::vector<const config::DeviceConfig*> ports;
  std::vector<bool>* ports_taken = nullptr;
  mutable int serial_controllers = 0;  // virtio-serial-pci seen so far (ports without bus= go to the first)
  mutable int nics = 0;
};

// virtserialport and virtconsole are not PCI functions: they belong to a virtio-serial bus.
bool isSerialPort(const config::DeviceConfig& config);

Result<PlannedDevice> createDevice(const config::DeviceConfig& config, const DeviceContext& context);

}  // namespace vmmd
