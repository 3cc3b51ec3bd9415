#include "vmm/machine/kvm_state.h"

#include <cstring>
#include <string>

#include "base/log.h"

namespace vmmd {
namespace {

enum class FpuFormat : uint8_t { Xsave = 1, Legacy = 2 };

// The fields kvm_sregs and kvm_sregs2 share.
template <typename From, typename To>
To copySharedSregs(const From& from) {
  To to{};
  to.cs = from.cs, to.ds = from.ds, to.es = from.es, to.fs = from.fs, to.gs = from.gs, to.ss = from.ss;
  to.tr = from.tr, to.ldt = from.ldt, to.gdt = from.gdt, to.idt = from.idt;
  to.cr0 = from.cr0, to.cr2 = from.cr2, to.cr3 = from.cr3, to.cr4 = from.cr4, to.cr8 = from.cr8;
  to.efer = from.efer, to.apic_base = from.apic_base;
  return to;
}

kvm_sregs2 toSregs2(const kvm_sregs& old) { return copySharedSregs<kvm_sregs, kvm_sregs2>(old); }

// Without KVM_CAP_SREGS2 the PDPTRs are read again from CR3 by KVM; a pending interrupt is in
// the vCPU events, not the old interrupt bitmap.
kvm_sregs toSregs(const kvm_sregs2& s) { return copySharedSregs<kvm_sregs2, kvm_sregs>(s); }

Error failed(const kvm::Vcpu& vcpu, const Error& error) { return error.withContext("vCPU " + std::to_string(vcpu.id())); }

// What `get` reads when this host's KVM has it (`supported`), else a zeroed T.
template <typename T, typename Get>
Result<T> readIfSupported(bool supported, Get get) {
  if (!supported) return T{};
  return get();
}

}  // namespace

Result<KvmStateSupport> KvmStateSupport::probe(const kvm::Kvm& kvm, const kvm::Vm& vm) {
  KvmStateSupport support;
  support.sregs2 = kvm.checkExtension(KVM_CAP_SREGS2) > 0;
  support.xsave = kvm.checkExtension(KVM_CAP_XSAVE) > 0;
  int xsave2 = vm.checkExtension(KVM_CAP_XSAVE2);
  support.xsave_size = xsave2 > 0 ? static_cast<size_t>(xsave2) : 0;
  support.xcrs = kvm.checkExtension(KVM_CAP_XCRS) > 0;
  support.tsc_control = kvm.checkExtension(KVM_CAP_TSC_CONTROL) > 0;
  support.debug_regs = kvm.checkExtension(KVM_CAP_DEBUGREGS) > 0;
  support.vcpu_events = kvm.checkExtension(KVM_CAP_VCPU_EVENTS) > 0;
  auto msrs = kvm.msrIndexList();
  if (!msrs) return msrs.error();
  support.msrs = std::move(*msrs);
  return support;
}

Result<DeviceState> saveVcpuState(const kvm::Vcpu& vcpu, const KvmStateSupport& support) {
  StateWriter out;
  out.u32(vcpu.id());
  auto regs = vcpu.regs();
  if (!regs) return failed(vcpu, regs.error());
  out.object(*regs);
  kvm_sregs2 sregs{};
  if (support.sregs2) {
    auto got = vcpu.sregs2();
    if (!got) return failed(vcpu, got.error());
    sregs = *got;
  } else {
    auto got = vcpu.sregs();
    if (!got) return failed(vcpu, got.error());
    sregs = toSregs2(*got);
  }
  out.object(sregs);
  if (support.xsave) {
    auto area = vcpu.xsave(support.xsave_size);
    if (!area) return failed(vcpu, area.error());
    out.u8(static_cast<uint8_t>(FpuFormat::Xsave));
    out.bytes(*area);
  } else {
    auto fpu = vcpu.fpu();
    if (!fpu) return failed(vcpu, fpu.error());
    out.u8(static_cast<uint8_t>(FpuFormat::Legacy));
    out.object(*fpu);
  }
  auto xcrs = readIfSupported<kvm_xcrs>(support.xcrs, [&] { return vcpu.xcrs(); });
  if (!xcrs) return failed(vcpu, xcrs.error());
  out.object(*xcrs);  // nr_xcrs 0: none saved
  auto msrs = vcpu.readMsrs(support.msrs);
  if (!msrs) return failed(vcpu, msrs.error());
  out.u32(static_cast<uint32_t>(msrs->size()));
  for (const auto& msr : *msrs) {
    out.u32(msr.index);
    out.u64(msr.data);
  }
  auto lapic = vcpu.lapic();
  if (!lapic) return failed(vcpu, lapic.error());
  out.object(*lapic);
  auto events = readIfSupported<kvm_vcpu_events>(support.vcpu_events, [&] { return vcpu.events(); });
  if (!events) return failed(vcpu, events.error());
  out.boolean(support.vcpu_events);
  out.object(*events);
  auto mp = vcpu.mpState();
  if (!mp) return failed(vcpu, mp.error());
  out.u32(mp->mp_state);
  auto debug = readIfSupported<kvm_debugregs>(support.debug_regs, [&] { return vcpu.debugRegs(); });
  if (!debug) return failed(vcpu, debug.error());
  out.boolean(support.debug_regs);
  out.object(*debug);
  auto khz = vcpu.tscKhz();
  out.u32(khz ? *khz : 0);  // 0: this host's KVM did not say
  return DeviceState{kVcpuStateKind, kVcpuStateVersion, out.take()};
}

Status loadVcpuState(kvm::Vcpu& vcpu, const DeviceState& state, const KvmStateSupport& support) {
  std::string what = "vCPU " + std::to_string(vcpu.id());
  if (auto st = checkState(state, kVcpuStateKind, kVcpuStateVersion); !st) return st.error().withContext(what);
  StateReader in(state.bytes);
  uint32_t id = in.u32();
  if (id != vcpu.id()) in.reject("the state is vCPU " + std::to_string(id) + "'s");
  auto regs = in.object<kvm_regs>();
  auto sregs = in.object<kvm_sregs2>();
  auto fpu_format = static_cast<FpuFormat>(in.u8());
  std::vector<uint8_t> xsave;
  kvm_fpu fpu{};
  if (fpu_format == FpuFormat::Xsave) {
    xsave = in.bytes();
    if (!in.failed() && xsave.size() < 4096) in.reject("an XSAVE area of " + std::to_string(xsave.size()) + " bytes");
  } else if (fpu_format == FpuFormat::Legacy) {
    fpu = in.object<kvm_fpu>();
  } else {
    in.reject("FPU format " + std::to_string(static_cast<int>(fpu_format)));
  }
  auto xcrs = in.object<kvm_xcrs>();
  if (xcrs.nr_xcrs > KVM_MAX_XCRS) in.reject(std::to_string(xcrs.nr_xcrs) + " XCRs");
  uint32_t msr_count = in.u32();
  if (msr_count > state.bytes.size() / 12) in.reject(std::to_string(msr_count) + " MSRs");
  std::vector<kvm_msr_entry> msrs;
  for (uint32_t i = 0; i < msr_count && !in.failed(); ++i) {
    kvm_msr_entry entry{};
    entry.index = in.u32();
    entry.data = in.u64();
    msrs.push_back(entry);
  }
  auto lapic = in.object<kvm_lapic_state>();
  bool has_events = in.boolean();
  auto events = in.object<kvm_vcpu_events>();
  uint32_t mp_state = in.u32();
  bool has_debug = in.boolean();
  auto debug = in.object<kvm_debugregs>();
  uint32_t tsc_khz = in.u32();
  if (auto st = in.finish(what); !st) return st;

  // What this host cannot take is refused before anything is set.
  if (fpu_format == FpuFormat::Xsave && !support.xsave) return Error(what + ": the state has an XSAVE area; this host's KVM lacks KVM_CAP_XSAVE");
  if (xsave.size() > std::max<size_t>(support.xsave_size, 4096)) {
    return Error(what + ": an XSAVE area of " + std::to_string(xsave.size()) + " bytes; this host's KVM takes " +
                 std::to_string(std::max<size_t>(support.xsave_size, 4096)));
  }
  if (xcrs.nr_xcrs > 0 && !support.xcrs) return Error(what + ": the state has XCRs; this host's KVM lacks KVM_CAP_XCRS");
  if (has_events && !support.vcpu_events) return Error(what + ": the state has vCPU events; this host's KVM lacks KVM_CAP_VCPU_EVENTS");

  if (tsc_khz != 0) {
    auto current = vcpu.tscKhz();
    if (current && *current != tsc_khz) {
      Status set = support.tsc_control ? vcpu.setTscKhz(tsc_khz) : Status(Error("no KVM_CAP_TSC_CONTROL"));
      if (!set) {
        log::warning(what + ": the guest's TSC runs at " + std::to_string(tsc_khz) + " kHz, this host's at " +
                     std::to_string(*current) + " kHz and cannot be set (" + set.error().message() + ")");
      }
    }
  }
  Status st = vcpu.setRegs(regs);
  if (st) st = support.sregs2 ? vcpu.setSregs2(sregs) : vcpu.setSregs(toSregs(sregs));
  if (st && fpu_format == FpuFormat::Xsave) {
    xsave.resize(std::max<size_t>(support.xsave_size, 4096), 0);
    st = vcpu.setXsave(xsave);
  }
  if (st && fpu_format == FpuFormat::Legacy) st = vcpu.setFpu(fpu);
  if (st && xcrs.nr_xcrs > 0) st = vcpu.setXcrs(xcrs);
  if (st) st = vcpu.setLapic(lapic);
  if (st && !msrs.empty()) st = vcpu.setMsrs(msrs);
  if (st) st = vcpu.setMpState(mp_state);
  if (st && has_events) st = vcpu.setEvents(events);
  if (st && has_debug) st = support.debug_regs ? vcpu.setDebugRegs(debug) : Status(Error("this host's KVM lacks KVM_CAP_DEBUGREGS"));
  if (!st) return st.error().withContext(what);
  return {};
}

Result<DeviceState> saveClockState(const kvm::Vm& vm) {
  auto clock = vm.clock();
  if (!clock) return clock.error();
  StateWriter out;
  out.u64(clock->clock);
  out.u32(clock->flags);
  return DeviceState{kClockStateKind, kVmStateVersion, out.take()};
}

Status loadClockState(kvm::Vm& vm, const DeviceState& state) {
  if (auto st = checkState(state, kClockStateKind, kVmStateVersion); !st) return st;
  StateReader in(state.bytes);
  kvm_clock_data clock{};
  clock.clock = in.u64();
  (void)in.u32();  // the source's flags (KVM_CLOCK_TSC_STABLE...): informational
  if (auto st = in.finish(kClockStateKind); !st) return st;
  return vm.setClock(clock);
}

Result<DeviceState> saveIrqchipState(const kvm::Vm& vm) {
  StateWriter out;
  for (uint32_t chip : {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC}) {
    auto got = vm.irqchip(chip);
    if (!got) return got.error().withContext("chip " + std::to_string(chip));
    out.object(*got);
  }
  return DeviceState{kIrqchipStateKind, kVmStateVersion, out.take()};
}

Status loadIrqchipState(kvm::Vm& vm, const DeviceState& state) {
  if (auto st = checkState(state, kIrqchipStateKind, kVmStateVersion); !st) return st;
  StateReader in(state.bytes);
  kvm_irqchip chips[3];
  for (uint32_t i = 0; i < 3; ++i) {
    chips[i] = in.object<kvm_irqchip>();
    if (chips[i].chip_id != i) in.reject("chip " + std::to_string(chips[i].chip_id) + " where chip " + std::to_string(i) + " belongs");
  }
  if (auto st = in.finish(kIrqchipStateKind); !st) return st;
  for (const auto& chip : chips) {
    if (auto st = vm.setIrqchip(chip); !st) return st;
  }
  return {};
}

Result<DeviceState> savePitState(const kvm::Vm& vm) {
  auto pit = vm.pit();
  if (!pit) return pit.error();
  StateWriter out;
  out.object(*pit);
  return DeviceState{kPitStateKind, kVmStateVersion, out.take()};
}

Status loadPitState(kvm::Vm& vm, const DeviceState& state) {
  if (auto st = checkState(state, kPitStateKind, kVmStateVersion); !st) return st;
  StateReader in(state.bytes);
  auto pit = in.object<kvm_pit_state2>();
  if (auto st = in.finish(kPitStateKind); !st) return st;
  return vm.setPit(pit);
}

}  // namespace vmmd
