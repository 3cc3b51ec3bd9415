#include "daemon/launch/worker_argv.h"

#include <algorithm>

namespace vmmd::daemon {
namespace {

void add(std::vector<std::string>& argv, std::string option, std::string value) {
  argv.push_back(std::move(option));
  argv.push_back(std::move(value));
}

// A virtio device's -device name on the VM's machine: "virtio-net-pci" on pc, "virtio-net-device"
// (on a virtio-mmio transport) on microvm, as vmm and QEMU name them.
std::string virtioDevice(const VmDefinition& def, std::string_view model) {
  return std::string(model) + (def.machine == MachineType::kMicrovm ? "-device" : "-pci");
}

// pc is vmm's q35; graphics=off: with no display the firmware writes to the serial console (QEMU
// then gives SeaBIOS etc/sercon-port), as under -nographic. microvm with rtc=on: without a CMOS
// RTC Linux stalls seconds at boot (rtc_cmos), and QEMU's microvm leaves it out by default.
std::string machineOption(const VmDefinition& def) {
  if (def.machine == MachineType::kMicrovm) return "microvm,accel=kvm,rtc=on";
  return def.boot ? "q35,accel=kvm,graphics=off" : "q35,accel=kvm";
}

// A listening socket vmmd passed (fd=N), else one the worker binds at `path`.
std::string socketChardev(std::string_view id, std::string_view path, std::optional<int> fd) {
  std::string where = fd ? "fd=" + std::to_string(*fd) : "path=" + escapeOptionValue(path);
  return "socket,id=" + std::string(id) + "," + where + ",server=on,wait=off";
}

// The position of a disk in the firmware's boot order (bootindex, 1 first), or 0 when it is not in it.
size_t bootIndex(const VmDefinition& def, const DiskSpec& disk) {
  if (!def.boot) return 0;
  const auto& order = def.boot->order;
  auto it = std::find(order.begin(), order.end(), disk.id);
  return it == order.end() ? 0 : static_cast<size_t>(it - order.begin()) + 1;
}

// A disk on pc is if=virtio (a virtio-blk-pci), unless the firmware boots from it: a bootindex
// only -device carries, so it gets if=none and its own virtio-blk-pci (at the same place in the
// argv, so PCI slots keep their order). On microvm every disk is if=none plus a virtio-blk-device:
// QEMU's if=virtio means a PCI device, which microvm has no bus for.
void addDisks(std::vector<std::string>& argv, const VmDefinition& def) {
  bool microvm = def.machine == MachineType::kMicrovm;
  for (const DiskSpec& disk : def.disks) {
    size_t boot_index = bootIndex(def, disk);
    bool own_device = microvm || boot_index;
    add(argv, "-drive",
        "file=" + escapeOptionValue(disk.path) + ",format=" + std::string(toString(disk.format)) +
            (own_device ? ",if=none" : ",if=virtio") + ",readonly=" + (disk.readonly ? "on" : "off") +
            ",cache=" + std::string(toString(disk.cache)) + ",id=" + disk.id);
    if (!own_device) continue;
    std::string device = virtioDevice(def, "virtio-blk") + ",drive=" + disk.id;
    if (boot_index) device += ",bootindex=" + std::to_string(boot_index);
    add(argv, "-device", device);
  }
}

// Direct kernel boot, or the firmware (vmm's SeaBIOS unless a loader is named) from the disks.
void addBoot(std::vector<std::string>& argv, const VmDefinition& def) {
  if (def.kernel) {
    add(argv, "-kernel", *def.kernel);
    if (def.initrd) add(argv, "-initrd", *def.initrd);
    if (def.cmdline) add(argv, "-append", *def.cmdline);
  } else if (def.boot && def.boot->loader) {
    add(argv, "-bios", *def.boot->loader);
  }
}

void addNics(std::vector<std::string>& argv, const VmDefinition& def, const std::vector<int>& taps) {
  const std::vector<NicSpec>& nics = def.nics;
  for (size_t i = 0; i < nics.size(); ++i) {
    std::string id = "net" + std::to_string(i);
    if (i < taps.size()) {
      // QEMU refuses ifname= and script= next to fd=: the tap is attached already.
      add(argv, "-netdev", "tap,id=" + id + ",fd=" + std::to_string(taps[i]));
    } else {
      // Only an ifname NIC comes here (prepareWorker passes every network NIC's tap as an fd).
      // script=no: the tap exists already (made by the host's network setup); the worker only attaches.
      add(argv, "-netdev", "tap,id=" + id + ",ifname=" + nics[i].ifname + ",script=no,downscript=no");
    }
    add(argv, "-device", virtioDevice(def, "virtio-net") + ",netdev=" + id + ",mac=" + nics[i].mac);
  }
}

}  // namespace

std::string escapeOptionValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

std::vector<std::string> workerArgv(const VmDefinition& def, const WorkerPaths& paths, const WorkerFds& fds) {
  // The fd sets first: QEMU resolves them when it opens the files named below.
  std::vector<std::string> argv = fds.add_fd;
  add(argv, "-name", "guest=" + def.name);
  add(argv, "-uuid", def.uuid);
  add(argv, "-m", std::to_string(def.memory_mib));
  add(argv, "-smp", std::to_string(def.vcpus));
  add(argv, "-cpu", "host");
  add(argv, "-machine", machineOption(def));
  argv.push_back("-nodefaults");
  add(argv, "-display", "none");
  addBoot(argv, def);
  if (def.serial) {
    add(argv, "-chardev", socketChardev("console", paths.console_socket, fds.console));
    add(argv, "-serial", "chardev:console");
  }
  add(argv, "-chardev", "socket,id=qmp,fd=" + std::to_string(kWorkerQmpFd) + ",server=on,wait=off");
  add(argv, "-mon", "chardev=qmp,mode=control");
  add(argv, "-pidfile", fds.pidfile ? "/proc/self/fd/" + std::to_string(*fds.pidfile) : paths.pidfile);
  // The worker confines itself with seccomp once it has opened everything (vmm/sandbox).
  add(argv, "-sandbox", "on");
  addDisks(argv, def);
  addNics(argv, def, fds.taps);
  if (def.agent) {
    add(argv, "-device", virtioDevice(def, "virtio-serial"));
    add(argv, "-chardev", socketChardev("qga0", paths.qga_socket, fds.qga));
    add(argv, "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0,id=" + std::string(kAgentPortId));
  }
  return argv;
}

}  // namespace vmmd::daemon
