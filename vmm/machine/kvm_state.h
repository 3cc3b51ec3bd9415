// The state KVM keeps for a machine, as DeviceStates: each vCPU's (registers, special registers,
// FPU/XSAVE, XCRs, MSRs, local APIC, pending events, MP state, debug registers, TSC frequency)
// and the VM's (kvmclock, the in-kernel PIC/IOAPIC, the PIT). Fields: docs/migration-state.md.
// An ioctl this host's KVM lacks is an error naming it (PVM, old kernels), never a crash.
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "vmm/devices/device_state.h"
#include "vmm/kvm/kvm.h"

namespace vmmd {

// What this host's KVM offers for saving state, asked once per VM.
struct KvmStateSupport {
  bool sregs2 = false;      // KVM_CAP_SREGS2
  bool xsave = false;       // KVM_CAP_XSAVE (else the legacy FPU area)
  size_t xsave_size = 0;    // KVM_CAP_XSAVE2 on the VM: bytes of KVM_GET_XSAVE2 (0: KVM_GET_XSAVE)
  bool xcrs = false;        // KVM_CAP_XCRS
  bool tsc_control = false;  // KVM_CAP_TSC_CONTROL: the guest TSC frequency can be set
  bool debug_regs = false;  // KVM_CAP_DEBUGREGS
  bool vcpu_events = false;  // KVM_CAP_VCPU_EVENTS
  std::vector<uint32_t> msrs;  // KVM_GET_MSR_INDEX_LIST

  static Result<KvmStateSupport> probe(const kvm::Kvm& kvm, const kvm::Vm& vm);
};

inline constexpr const char* kVcpuStateKind = "cpu";
inline constexpr uint32_t kVcpuStateVersion = 1;
Result<DeviceState> saveVcpuState(const kvm::Vcpu& vcpu, const KvmStateSupport& support);
// Order: registers, special registers, XSAVE/FPU, XCRs, LAPIC, MSRs (the TSC deadline after the
// LAPIC's timer mode), MP state, events, debug registers.
Status loadVcpuState(kvm::Vcpu& vcpu, const DeviceState& state, const KvmStateSupport& support);

inline constexpr const char* kClockStateKind = "kvmclock";
inline constexpr const char* kIrqchipStateKind = "kvm-irqchip";
inline constexpr const char* kPitStateKind = "kvm-pit";
inline constexpr uint32_t kVmStateVersion = 1;
Result<DeviceState> saveClockState(const kvm::Vm& vm);
Status loadClockState(kvm::Vm& vm, const DeviceState& state);
Result<DeviceState> saveIrqchipState(const kvm::Vm& vm);
Status loadIrqchipState(kvm::Vm& vm, const DeviceState& state);
Result<DeviceState> savePitState(const kvm::Vm& vm);
Status loadPitState(kvm::Vm& vm, const DeviceState& state);

}  // namespace vmmd
