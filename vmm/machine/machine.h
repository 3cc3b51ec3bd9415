// The virtual machine: guest memory, the KVM VM with its in-kernel irqchip and PIT, the vCPU
// threads, the legacy devices (16550, CMOS RTC, ACPI PM + reset register) and the boot setup.
// pc/q35: virtio devices are PCI functions behind a host bridge. microvm (QEMU's, pcie=off):
// no PCI, virtio-mmio transports announced in the DSDT or, with acpi=off, on the kernel command
// line (microvm_layout.h), and only the legacy devices its properties ask for.
//
// A reset tears the KVM VM down and builds it again around the same guest memory and device
// models: every piece of in-kernel state (LAPICs, IOAPIC, PIT, MSRs such as kvmclock) starts
// from power-on exactly, with no list of registers to forget.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "base/result.h"
#include "vmm/acpi/tables.h"
#include "vmm/boot/boot.h"
#include "vmm/boot/firmware.h"
#include "vmm/config/machine_config.h"
#include "vmm/devices/acpi_ged.h"
#include "vmm/devices/acpi_pm.h"
#include "vmm/devices/cmos_rtc.h"
#include "vmm/devices/device_host.h"
#include "vmm/devices/fw_cfg.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/io_bus.h"
#include "vmm/devices/pci/pci_host.h"
#include "vmm/devices/serial.h"
#include "vmm/devices/virtio/virtio_mmio.h"
#include "vmm/devices/virtio/virtio_pci.h"
#include "vmm/kvm/binary_stats.h"
#include "vmm/kvm/kvm.h"
#include "vmm/machine/cpuid.h"
#include "vmm/machine/device_factory.h"
#include "vmm/machine/exit_stats.h"
#include "vmm/machine/machine_state.h"
#include "vmm/machine/microvm_layout.h"
#include "vmm/machine/vcpu_runner.h"
#include "vmm/platform/guest_memory.h"
#include "vmm/platform/irq_routing.h"

namespace vmmd {

class Machine {
 public:
  // Opens and checks every file and socket the configuration names, builds the devices, and only
  // then opens /dev/kvm: bad input is refused the same way on a host without KVM.
  // `host` outlives the machine: the devices' back-ends and events go through it.
  static Result<std::unique_ptr<Machine>> create(const config::MachineConfig& config, DeviceHost& host);
  // Use create(); the key keeps construction inside it.
  struct ConstructionKey {
   private:
    friend class Machine;
    ConstructionKey() = default;
  };
  // What the machine boots: a kernel directly (-kernel), or firmware that finds a boot disk.
  struct BootSource {
    std::optional<boot::KernelImage> kernel;
    std::optional<boot::FirmwareImage> firmware;
  };
  Machine(ConstructionKey, const config::MachineConfig& config, DeviceHost& host, GuestMemory memory,
          std::optional<acpi::AcpiTables> acpi_tables, BootSource boot);
  ~Machine();

  // Builds the KVM VM, loads kernel and ACPI tables, and starts the vCPU threads
  // (parked when `paused`).
  Status powerOn(bool paused);
  // Stops and joins every vCPU thread and drops the KVM VM; guest memory and devices stay.
  void powerOff();
  // Power-cycles the machine, keeping NVRAM and host-side device state.
  Status reset(bool paused);
  // Blocks until every vCPU is parked / lets them run again.
  void pause();
  void resume();
  bool running() const { return !runners_.empty(); }
  // Every vCPU is parked (after pause(), or powerOn(true)): the state may be taken or given.
  bool paused() const;

  // Migration and snapshots; the call order is in machine_state.h.
  // Devices stop taking host-side input (queue notifications, received frames, console bytes)
  // so nothing but completions of requests already in flight writes guest memory; and again.
  void stopDeviceIo();
  void resumeDeviceIo();
  // Block requests handed to I/O threads whose completion has not reached the guest yet. Their
  // completions run on the main loop: the caller lets it turn until this is 0.
  size_t requestsInFlight() const;
  // Every section (machine_state.h). Fails, naming the device, when the vCPUs are not paused or
  // a request is still in flight.
  Result<MachineState> saveState();
  // Gives every section to its vCPU, KVM object or device. Before the vCPUs run (powerOn(true)).
  // A section for no present device, a device with no section, or a section of another kind or
  // version is an error naming it; after an error the machine must not be resumed.
  Status loadState(const MachineState& state);

  // Live migration hands the disk images between the two processes (storage::BlockDevice's
  // release/acquire, QEMU's inactivate/activate): the source releases them once its guest has
  // stopped and no request is in flight (durable, reserved clusters given back, locks dropped),
  // and acquires them again if its guest runs on; a destination (-incoming) opens them without
  // locks and acquires them, reading their metadata afresh, when the stream has loaded. Errors
  // name the drive.
  Status releaseDisks();
  Status acquireDisks();
  bool disksReleased() const;

  // Live migration's view of guest RAM: KVM's dirty log on every RAM slot plus the pages device
  // models write (GuestMemory's host-write tracking). takeDirtyPages() returns, per RAM region
  // (memory().regions() order), one bit per 4 KiB page written since the last call, and clears.
  Status startDirtyLog();
  Result<std::vector<std::vector<uint64_t>>> takeDirtyPages();
  void stopDirtyLog();

  void pressPowerButton();
  Serial16550& serial() { return serial_; }
  const GuestMemory& memory() const { return memory_; }
  const config::MachineConfig& config() const { return config_; }
  const char* bootProtocol() const { return boot_.kernel ? boot_.kernel->protocol() : "firmware"; }
  const std::vector<DiskInfo>& disks() const { return disks_; }
  // QMP set_link: `name` is a NIC's -device id or its -netdev id. False when there is no such NIC.
  bool setLink(const std::string& name, bool up);
  // Host thread ids of the vCPU threads, by vCPU index (0 when not running).
  std::vector<int> vcpuThreadIds() const;
  // Each vCPU's exit counters since the process started (resets included), by vCPU index.
  std::vector<ExitStats::Snapshot> exitStats() const;
  // KVM's own statistics (QMP query-stats provider "kvm"), of the VM and of each vCPU by index;
  // empty while the machine is off or when the kernel has none (before Linux 5.14).
  std::vector<kvm::BinaryStat> kvmVmStats() const;
  std::vector<std::vector<kvm::BinaryStat>> kvmVcpuStats() const;

 private:
  // Where the legacy devices sit (their state sections are named after these ports too).
  static constexpr uint16_t kCom1 = 0x3F8, kCmos = 0x70, kAcpiPmBase = 0x600;
  static Result<acpi::AcpiTables> buildAcpi(const config::MachineConfig& config,
                                            const std::vector<microvm::Transport>& transports);
  Status buildBus();
  Status createDevices(const std::vector<microvm::Transport>& transports);
  // Puts a planned device behind its transport: a PCI function (pc) or virtio-mmio `transport`.
  Status addPciDevice(PlannedDevice planned, const config::DeviceConfig& config, int& next_slot,
                      std::vector<boot::BootDevice>& boot_devices);
  Status addMmioDevice(PlannedDevice planned, const microvm::Transport& transport);
  template <typename Each>
  void forEachTransport(Each each) {
    for (auto& device : virtio_) each(*device);
    for (auto& device : virtio_mmio_) each(*device);
  }
  // The legacy PC pieces firmware probes, and the fw_cfg files it reads (firmware boot only).
  Status addFirmwareDevices(const std::vector<boot::BootDevice>& boot_devices);
  // Opens /dev/kvm, checks what it offers and plans the vCPUs' CPUID: the last step of create().
  Status openKvm();
  void setIrq(uint32_t gsi, bool level);
  // Every piece of state in the order it is saved and loaded (machine_sections.cpp).
  struct StateSection {
    std::string id;
    std::function<Result<DeviceState>()> save;
    std::function<Status(const DeviceState&)> load;
  };
  std::vector<StateSection> stateSections();
  Status checkStateAccess(const char* what) const;

  config::MachineConfig config_;
  DeviceHost& host_;
  GuestMemory memory_;
  std::optional<acpi::AcpiTables> acpi_tables_;  // none: microvm with acpi=off
  BootSource boot_;
  std::optional<kvm::Kvm> kvm_;  // set by openKvm() before create() returns
  CpuidPlan cpuid_;
  bool read_only_memory_ = false;  // KVM_CAP_READONLY_MEM: the BIOS is a ROM; else plain memory

  std::mutex vm_mutex_;  // guards vm_ against setIrq from device threads during a reset
  std::optional<kvm::Vm> vm_;
  IrqRouting irq_routing_;
  VcpuControl control_;
  std::vector<std::unique_ptr<VcpuRunner>> runners_;
  std::vector<std::unique_ptr<ExitStats>> exit_stats_;  // one per vCPU, kept across resets
  // Opened with the VM and its vCPUs (before they run), dropped with them.
  std::optional<kvm::BinaryStats> kvm_vm_stats_;
  std::vector<std::optional<kvm::BinaryStats>> kvm_vcpu_stats_;

  IoBus pio_;
  IoBus mmio_;
  PciHost pci_;
  std::vector<std::unique_ptr<virtio::VirtioPci>> virtio_;
  std::vector<int> virtio_slots_;  // the PCI slot of each of virtio_
  std::vector<std::unique_ptr<virtio::VirtioMmio>> virtio_mmio_;
  std::vector<DiskInfo> disks_;
  struct Nic {
    std::string id;
    std::string netdev;
    virtio::VirtioDevice* device;
  };
  std::vector<Nic> nics_;
  Serial16550 serial_;
  CmosRtc cmos_;
  AcpiPm acpi_pm_;  // classic ACPI (pc)
  AcpiPm::ResetRegister reset_register_;
  AcpiGed acpi_ged_;  // hardware-reduced ACPI (microvm)
  FwCfg fw_cfg_;
  I8042 i8042_;
  SystemControlPortA port92_;
  // Port 0x402, QEMU's debug console: SeaBIOS's own log, passed on at VMM_LOG=debug.
  struct DebugConsole : BusDevice {
    void read(uint64_t, std::span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0xE9); }
    void write(uint64_t, std::span<const uint8_t> data) override;
    std::mutex mutex;
    std::string line;
  } debug_console_;
  struct SinkPort : BusDevice {  // port 0x80 (POST codes, Linux's I/O delay): writes vanish
    void read(uint64_t, std::span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0); }
    void write(uint64_t, std::span<const uint8_t>) override {}
  } post_port_;
};

}  // namespace vmmd
