#include "vmm/machine/machine.h"

#include <algorithm>
#include <array>
#include <chrono>

#include "base/log.h"
#include "vmm/acpi/tables.h"
#include "vmm/machine/device_factory.h"
#include "vmm/machine/vcpu_setup.h"
#include "vmm/platform/layout.h"

namespace vmmd {
namespace {

constexpr uint16_t kPostPort = 0x80, kResetPort = 0xCF9, kDebugConsole = 0x402;
constexpr uint32_t kCom1Irq = 4, kSciIrq = 9;
constexpr uint8_t kS5SleepType = 5;

// KVM's statistics are a diagnostic: a kernel without them (before 5.14) runs the guest all the same.
std::optional<kvm::BinaryStats> optionalStats(int object_fd) {
  auto stats = kvm::BinaryStats::open(object_fd);
  if (!stats) return std::nullopt;
  return std::move(*stats);
}

}  // namespace

// Everything the command line names is opened and checked (-cpu names, the kernel and initrd
// against the memory size, disks, sockets, taps) before /dev/kvm is opened, so that bad input
// gets the same message on a host without KVM; KVM comes last.
Result<std::unique_ptr<Machine>> Machine::create(const config::MachineConfig& config, DeviceHost& host) {
  if (auto st = checkCpuFeatures(config.cpu); !st) return st.error();
  auto memory = GuestMemory::create(config.memory_bytes);
  if (!memory) return memory.error();
  std::vector<microvm::Transport> transports;
  std::string append = config.append;
  if (config.isMicrovm()) {
    // QEMU's microvm boots its own qboot/SeaBIOS build; vmm's microvm has only the direct boot.
    if (config.kernel.empty()) return Error("-M microvm needs -kernel: firmware boot (SeaBIOS from a disk) is for the pc machine");
    auto placed = microvm::placeDevices(config);
    if (!placed) return placed.error();
    transports = std::move(*placed);
    // Without ACPI the guest learns of its virtio-mmio devices from its command line, as QEMU's
    // microvm tells it (auto-kernel-cmdline).
    if (!config.microvm.acpi && config.microvm.auto_kernel_cmdline) append += microvm::kernelCommandLine(transports);
  }
  std::optional<acpi::AcpiTables> tables;
  if (!config.isMicrovm() || config.microvm.acpi) {
    auto built = buildAcpi(config, transports);
    if (!built) return built.error();
    tables = std::move(*built);
  }
  BootSource boot;
  if (config.kernel.empty()) {
    auto firmware = boot::FirmwareImage::open(config.bios.empty() ? boot::kDefaultBios : config.bios, host.files());
    if (!firmware) return firmware.error();
    boot.firmware.emplace(std::move(*firmware));
  } else {
    auto kernel = boot::KernelImage::open(*memory, {config.kernel, config.initrd, append, tables ? tables->rsdp_address : 0, &host.files()});
    if (!kernel) return kernel.error();
    boot.kernel.emplace(std::move(*kernel));
  }
  auto machine = std::make_unique<Machine>(ConstructionKey{}, config, host, std::move(*memory),
                                           std::move(tables), std::move(boot));
  if (auto st = machine->buildBus(); !st) return st.error();
  if (auto st = machine->createDevices(transports); !st) return st.error();
  if (auto st = machine->openKvm(); !st) return st.error();
  return machine;
}

Result<acpi::AcpiTables> Machine::buildAcpi(const config::MachineConfig& config,
                                            const std::vector<microvm::Transport>& transports) {
  acpi::AcpiLayout acpi_layout;
  acpi_layout.vcpus = config.vcpus;
  acpi_layout.base_address = layout::kBiosAreaStart;
  acpi_layout.pm1_event_port = kAcpiPmBase;
  acpi_layout.pm1_control_port = kAcpiPmBase + 4;
  acpi_layout.pm_timer_port = kAcpiPmBase + 8;
  acpi_layout.reset_port = kResetPort;
  acpi_layout.sci_irq = kSciIrq;
  acpi_layout.s5_sleep_type = kS5SleepType;
  if (config.isMicrovm()) {
    // As QEMU's microvm: hardware-reduced, so the guest sets up no PM timer (which Linux verifies
    // against the PIT for 30 ms at boot), no PIC and no SCI.
    acpi_layout.hardware_reduced = true;
    acpi_layout.ged_address = microvm::kGedBase + AcpiGed::kEventSelector;
    acpi_layout.ged_registers = microvm::kGedBase + AcpiGed::kSleepControl;
    acpi_layout.ged_gsi = microvm::kGedGsi;
    acpi_layout.ged_power_down_event = AcpiGed::kPowerDownEvent;
    acpi_layout.ged_reset_value = AcpiGed::kResetValue;
    acpi_layout.serial = config.microvm.isa_serial;
    acpi_layout.rtc = config.microvm.rtc;
    for (const auto& t : transports) {
      acpi_layout.virtio_mmio.push_back({t.base, static_cast<uint32_t>(virtio::VirtioMmio::kWindowSize), t.gsi, t.index});
    }
  } else {
    acpi_layout.pci = true;
    acpi_layout.pci_mmio_start = static_cast<uint32_t>(PciHost::kMmioWindowStart);
    acpi_layout.pci_mmio_end = static_cast<uint32_t>(PciHost::kMmioWindowEnd - 1);
  }
  auto tables = acpi::buildAcpiTables(acpi_layout);
  if (!tables) return tables.error();
  if (tables->blob.size() > layout::kResetVector - layout::kBiosAreaStart) return Error("ACPI tables too large");
  return tables;
}

Status Machine::openKvm() {
  auto kvm = kvm::Kvm::open("/dev/kvm", host_.files());
  if (!kvm) return kvm.error();
  for (auto [cap, name] : {std::pair{KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"}, std::pair{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
                           std::pair{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"}, std::pair{KVM_CAP_PIT2, "KVM_CAP_PIT2"}}) {
    if (!kvm->checkExtension(cap)) return Error(kvm->path() + " lacks " + name);
  }
  int max_vcpus = kvm->checkExtension(KVM_CAP_MAX_VCPUS);
  if (max_vcpus > 0 && config_.vcpus > static_cast<uint32_t>(max_vcpus)) {
    return Error("-smp " + std::to_string(config_.vcpus) + ": KVM allows at most " + std::to_string(max_vcpus) + " vCPUs");
  }
  auto supported = kvm->supportedCpuid();
  if (!supported) return supported.error();
  addKvmEmulatedFeatures(*supported, {.tsc_deadline = kvm->checkExtension(KVM_CAP_TSC_DEADLINE_TIMER) > 0});
  auto cpuid = planCpuid(*supported, config_.cpu);
  if (!cpuid) return cpuid.error();
  for (const auto& warning : cpuid->warnings) log::warning(warning);
  read_only_memory_ = kvm->checkExtension(KVM_CAP_READONLY_MEM) > 0;
  kvm_.emplace(std::move(*kvm));
  cpuid_ = std::move(*cpuid);
  return {};
}

Machine::Machine(ConstructionKey, const config::MachineConfig& config, DeviceHost& host, GuestMemory memory,
                 std::optional<acpi::AcpiTables> acpi_tables, BootSource boot)
    : config_(config),
      host_(host),
      memory_(std::move(memory)),
      acpi_tables_(std::move(acpi_tables)),
      boot_(std::move(boot)),
      serial_(InterruptLine(kCom1Irq, [this](uint32_t gsi, bool level) { setIrq(gsi, level); }),
              [this](std::span<const uint8_t> bytes) { host_.serialOutput(bytes); }),
      cmos_(memory_.ramBelow4G(), memory_.ramAbove4G()),
      acpi_pm_(InterruptLine(kSciIrq, [this](uint32_t gsi, bool level) { setIrq(gsi, level); }), kS5SleepType,
               [this](PowerRequest r) { host_.powerRequest(r); }),
      reset_register_(0x06, [this](PowerRequest r) { host_.powerRequest(r); }),
      acpi_ged_(InterruptLine(microvm::kGedGsi, [this](uint32_t gsi, bool level) { setIrq(gsi, level); }), kS5SleepType,
                [this](PowerRequest r) { host_.powerRequest(r); }),
      fw_cfg_(memory_),
      i8042_([this](PowerRequest r) { host_.powerRequest(r); }),
      port92_([this](PowerRequest r) { host_.powerRequest(r); }) {
  for (uint32_t i = 0; i < config_.vcpus; ++i) exit_stats_.push_back(std::make_unique<ExitStats>());
}

Machine::~Machine() { powerOff(); }

Status Machine::buildBus() {
  bool microvm = config_.isMicrovm();
  if (!microvm || config_.microvm.isa_serial) {
    if (auto st = pio_.add(kCom1, 8, &serial_); !st) return st;
  }
  if (!microvm || config_.microvm.rtc) {
    if (auto st = pio_.add(kCmos, 2, &cmos_); !st) return st;
  }
  if (auto st = pio_.add(kPostPort, 1, &post_port_); !st) return st;
  // The PM block and reset register (pc), or the GED window (microvm), are what the FADT points
  // at: only with ACPI.
  if (acpi_tables_ && microvm) {
    if (auto st = mmio_.add(microvm::kGedBase, AcpiGed::kLength, &acpi_ged_); !st) return st;
  } else if (acpi_tables_) {
    if (auto st = pio_.add(kAcpiPmBase, AcpiPm::kLength, &acpi_pm_); !st) return st;
    if (auto st = pio_.add(kResetPort, 1, &reset_register_); !st) return st;
  }
  return microvm ? Status{} : pci_.attach(pio_, mmio_);
}

Status Machine::addPciDevice(PlannedDevice planned, const config::DeviceConfig& config, int& next_slot,
                             std::vector<boot::BootDevice>& boot_devices) {
  int slot = planned.slot >= 0 ? planned.slot : next_slot;
  auto pci = virtio::VirtioPci::create(std::move(planned.device), memory_, irq_routing_,
                                       pci_.allocateBar(virtio::VirtioPci::kBarSize));
  if (!pci) return pci.error();
  if (auto st = pci_.addFunction(static_cast<uint8_t>(slot), pci->get()); !st) {
    return st.error().withContext("-device " + config.driver);
  }
  next_slot = std::max(next_slot, slot + 1);
  if (planned.bootindex >= 0) boot_devices.push_back({slot, planned.bootindex});
  (*pci)->watchNotifications([this](int fd, std::function<void()> on_readable) { host_.watchFd(fd, std::move(on_readable)); });
  if (!planned.netdev.empty()) nics_.push_back({planned.id, planned.netdev, &(*pci)->device()});
  virtio_.push_back(std::move(*pci));
  virtio_slots_.push_back(slot);
  return {};
}

Status Machine::addMmioDevice(PlannedDevice planned, const microvm::Transport& transport) {
  InterruptLine line(transport.gsi, [this](uint32_t gsi, bool level) { setIrq(gsi, level); });
  auto mmio = virtio::VirtioMmio::create(std::move(planned.device), memory_, transport.base, std::move(line));
  if (!mmio) return mmio.error();
  if (auto st = mmio_.add(transport.base, virtio::VirtioMmio::kWindowSize, mmio->get()); !st) return st;
  (*mmio)->watchNotifications([this](int fd, std::function<void()> on_readable) { host_.watchFd(fd, std::move(on_readable)); });
  if (!planned.netdev.empty()) nics_.push_back({planned.id, planned.netdev, &(*mmio)->device()});
  virtio_mmio_.push_back(std::move(*mmio));
  return {};
}

Status Machine::createDevices(const std::vector<microvm::Transport>& transports) {
  int next_slot = 1;
  size_t next_transport = 0;
  std::vector<boot::BootDevice> boot_devices;
  DeviceContext context{config_, host_, {}, nullptr};
  for (const auto& config : config_.devices) {
    if (isSerialPort(config)) context.ports.push_back(&config);
  }
  std::vector<bool> ports_taken(context.ports.size(), false);
  context.ports_taken = &ports_taken;
  for (const auto& config : config_.devices) {
    if (isSerialPort(config)) continue;
    auto planned = createDevice(config, context);
    if (!planned) return planned.error();
    if (planned->disk) disks_.push_back(*planned->disk);
    Status added = config_.isMicrovm() ? addMmioDevice(std::move(*planned), transports.at(next_transport++))
                                       : addPciDevice(std::move(*planned), config, next_slot, boot_devices);
    if (!added) return added;
  }
  const char* controller = config_.isMicrovm() ? "virtio-serial-device" : "virtio-serial-pci";
  for (size_t i = 0; i < ports_taken.size(); ++i) {
    if (!ports_taken[i]) return Error("-device " + context.ports[i]->driver + ": no virtio-serial bus for it (-device " + controller + ")");
  }
  return boot_.firmware ? addFirmwareDevices(boot_devices) : Status{};
}

Status Machine::addFirmwareDevices(const std::vector<boot::BootDevice>& boot_devices) {
  if (auto st = pio_.add(FwCfg::kPortBase, FwCfg::kPortLength, &fw_cfg_); !st) return st;
  if (auto st = pio_.add(I8042::kDataPort, 1, &i8042_.dataPort()); !st) return st;
  if (auto st = pio_.add(I8042::kCommandPort, 1, &i8042_.commandPort()); !st) return st;
  if (auto st = pio_.add(SystemControlPortA::kPort, 1, &port92_); !st) return st;
  // SeaBIOS writes its log to port 0x402 only when the port reads back 0xE9, so without it (as
  // on QEMU without -debugcon) the firmware spends no exits on a log nobody reads.
  if (log::level() >= log::Level::Debug) {
    if (auto st = pio_.add(kDebugConsole, 1, &debug_console_); !st) return st;
  }

  using boot::littleEndian;
  fw_cfg_.setItem(FwCfg::kRamSize, littleEndian(memory_.ramBytes(), 8));
  fw_cfg_.setItem(FwCfg::kNbCpus, littleEndian(config_.vcpus, 2));
  fw_cfg_.setItem(FwCfg::kMaxCpus, littleEndian(config_.vcpus, 2));
  fw_cfg_.setItem(FwCfg::kNoGraphic, littleEndian(1, 2));
  // SeaBIOS names this legacy item "etc/show-boot-menu"; a file of that name would be a second one.
  fw_cfg_.setItem(FwCfg::kBootMenu, littleEndian(config_.boot_menu, 2));
  auto acpi = boot::buildAcpiFirmwareFiles(*acpi_tables_, layout::kBiosAreaStart);  // pc: always built
  if (!acpi) return acpi.error();
  std::vector<std::pair<std::string, std::vector<uint8_t>>> files{
      {"etc/e820", boot::buildE820File(memory_)},
      {"etc/boot-cpus", littleEndian(config_.vcpus, 2)},
      {"etc/table-loader", std::move(acpi->loader)},
      {boot::kAcpiTablesFile, std::move(acpi->tables)},
      {boot::kAcpiRsdpFile, std::move(acpi->rsdp)},
      // ms before the firmware resets to retry when nothing boots; all ones: never (QEMU's default).
      {"etc/boot-fail-wait", littleEndian(static_cast<uint32_t>(config_.boot_retry_ms), 4)},
      // The firmware's text output (its int 10h) goes to COM1, as QEMU does without a display.
      {"etc/sercon-port", littleEndian(kCom1, 2)},
  };
  if (!boot_devices.empty()) files.emplace_back("bootorder", boot::buildBootOrderFile(boot_devices));
  for (auto& [name, data] : files) {
    if (auto st = fw_cfg_.addFile(name, std::move(data)); !st) return st;
  }
  return {};
}

void Machine::DebugConsole::write(uint64_t, std::span<const uint8_t> data) {
  std::lock_guard guard(mutex);
  for (uint8_t byte : data) {
    if (byte == '\n' || line.size() >= 256) {
      log::debug("firmware: " + line);
      line.clear();
    } else if (byte != '\r') {
      line += static_cast<char>(byte);
    }
  }
}

void Machine::setIrq(uint32_t gsi, bool level) {
  std::lock_guard lock(vm_mutex_);
  if (vm_) (void)vm_->setIrqLine(gsi, level);
}

namespace {
// What a direct-booted guest finds at the reset vector, where a PC's BIOS would be: code that
// resets the machine. Linux restarts through the BIOS this way when the ACPI is hardware-reduced
// and there is no EFI (arch/x86/kernel/reboot.c, BOOT_EFI then BOOT_BIOS: a real-mode jump to
// F000:FFF0), so a -M microvm guest's `reboot` lands here. The code loads an empty IDT and raises
// int3: the CPU cannot deliver it, nor the faults that follow, and shuts down (a triple fault),
// which KVM reports and the worker turns into a reset, as a PC does.
constexpr std::array<uint8_t, 16> kResetVectorCode = {
    0x2E, 0x0F, 0x01, 0x1E, 0xF8, 0xFF,  // lidt cs:[0xFFF8]
    0xCC,                                // int3
    0xF4,                                // hlt (never reached)
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // 0xFFF8: the IDT limit (0) and base (0)
    0x00, 0x00,
};

// Milliseconds since `since`, for the start-up timeline in the debug log (VMM_LOG=debug): where a
// boot's time goes before the guest's first instruction.
std::string millisecondsSince(std::chrono::steady_clock::time_point since) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - since).count();
  return std::to_string(us / 1000) + "." + std::to_string(us % 1000 / 100) + " ms";
}
}  // namespace

Status Machine::powerOn(bool paused) {
  auto started = std::chrono::steady_clock::now();
  auto vm = kvm::Vm::create(*kvm_);
  if (!vm) return vm.error();
  log::debug("power-on: VM created in " + millisecondsSince(started));
  // Intel needs these three pages below 4 GiB for real-mode emulation; others ignore them.
  (void)vm->setIdentityMapAddress(layout::kIdentityMap);
  (void)vm->setTssAddress(layout::kTssAddress);
  if (auto st = vm->createIrqchip(); !st) return st;
  if (!config_.isMicrovm() || config_.microvm.pit) {
    if (auto st = vm->createPit(); !st) return st;
  }
  uint32_t slot = 0;
  for (const auto& region : memory_.regions()) {
    if (auto st = vm->setUserMemoryRegion(slot++, region.guest_address, region.size, region.host); !st) return st;
  }

  std::optional<boot::BootEntry> entry;
  if (boot_.firmware) {
    // A ROM at the top of 4 GiB, and the copy below 1 MiB the reset vector runs from: fresh at
    // every power-on, so a reboot is a cold boot of the firmware.
    const auto& firmware = *boot_.firmware;
    if (auto st = vm->setUserMemoryRegion(slot++, firmware.guestAddress(), firmware.size(), firmware.data(), read_only_memory_); !st) return st;
    if (auto st = firmware.loadLowCopy(memory_); !st) return st;
  } else {
    if (acpi_tables_) {
      if (auto st = memory_.write(layout::kBiosAreaStart, acpi_tables_->blob); !st) return st;
    }
    if (auto st = memory_.write(layout::kResetVector, kResetVectorCode); !st) return st;
    auto load_started = std::chrono::steady_clock::now();
    auto loaded = boot_.kernel->load(memory_);
    if (!loaded) return loaded.error();
    entry = *loaded;
    log::debug("power-on: kernel and initrd loaded into guest RAM in " + millisecondsSince(load_started));
  }

  std::vector<std::unique_ptr<VcpuRunner>> runners;
  std::vector<std::optional<kvm::BinaryStats>> vcpu_stats;
  VcpuExitHandlers handlers{[this](PowerRequest r) { host_.powerRequest(r); },
                            [this](const std::string& report) { host_.vcpuFailed(report); }};
  for (uint32_t i = 0; i < config_.vcpus; ++i) {
    auto vcpu = kvm::Vcpu::create(*kvm_, *vm, i);
    if (!vcpu) return vcpu.error();
    if (auto st = configureVcpu(*vcpu, cpuid_, i, config_.vcpus); !st) return st.error().withContext("vCPU " + std::to_string(i));
    // Under firmware every vCPU keeps KVM's power-on state: the boot vCPU at the reset vector
    // (CS base 0xFFFF0000, IP 0xFFF0, real mode), the others waiting for INIT/SIPI.
    if (i == 0 && entry) {
      if (auto st = setupBootVcpu(*vcpu, memory_, *entry); !st) return st.error().withContext("boot vCPU");
    }
    vcpu_stats.push_back(optionalStats(vcpu->fd()));
    runners.push_back(std::make_unique<VcpuRunner>(std::move(*vcpu), pio_, mmio_, control_, handlers, *exit_stats_[i]));
  }
  {
    std::lock_guard lock(vm_mutex_);
    vm_ = std::move(*vm);
    if (auto st = irq_routing_.attach(&*vm_); !st) return st;
    Status attached;
    forEachTransport([&](auto& transport) {
      if (attached) attached = transport.attach(&*vm_);
    });
    if (!attached) return attached;
  }
  runners_ = std::move(runners);
  kvm_vcpu_stats_ = std::move(vcpu_stats);
  kvm_vm_stats_ = optionalStats(vm_->fd());
  control_.restart(paused ? VcpuControl::Target::Pause : VcpuControl::Target::Run);
  VcpuRunner::installKickSignal();
  for (auto& runner : runners_) runner->start();
  log::debug("power-on: vCPUs started " + millisecondsSince(started) + " after KVM_CREATE_VM");
  if (paused) control_.waitParked(runners_.size());
  return {};
}

void Machine::powerOff() {
  control_.set(VcpuControl::Target::Stop);
  for (auto& runner : runners_) runner->kick();
  for (auto& runner : runners_) runner->join();
  runners_.clear();
  kvm_vcpu_stats_.clear();
  kvm_vm_stats_.reset();
  std::lock_guard lock(vm_mutex_);
  forEachTransport([](auto& transport) { (void)transport.attach(nullptr); });
  (void)irq_routing_.attach(nullptr);
  vm_.reset();
}

Status Machine::reset(bool paused) {
  powerOff();
  serial_.reset();
  cmos_.reset();
  acpi_pm_.reset();
  acpi_ged_.reset();
  fw_cfg_.reset();
  i8042_.reset();
  forEachTransport([](auto& transport) { transport.resetDevice(); });
  return powerOn(paused);
}

void Machine::pressPowerButton() {
  if (!acpi_tables_) return;  // microvm with acpi=off: no power button, as QEMU's
  if (config_.isMicrovm()) {
    acpi_ged_.pressPowerButton();
  } else {
    acpi_pm_.pressPowerButton();
  }
}

void Machine::pause() {
  control_.set(VcpuControl::Target::Pause);
  for (auto& runner : runners_) runner->kick();
  control_.waitParked(runners_.size());
}

void Machine::resume() { control_.set(VcpuControl::Target::Run); }

Status Machine::startDirtyLog() {
  std::lock_guard lock(vm_mutex_);
  if (!vm_) return Error("dirty logging: the machine is not powered on");
  memory_.startHostWriteTracking();
  uint32_t slot = 0;  // RAM regions are the first slots (powerOn)
  for (const auto& region : memory_.regions()) {
    if (auto st = vm_->setDirtyLogging(slot++, region.guest_address, region.size, region.host, true); !st) return st;
  }
  return {};
}

Result<std::vector<std::vector<uint64_t>>> Machine::takeDirtyPages() {
  std::lock_guard lock(vm_mutex_);
  if (!vm_) return Error("dirty logging: the machine is not powered on");
  std::vector<std::vector<uint64_t>> dirty;
  uint32_t slot = 0;
  for (const auto& region : memory_.regions()) {
    std::vector<uint64_t> bitmap((region.size / 4096 + 63) / 64, 0);
    if (auto st = vm_->getDirtyLog(slot, bitmap); !st) return st.error();
    memory_.takeHostWritten(slot, bitmap);
    dirty.push_back(std::move(bitmap));
    ++slot;
  }
  return dirty;
}

void Machine::stopDirtyLog() {
  std::lock_guard lock(vm_mutex_);
  memory_.stopHostWriteTracking();
  if (!vm_) return;
  uint32_t slot = 0;
  for (const auto& region : memory_.regions()) {
    (void)vm_->setDirtyLogging(slot++, region.guest_address, region.size, region.host, false);
  }
}

bool Machine::setLink(const std::string& name, bool up) {
  for (auto& nic : nics_) {
    if (nic.netdev != name && (nic.id.empty() || nic.id != name)) continue;
    auto lock = nic.device->lock();
    static_cast<virtio::VirtioNet&>(*nic.device).setLink(up);
    return true;
  }
  return false;
}

std::vector<ExitStats::Snapshot> Machine::exitStats() const {
  std::vector<ExitStats::Snapshot> out;
  for (const auto& stats : exit_stats_) out.push_back(stats->snapshot());
  return out;
}

namespace {

std::vector<kvm::BinaryStat> readOrNothing(const std::optional<kvm::BinaryStats>& stats) {
  if (!stats) return {};
  auto values = stats->read();
  return values ? std::move(*values) : std::vector<kvm::BinaryStat>{};
}

}  // namespace

std::vector<kvm::BinaryStat> Machine::kvmVmStats() const { return readOrNothing(kvm_vm_stats_); }

std::vector<std::vector<kvm::BinaryStat>> Machine::kvmVcpuStats() const {
  std::vector<std::vector<kvm::BinaryStat>> out;
  for (const auto& stats : kvm_vcpu_stats_) out.push_back(readOrNothing(stats));
  return out;
}

std::vector<int> Machine::vcpuThreadIds() const {
  std::vector<int> ids(config_.vcpus, 0);
  for (const auto& runner : runners_) ids[runner->id()] = runner->threadId();
  return ids;
}

}  // namespace vmmd
