// The CPUID each vCPU sees: KVM's supported set, with the topology filled in per vCPU, the
// hypervisor bit set, and the user's "-cpu host,+feature,-feature" edits applied by QEMU's
// feature names.
#pragma once

#include <linux/kvm.h>

#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/config/machine_config.h"

namespace vmmd {

struct CpuidPlan {
  std::vector<kvm_cpuid_entry2> base;  // supported entries with feature edits applied
  std::vector<std::string> warnings;   // features asked for that the host cannot give
  bool hypervisor_bit = true;          // CPUID.1:ECX[31]; "-cpu host,-hypervisor" hides it
};

// Features KVM emulates for a guest but leaves out of KVM_GET_SUPPORTED_CPUID because they
// depend on how the VMM sets the VM up (QEMU adds them the same way for "-cpu host").
struct KvmEmulatedFeatures {
  bool tsc_deadline = false;  // KVM_CAP_TSC_DEADLINE_TIMER with the in-kernel LAPIC
};
// Adds those features to the supported list, before -cpu edits (so "-tsc-deadline" still works).
void addKvmEmulatedFeatures(std::vector<kvm_cpuid_entry2>& supported, const KvmEmulatedFeatures& features);

// An unknown feature name in -cpu is an error naming it; needs no KVM, so it is checked first.
Status checkCpuFeatures(const config::CpuConfig& cpu);
// Applies -cpu edits; an unknown feature name is an error naming it.
Result<CpuidPlan> planCpuid(const std::vector<kvm_cpuid_entry2>& supported, const config::CpuConfig& cpu);
// The entries for one vCPU: APIC ids and topology for `index` of `count`.
std::vector<kvm_cpuid_entry2> cpuidForVcpu(const CpuidPlan& plan, uint32_t index, uint32_t count);
// The XCR0 bits (user state components) the guest's CPUID leaf 0xD advertises; 0 without XSAVE.
uint64_t advertisedXcr0(const std::vector<kvm_cpuid_entry2>& entries);
// True when `name` is a feature this worker knows (for tests and messages).
bool isKnownCpuFeature(const std::string& name);

}  // namespace vmmd
