// Machine::saveState / loadState: the machine's state as id-named sections (machine_state.h),
// each given to its vCPU, KVM object or device model.
#include <algorithm>
#include <cstdio>
#include <set>

#include "vmm/machine/kvm_state.h"
#include "vmm/machine/machine.h"

namespace vmmd {
namespace {

std::string hexId(const char* prefix, uint64_t address) {
  char text[64];
  std::snprintf(text, sizeof text, "%s/0x%llx", prefix, static_cast<unsigned long long>(address));
  return text;
}

std::string pciId(int slot, const char* name) {
  char text[96];
  std::snprintf(text, sizeof text, "pci/0000:00:%02x.0/%s", slot, name);
  return text;
}

// A PCI function's section: its configuration space, then its transport's state (with the
// device's inside).
constexpr uint32_t kPciFunctionStateVersion = 1;

Result<DeviceState> savePciFunction(const virtio::VirtioPci& pci, const char* kind) {
  auto transport = pci.saveState();
  if (!transport) return transport.error();
  StateWriter out;
  pci.saveConfig(out);
  out.state(*transport);
  return DeviceState{kind, kPciFunctionStateVersion, out.take()};
}

Status loadPciFunction(virtio::VirtioPci& pci, const char* kind, const DeviceState& state) {
  if (auto st = checkState(state, kind, kPciFunctionStateVersion); !st) return st;
  StateReader in(state.bytes);
  if (auto st = pci.loadConfig(in); !st) return st.error().withContext(kind);
  DeviceState transport = in.state();
  if (auto st = in.finish(kind); !st) return st;
  return pci.loadState(transport);
}

}  // namespace

bool Machine::paused() const { return !runners_.empty() && control_.allParked(runners_.size()); }

Status Machine::checkStateAccess(const char* what) const {
  if (runners_.empty()) return Error(std::string(what) + ": the machine is not powered on");
  if (!paused()) return Error(std::string(what) + ": the vCPUs are running (pause the machine first)");
  return {};
}

std::vector<Machine::StateSection> Machine::stateSections() {
  std::vector<StateSection> sections;
  // Asked once per save or load: what this host's KVM offers (XSAVE2 size, SREGS2, the MSR list).
  auto support = std::make_shared<Result<KvmStateSupport>>(KvmStateSupport::probe(*kvm_, *vm_));
  auto supported = [support]() -> Result<const KvmStateSupport*> {
    if (!*support) return support->error();
    return &**support;
  };
  for (auto& runner : runners_) {
    kvm::Vcpu* vcpu = &runner->vcpu();
    sections.push_back({"cpu/" + std::to_string(vcpu->id()),
                        [vcpu, supported]() -> Result<DeviceState> {
                          auto s = supported();
                          if (!s) return s.error();
                          return saveVcpuState(*vcpu, **s);
                        },
                        [vcpu, supported](const DeviceState& state) -> Status {
                          auto s = supported();
                          if (!s) return s.error();
                          return loadVcpuState(*vcpu, state, **s);
                        }});
  }
  kvm::Vm* vm = &*vm_;
  sections.push_back({"kvm/irqchip", [vm] { return saveIrqchipState(*vm); }, [vm](const DeviceState& s) { return loadIrqchipState(*vm, s); }});
  if (!config_.isMicrovm() || config_.microvm.pit) {
    sections.push_back({"kvm/pit", [vm] { return savePitState(*vm); }, [vm](const DeviceState& s) { return loadPitState(*vm, s); }});
  }
  sections.push_back({"kvm/clock", [vm] { return saveClockState(*vm); }, [vm](const DeviceState& s) { return loadClockState(*vm, s); }});

  auto device = [&](std::string id, Device& d) {
    sections.push_back({std::move(id), [&d] { return d.saveState(); }, [&d](const DeviceState& s) { return d.loadState(s); }});
  };
  bool microvm = config_.isMicrovm();
  if (!microvm || config_.microvm.isa_serial) device(hexId("serial", kCom1), serial_);
  if (!microvm || config_.microvm.rtc) device(hexId("cmos", kCmos), cmos_);
  if (acpi_tables_ && microvm) device(hexId("acpi-ged", microvm::kGedBase), acpi_ged_);
  if (acpi_tables_ && !microvm) device(hexId("acpi-pm", kAcpiPmBase), acpi_pm_);
  if (boot_.firmware) {
    device(hexId("fw-cfg", FwCfg::kPortBase), fw_cfg_);
    device(hexId("i8042", I8042::kDataPort), i8042_);
  }
  if (!microvm) {
    sections.push_back({hexId("pci-host", PciHost::kConfigAddressPort), [this]() -> Result<DeviceState> { return pci_.saveState(); },
                        [this](const DeviceState& s) { return pci_.loadState(s); }});
  }
  for (size_t i = 0; i < virtio_.size(); ++i) {
    virtio::VirtioPci* pci = virtio_[i].get();
    const char* kind = pci->device().name();
    sections.push_back({pciId(virtio_slots_[i], kind), [pci, kind] { return savePciFunction(*pci, kind); },
                        [pci, kind](const DeviceState& s) { return loadPciFunction(*pci, kind, s); }});
  }
  for (auto& owned : virtio_mmio_) {
    virtio::VirtioMmio* mmio = owned.get();
    sections.push_back({hexId("virtio-mmio", mmio->base()) + "/" + mmio->device().name(), [mmio] { return mmio->saveState(); },
                        [mmio](const DeviceState& s) { return mmio->loadState(s); }});
  }
  return sections;
}

void Machine::stopDeviceIo() {
  forEachTransport([](auto& transport) {
    auto lock = transport.device().lock();
    transport.device().stopIo();
  });
}

void Machine::resumeDeviceIo() {
  forEachTransport([](auto& transport) {
    auto lock = transport.device().lock();
    transport.device().resumeIo();
    // Kicks that came while stopped were not served: serve every queue once.
    for (uint16_t i = 0; i < transport.device().queueCount(); ++i) transport.kickAgain(i);
  });
}

Status Machine::releaseDisks() {
  for (size_t i = 0; i < disks_.size(); ++i) {
    if (auto r = disks_[i].image->release(); !r) {
      for (size_t j = 0; j < i; ++j) (void)disks_[j].image->acquire();  // all or none
      return r.error().withContext("drive " + disks_[i].device);
    }
  }
  return {};
}

Status Machine::acquireDisks() {
  for (const auto& disk : disks_) {
    if (auto r = disk.image->acquire(); !r) return r.error().withContext("drive " + disk.device);
  }
  return {};
}

bool Machine::disksReleased() const {
  return std::any_of(disks_.begin(), disks_.end(), [](const DiskInfo& disk) { return disk.image->released(); });
}

size_t Machine::requestsInFlight() const {
  size_t total = 0;
  for (const auto& pci : virtio_) total += pci->device().requestsInFlight();
  for (const auto& mmio : virtio_mmio_) total += mmio->device().requestsInFlight();
  return total;
}

Result<MachineState> Machine::saveState() {
  if (auto st = checkStateAccess("save state"); !st) return st.error();
  MachineState state;
  for (auto& section : stateSections()) {
    auto saved = section.save();
    if (!saved) return saved.error().withContext("save " + section.id);
    state.sections.push_back({section.id, std::move(*saved)});
  }
  return state;
}

Status Machine::loadState(const MachineState& state) {
  if (auto st = checkStateAccess("load state"); !st) return st;
  auto sections = stateSections();
  // Every section must be for a device here, and every device here must have one: a state for
  // another configuration is refused before anything is loaded.
  std::set<std::string> expected, given;
  for (const auto& section : sections) expected.insert(section.id);
  for (const auto& section : state.sections) {
    if (!given.insert(section.id).second) return Error("load state: section " + section.id + " appears twice");
    if (!expected.count(section.id)) return Error("load state: section " + section.id + " is for a device this machine does not have");
  }
  for (const auto& id : expected) {
    if (!given.count(id)) return Error("load state: no section for " + id + " (the state is for another configuration)");
  }
  for (auto& section : sections) {
    if (auto st = section.load(state.find(section.id)->state); !st) return st.error().withContext("load " + section.id);
  }
  return {};
}

}  // namespace vmmd
