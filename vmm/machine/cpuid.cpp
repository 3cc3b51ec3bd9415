#include "vmm/machine/cpuid.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace vmmd {
namespace {

enum class Reg { Eax, Ebx, Ecx, Edx };

struct Feature {
  const char* name;
  uint32_t function;
  uint32_t index;
  Reg reg;
  uint8_t bit;
};

// QEMU's names (target/i386/cpu.c feature_word_info) for the bits users commonly switch.
constexpr Feature kFeatures[] = {
    {"sse3", 1, 0, Reg::Ecx, 0}, {"pclmulqdq", 1, 0, Reg::Ecx, 1}, {"monitor", 1, 0, Reg::Ecx, 3},
    {"vmx", 1, 0, Reg::Ecx, 5}, {"ssse3", 1, 0, Reg::Ecx, 9}, {"fma", 1, 0, Reg::Ecx, 12},
    {"cx16", 1, 0, Reg::Ecx, 13}, {"pdcm", 1, 0, Reg::Ecx, 15}, {"pcid", 1, 0, Reg::Ecx, 17},
    {"sse4.1", 1, 0, Reg::Ecx, 19}, {"sse4.2", 1, 0, Reg::Ecx, 20}, {"x2apic", 1, 0, Reg::Ecx, 21},
    {"movbe", 1, 0, Reg::Ecx, 22}, {"popcnt", 1, 0, Reg::Ecx, 23}, {"tsc-deadline", 1, 0, Reg::Ecx, 24},
    {"aes", 1, 0, Reg::Ecx, 25}, {"xsave", 1, 0, Reg::Ecx, 26}, {"avx", 1, 0, Reg::Ecx, 28},
    {"f16c", 1, 0, Reg::Ecx, 29}, {"rdrand", 1, 0, Reg::Ecx, 30}, {"hypervisor", 1, 0, Reg::Ecx, 31},
    {"fpu", 1, 0, Reg::Edx, 0}, {"vme", 1, 0, Reg::Edx, 1}, {"de", 1, 0, Reg::Edx, 2}, {"pse", 1, 0, Reg::Edx, 3},
    {"tsc", 1, 0, Reg::Edx, 4}, {"msr", 1, 0, Reg::Edx, 5}, {"pae", 1, 0, Reg::Edx, 6}, {"mce", 1, 0, Reg::Edx, 7},
    {"cx8", 1, 0, Reg::Edx, 8}, {"apic", 1, 0, Reg::Edx, 9}, {"sep", 1, 0, Reg::Edx, 11}, {"mtrr", 1, 0, Reg::Edx, 12},
    {"pge", 1, 0, Reg::Edx, 13}, {"mca", 1, 0, Reg::Edx, 14}, {"cmov", 1, 0, Reg::Edx, 15}, {"pat", 1, 0, Reg::Edx, 16},
    {"pse36", 1, 0, Reg::Edx, 17}, {"clflush", 1, 0, Reg::Edx, 19}, {"mmx", 1, 0, Reg::Edx, 23},
    {"fxsr", 1, 0, Reg::Edx, 24}, {"sse", 1, 0, Reg::Edx, 25}, {"sse2", 1, 0, Reg::Edx, 26}, {"ss", 1, 0, Reg::Edx, 27},
    {"ht", 1, 0, Reg::Edx, 28},
    {"fsgsbase", 7, 0, Reg::Ebx, 0}, {"tsc-adjust", 7, 0, Reg::Ebx, 1}, {"bmi1", 7, 0, Reg::Ebx, 3},
    {"hle", 7, 0, Reg::Ebx, 4}, {"avx2", 7, 0, Reg::Ebx, 5}, {"smep", 7, 0, Reg::Ebx, 7}, {"bmi2", 7, 0, Reg::Ebx, 8},
    {"erms", 7, 0, Reg::Ebx, 9}, {"invpcid", 7, 0, Reg::Ebx, 10}, {"rtm", 7, 0, Reg::Ebx, 11},
    {"mpx", 7, 0, Reg::Ebx, 14}, {"avx512f", 7, 0, Reg::Ebx, 16}, {"avx512dq", 7, 0, Reg::Ebx, 17},
    {"rdseed", 7, 0, Reg::Ebx, 18}, {"adx", 7, 0, Reg::Ebx, 19}, {"smap", 7, 0, Reg::Ebx, 20},
    {"avx512ifma", 7, 0, Reg::Ebx, 21}, {"clflushopt", 7, 0, Reg::Ebx, 23}, {"clwb", 7, 0, Reg::Ebx, 24},
    {"avx512cd", 7, 0, Reg::Ebx, 28}, {"sha-ni", 7, 0, Reg::Ebx, 29}, {"avx512bw", 7, 0, Reg::Ebx, 30},
    {"avx512vl", 7, 0, Reg::Ebx, 31},
    {"avx512vbmi", 7, 0, Reg::Ecx, 1}, {"umip", 7, 0, Reg::Ecx, 2}, {"pku", 7, 0, Reg::Ecx, 3},
    {"waitpkg", 7, 0, Reg::Ecx, 5}, {"avx512vbmi2", 7, 0, Reg::Ecx, 6}, {"gfni", 7, 0, Reg::Ecx, 8},
    {"vaes", 7, 0, Reg::Ecx, 9}, {"vpclmulqdq", 7, 0, Reg::Ecx, 10}, {"avx512vnni", 7, 0, Reg::Ecx, 11},
    {"avx512bitalg", 7, 0, Reg::Ecx, 12}, {"avx512-vpopcntdq", 7, 0, Reg::Ecx, 14}, {"la57", 7, 0, Reg::Ecx, 16},
    {"rdpid", 7, 0, Reg::Ecx, 22}, {"movdiri", 7, 0, Reg::Ecx, 27}, {"movdir64b", 7, 0, Reg::Ecx, 28},
    {"fsrm", 7, 0, Reg::Edx, 4}, {"md-clear", 7, 0, Reg::Edx, 10}, {"serialize", 7, 0, Reg::Edx, 14},
    {"tsx-ldtrk", 7, 0, Reg::Edx, 16}, {"spec-ctrl", 7, 0, Reg::Edx, 26}, {"stibp", 7, 0, Reg::Edx, 27},
    {"arch-capabilities", 7, 0, Reg::Edx, 29}, {"core-capability", 7, 0, Reg::Edx, 30}, {"ssbd", 7, 0, Reg::Edx, 31},
    {"xsaveopt", 0xD, 1, Reg::Eax, 0}, {"xsavec", 0xD, 1, Reg::Eax, 1}, {"xgetbv1", 0xD, 1, Reg::Eax, 2},
    {"xsaves", 0xD, 1, Reg::Eax, 3},
    {"lahf-lm", 0x80000001, 0, Reg::Ecx, 0}, {"cmp-legacy", 0x80000001, 0, Reg::Ecx, 1},
    {"svm", 0x80000001, 0, Reg::Ecx, 2}, {"extapic", 0x80000001, 0, Reg::Ecx, 3},
    {"cr8legacy", 0x80000001, 0, Reg::Ecx, 4}, {"abm", 0x80000001, 0, Reg::Ecx, 5},
    {"sse4a", 0x80000001, 0, Reg::Ecx, 6}, {"misalignsse", 0x80000001, 0, Reg::Ecx, 7},
    {"3dnowprefetch", 0x80000001, 0, Reg::Ecx, 8}, {"osvw", 0x80000001, 0, Reg::Ecx, 9},
    {"xop", 0x80000001, 0, Reg::Ecx, 11}, {"fma4", 0x80000001, 0, Reg::Ecx, 16}, {"tbm", 0x80000001, 0, Reg::Ecx, 21},
    {"topoext", 0x80000001, 0, Reg::Ecx, 22}, {"perfctr-core", 0x80000001, 0, Reg::Ecx, 23},
    {"syscall", 0x80000001, 0, Reg::Edx, 11}, {"nx", 0x80000001, 0, Reg::Edx, 20},
    {"mmxext", 0x80000001, 0, Reg::Edx, 22}, {"fxsr-opt", 0x80000001, 0, Reg::Edx, 25},
    {"pdpe1gb", 0x80000001, 0, Reg::Edx, 26}, {"rdtscp", 0x80000001, 0, Reg::Edx, 27},
    {"lm", 0x80000001, 0, Reg::Edx, 29},
    {"invtsc", 0x80000007, 0, Reg::Edx, 8},
    {"ibpb", 0x80000008, 0, Reg::Ebx, 12}, {"amd-stibp", 0x80000008, 0, Reg::Ebx, 15},
    {"amd-ssbd", 0x80000008, 0, Reg::Ebx, 24}, {"virt-ssbd", 0x80000008, 0, Reg::Ebx, 25},
    {"kvmclock", 0x40000001, 0, Reg::Eax, 0}, {"kvm-nopiodelay", 0x40000001, 0, Reg::Eax, 1},
    {"kvm-mmu", 0x40000001, 0, Reg::Eax, 2}, {"kvmclock2", 0x40000001, 0, Reg::Eax, 3},
    {"kvm-asyncpf", 0x40000001, 0, Reg::Eax, 4}, {"kvm-steal-time", 0x40000001, 0, Reg::Eax, 5},
    {"kvm-pv-eoi", 0x40000001, 0, Reg::Eax, 6}, {"kvm-pv-unhalt", 0x40000001, 0, Reg::Eax, 7},
    {"kvm-pv-tlb-flush", 0x40000001, 0, Reg::Eax, 9}, {"kvm-asyncpf-vmexit", 0x40000001, 0, Reg::Eax, 10},
    {"kvm-pv-ipi", 0x40000001, 0, Reg::Eax, 11}, {"kvm-poll-control", 0x40000001, 0, Reg::Eax, 12},
    {"kvm-pv-sched-yield", 0x40000001, 0, Reg::Eax, 13}, {"kvm-asyncpf-int", 0x40000001, 0, Reg::Eax, 14},
    {"kvm-msi-ext-dest-id", 0x40000001, 0, Reg::Eax, 15}, {"kvmclock-stable-bit", 0x40000001, 0, Reg::Eax, 24},
};

const Feature* findFeature(const std::string& name) {
  // QEMU accepts '_' for '-' in feature names.
  std::string canonical = name;
  std::replace(canonical.begin(), canonical.end(), '_', '-');
  // QEMU's spellings of the SSE4 flags with a dash instead of the dot.
  if (canonical == "sse4-1") canonical = "sse4.1";
  if (canonical == "sse4-2") canonical = "sse4.2";
  for (const auto& feature : kFeatures) {
    if (canonical == feature.name) return &feature;
  }
  return nullptr;
}

uint32_t& regOf(kvm_cpuid_entry2& entry, Reg reg) {
  switch (reg) {
    case Reg::Eax: return entry.eax;
    case Reg::Ebx: return entry.ebx;
    case Reg::Ecx: return entry.ecx;
    case Reg::Edx: return entry.edx;
  }
  return entry.eax;
}

kvm_cpuid_entry2* findEntry(std::vector<kvm_cpuid_entry2>& entries, uint32_t function, uint32_t index) {
  for (auto& entry : entries) {
    bool indexed = entry.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    if (entry.function == function && (!indexed || entry.index == index)) return &entry;
  }
  return nullptr;
}

}  // namespace

uint64_t advertisedXcr0(const std::vector<kvm_cpuid_entry2>& entries) {
  auto copy = entries;
  kvm_cpuid_entry2* leaf1 = findEntry(copy, 1, 0);
  kvm_cpuid_entry2* xsave = findEntry(copy, 0xD, 0);
  if (!leaf1 || !xsave || !(leaf1->ecx & (1u << 26))) return 0;
  return (uint64_t{xsave->edx} << 32) | xsave->eax;
}

bool isKnownCpuFeature(const std::string& name) { return findFeature(name) != nullptr; }

void addKvmEmulatedFeatures(std::vector<kvm_cpuid_entry2>& supported, const KvmEmulatedFeatures& features) {
  // Without TSC-deadline mode a Linux guest calibrates its LAPIC timer against the PIT for at
  // least 100 ms of every boot (far longer when nested); with it, the calibration is skipped.
  if (kvm_cpuid_entry2* leaf1 = findEntry(supported, 1, 0); leaf1 && features.tsc_deadline) leaf1->ecx |= 1u << 24;
}

Status checkCpuFeatures(const config::CpuConfig& cpu) {
  for (const auto& feature : cpu.features) {
    if (!findFeature(feature.first)) return Error("-cpu: CPU feature '" + feature.first + "' is unknown");
  }
  return {};
}

Result<CpuidPlan> planCpuid(const std::vector<kvm_cpuid_entry2>& supported, const config::CpuConfig& cpu) {
  if (auto st = checkCpuFeatures(cpu); !st) return st.error();
  CpuidPlan plan{supported, {}};
  for (const auto& [name, wanted] : cpu.features) {
    const Feature* feature = findFeature(name);
    kvm_cpuid_entry2* entry = findEntry(plan.base, feature->function, feature->index);
    uint32_t mask = 1u << feature->bit;
    if (!wanted) {
      if (entry) regOf(*entry, feature->reg) &= ~mask;
      if (std::string_view(feature->name) == "hypervisor") plan.hypervisor_bit = false;
      continue;
    }
    if (std::string_view(feature->name) == "hypervisor") plan.hypervisor_bit = true;
    // "+feature" can only keep what the host supports; like QEMU without "enforce", warn.
    if (!entry || !(regOf(*entry, feature->reg) & mask)) {
      plan.warnings.push_back("host doesn't support requested feature: " + name);
    }
  }
  return plan;
}

std::vector<kvm_cpuid_entry2> cpuidForVcpu(const CpuidPlan& plan, uint32_t index, uint32_t count) {
  std::vector<kvm_cpuid_entry2> entries = plan.base;
  uint32_t core_bits = count > 1 ? static_cast<uint32_t>(std::bit_width(count - 1)) : 0;
  for (auto& entry : entries) {
    switch (entry.function) {
      case 1:
        // Initial APIC id, logical processor count, hypervisor present.
        entry.ebx = (entry.ebx & 0x0000FFFF) | (index << 24) | (std::min(count, 255u) << 16);
        if (plan.hypervisor_bit) entry.ecx |= 1u << 31;
        if (count > 1) entry.edx |= 1u << 28;
        break;
      case 0xB:
      case 0x1F:
        // Extended topology: one thread per core, `count` cores in one package.
        if (entry.index == 0) {
          entry.eax = 0;
          entry.ebx = 1;
          entry.ecx = (1u << 8) | 0;
        } else if (entry.index == 1) {
          entry.eax = core_bits;
          entry.ebx = count;
          entry.ecx = (2u << 8) | 1;
        } else {
          entry.eax = entry.ebx = 0;
          entry.ecx = entry.index;
        }
        entry.edx = index;
        break;
      case 4:
        // Deterministic cache parameters: cores per package - 1 in EAX[31:26].
        entry.eax = (entry.eax & 0x03FFFFFF) | ((std::min(count, 64u) - 1) << 26);
        break;
      case 0x80000008:
        // AMD: number of cores - 1 in ECX[7:0], APIC id size in ECX[15:12].
        entry.ecx = (entry.ecx & ~0xF0FFu) | (core_bits << 12) | (count - 1);
        break;
      default:
        break;
    }
  }
  return entries;
}

}  // namespace vmmd
