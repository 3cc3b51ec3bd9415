// Everything the worker was asked to build, as parsed from a QEMU-compatible command line.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vmmd::config {

// -cpu host[,+feature|-feature|feature=on|off...]
struct CpuConfig {
  std::string model = "host";
  // feature name -> wanted (true: force on, false: mask off)
  std::vector<std::pair<std::string, bool>> features;
};

// -chardev socket,id=ID,path=P|fd=N,server=on,wait=off | -chardev stdio,id=ID | -chardev file,id=ID,path=P
struct ChardevConfig {
  enum class Backend { Socket, Stdio, File, Null };
  std::string id;
  Backend backend = Backend::Null;
  std::string path;
  int fd = -1;  // socket: a listening socket inherited from the parent, instead of path
  bool server = false;
  bool wait = true;
};

// A serial port's backend: stdio, a chardev id, or an inline unix socket (made into a chardev).
struct SerialConfig {
  std::string chardev_id;  // after parsing, every serial refers to a chardev
};

// -qmp unix:PATH,server=on,wait=off  or  -mon chardev=ID,mode=control
struct MonitorConfig {
  std::string chardev_id;
  bool pretty = false;
};

// A disk image the guest sees through a block device: from -drive, or a -blockdev format node
// (with its protocol node folded in).
struct DriveConfig {
  std::string id;          // -drive id= or -blockdev node-name=
  std::string path;
  std::string format;      // "raw", "qcow2", or "" (probe)
  bool read_only = false;
  bool direct = false;     // cache=none / cache.direct=on: O_DIRECT
  bool no_flush = false;   // cache=unsafe
};

// -netdev tap,id=ID[,ifname=NAME][,fd=N][,script=no,downscript=no]
struct NetdevConfig {
  std::string id;
  std::string ifname;
  int fd = -1;
};

// -add-fd fd=N,set=S[,opaque=TEXT]: descriptor N, inherited from the parent, joins fd set S. A file
// the worker would open by path comes from a set instead: "/dev/fdset/S" names set S, and a set
// whose opaque text is the path stands for that path (vmm/backends/fd_sets.h).
struct AddFdConfig {
  int fd = -1;
  uint64_t set = 0;
  std::string opaque;
};

// -device DRIVER,key=value... kept generic: each device model takes what it understands.
struct DeviceConfig {
  std::string driver;
  std::map<std::string, std::string> properties;
  // Made by -drive if=virtio: the machine's virtio-blk, whichever transport it has (microvm:
  // virtio-blk-device, as QEMU), set once the machine type is known.
  bool from_drive = false;
};

// What -M microvm builds (QEMU 7.2's microvm properties, vmm/config/machine_options.h): no PCI,
// virtio-mmio transports, and the legacy devices one asks for.
struct MicrovmConfig {
  bool acpi = true;                 // acpi=on|off|auto: ACPI tables announce the devices
  bool rtc = false;                 // rtc=on|off|auto: auto is off under KVM, as in QEMU
  bool pit = true;                  // pit=on|off|auto
  bool isa_serial = true;           // isa-serial=on|off: COM1 at 0x3f8
  bool auto_kernel_cmdline = true;  // without ACPI, virtio_mmio.device= on the kernel command line
};

struct MachineConfig {
  std::string name;
  std::string uuid;  // empty: none given (QEMU reports all zeros)
  std::string machine_type = "pc";
  // -machine properties as given (every -M/-machine), resolved for the type once all are read.
  std::vector<std::pair<std::string, std::string>> machine_properties;
  MicrovmConfig microvm;  // meaningful when isMicrovm()
  bool isMicrovm() const { return machine_type == "microvm"; }
  uint64_t memory_bytes = 128ull << 20;  // QEMU's default
  uint32_t vcpus = 1;
  CpuConfig cpu;

  std::string kernel;
  std::string initrd;
  std::string append;
  // Without -kernel the machine boots through firmware: -bios FILE, or Debian's SeaBIOS.
  std::string bios;
  bool boot_menu = false;  // -boot menu=on: the firmware's boot menu (etc/show-boot-menu)
  int64_t boot_retry_ms = -1;  // -boot reboot-timeout=MS: retry after a failed boot; -1 never (QEMU's default)

  std::vector<ChardevConfig> chardevs;
  std::vector<SerialConfig> serials;
  std::vector<MonitorConfig> monitors;
  std::vector<DeviceConfig> devices;
  std::vector<DriveConfig> drives;
  std::vector<NetdevConfig> netdevs;
  std::vector<AddFdConfig> add_fds;

  bool start_paused = false;  // -S
  // -incoming URI: wait for a migration stream from URI instead of booting; "defer": from the
  // URI a later QMP migrate-incoming names.
  std::string incoming;
  bool no_reboot = false;
  bool no_shutdown = false;
  bool daemonize = false;
  bool sandbox = false;  // -sandbox on: the worker confines itself with seccomp (vmm/sandbox)
  std::string pidfile;

  const DriveConfig* findDrive(const std::string& id) const {
    for (const auto& d : drives) {
      if (d.id == id) return &d;
    }
    return nullptr;
  }
  const NetdevConfig* findNetdev(const std::string& id) const {
    for (const auto& n : netdevs) {
      if (n.id == id) return &n;
    }
    return nullptr;
  }
  const ChardevConfig* findChardev(const std::string& id) const {
    for (const auto& c : chardevs) {
      if (c.id == id) return &c;
    }
    return nullptr;
  }
};

}  // namespace vmmd::config
