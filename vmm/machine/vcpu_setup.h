// Puts a freshly created vCPU into the state a boot protocol promises its kernel, and gives every
// vCPU its CPUID, boot MSRs and local-APIC wiring.
#pragma once

#include "base/result.h"
#include "vmm/boot/boot.h"
#include "vmm/kvm/kvm.h"
#include "vmm/machine/cpuid.h"
#include "vmm/platform/guest_memory.h"

namespace vmmd {

// CPUID, MSRs and LINT0/LINT1 (ExtINT/NMI) for vCPU `index` of `count`.
Status configureVcpu(kvm::Vcpu& vcpu, const CpuidPlan& cpuid, uint32_t index, uint32_t count);
// Writes the boot GDT (and page tables for the 64-bit entry) and sets the boot vCPU's registers.
Status setupBootVcpu(kvm::Vcpu& vcpu, GuestMemory& memory, const boot::BootEntry& entry);

}  // namespace vmmd
