#include "vmm/machine/cpuid.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "tests/support/cannot_run.h"
#include "vmm/kvm/kvm.h"

namespace vmmd {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

kvm_cpuid_entry2 entry(uint32_t function, uint32_t index, uint32_t eax, uint32_t ebx, uint32_t ecx, uint32_t edx,
                       bool indexed = false) {
  kvm_cpuid_entry2 e{};
  e.function = function;
  e.index = index;
  e.flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
  e.eax = eax;
  e.ebx = ebx;
  e.ecx = ecx;
  e.edx = edx;
  return e;
}

constexpr uint32_t bit(int n) { return 1u << n; }

// A small host: SSE3, CX16, X2APIC, POPCNT (leaf 1 ECX); FPU, APIC (EDX); AVX2 (leaf 7); XSAVEOPT
// (leaf 0xD index 1); LM, NX; two-level topology leaves; cache leaf 4; AMD 0x80000008.
std::vector<kvm_cpuid_entry2> syntheticHost() {
  return {
      entry(0, 0, 0xD, 0x756e6547, 0x6c65746e, 0x49656e69),
      entry(1, 0, 0x000906EA, 0x00000800, bit(0) | bit(13) | bit(21) | bit(23), bit(0) | bit(9)),
      entry(4, 0, 0x1C004121, 0x01C0003F, 0x3F, 0, true),
      entry(4, 1, 0x1C004122, 0x01C0003F, 0x3F, 0, true),
      entry(7, 0, 0, bit(5), 0, 0, true),
      entry(0xB, 0, 0, 0, 0, 0, true),
      entry(0xB, 1, 0, 0, 0, 0, true),
      entry(0xD, 0, 0x7, 0x340, 0x340, 0, true),
      entry(0xD, 1, bit(0), 0, 0, 0, true),
      entry(0x80000001, 0, 0, 0, bit(0), bit(20) | bit(29)),
      entry(0x80000008, 0, 0x3027, 0, 0x0000F0FF, 0),
  };
}

const kvm_cpuid_entry2* find(const std::vector<kvm_cpuid_entry2>& entries, uint32_t function, uint32_t index = 0) {
  for (const auto& e : entries) {
    if (e.function == function && e.index == index) return &e;
  }
  return nullptr;
}

config::CpuConfig cpu(std::vector<std::pair<std::string, bool>> features) {
  config::CpuConfig c;
  c.features = std::move(features);
  return c;
}

TEST(PlanCpuid, NoEditsKeepsTheSupportedList) {
  auto host = syntheticHost();
  auto plan = planCpuid(host, cpu({}));
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  ASSERT_EQ(plan->base.size(), host.size());
  EXPECT_EQ(std::memcmp(plan->base.data(), host.data(), host.size() * sizeof(kvm_cpuid_entry2)), 0);
  EXPECT_THAT(plan->warnings, IsEmpty());
}

TEST(PlanCpuid, UnknownFeatureIsAnErrorNamingIt) {
  auto plan = planCpuid(syntheticHost(), cpu({{"cx16", false}, {"warp-drive", true}}));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().message(), "-cpu: CPU feature 'warp-drive' is unknown");
  auto minus = planCpuid(syntheticHost(), cpu({{"bogus", false}}));
  ASSERT_FALSE(minus.ok());
  EXPECT_EQ(minus.error().message(), "-cpu: CPU feature 'bogus' is unknown");
}

TEST(PlanCpuid, MinusFeatureClearsOnlyThatBit) {
  auto plan = planCpuid(syntheticHost(), cpu({{"cx16", false}}));
  ASSERT_TRUE(plan.ok());
  const auto* leaf1 = find(plan->base, 1);
  ASSERT_NE(leaf1, nullptr);
  EXPECT_EQ(leaf1->ecx, bit(0) | bit(21) | bit(23));
  EXPECT_EQ(leaf1->edx, bit(0) | bit(9));
  EXPECT_THAT(plan->warnings, IsEmpty());
}

TEST(PlanCpuid, MinusFeatureInEachRegisterAndLeaf) {
  auto plan = planCpuid(syntheticHost(), cpu({{"apic", false}, {"avx2", false}, {"nx", false}, {"lahf-lm", false}}));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(find(plan->base, 1)->edx, bit(0));
  EXPECT_EQ(find(plan->base, 7)->ebx, 0u);
  EXPECT_EQ(find(plan->base, 0x80000001)->edx, bit(29));
  EXPECT_EQ(find(plan->base, 0x80000001)->ecx, 0u);
}

TEST(PlanCpuid, IndexedLeafEditsTheRightSubleaf) {
  auto plan = planCpuid(syntheticHost(), cpu({{"xsaveopt", false}}));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(find(plan->base, 0xD, 1)->eax, 0u);
  EXPECT_EQ(find(plan->base, 0xD, 0)->eax, 0x7u) << "subleaf 0 untouched";
}

TEST(PlanCpuid, UnderscoreSpellingIsAccepted) {
  EXPECT_TRUE(isKnownCpuFeature("tsc-deadline"));
  EXPECT_TRUE(isKnownCpuFeature("tsc_deadline"));
  EXPECT_FALSE(isKnownCpuFeature("tscdeadline"));
  auto plan = planCpuid(syntheticHost(), cpu({{"lahf_lm", false}}));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(find(plan->base, 0x80000001)->ecx, 0u);
}

TEST(PlanCpuid, MinusFeatureOfAMissingLeafIsHarmless) {
  auto plan = planCpuid(syntheticHost(), cpu({{"invtsc", false}}));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->base.size(), syntheticHost().size());
  EXPECT_THAT(plan->warnings, IsEmpty());
}

TEST(PlanCpuid, PlusUnsupportedFeatureWarnsLikeQemu) {
  auto plan = planCpuid(syntheticHost(), cpu({{"avx512f", true}, {"invtsc", true}, {"avx2", true}}));
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(plan->warnings, ElementsAre("host doesn't support requested feature: avx512f",
                                          "host doesn't support requested feature: invtsc"));
  EXPECT_EQ(find(plan->base, 7)->ebx, bit(5)) << "+feature never adds a bit the host lacks";
}

TEST(KvmEmulatedFeatures, TscDeadlineIsAddedWhenKvmHasIt) {
  auto with = syntheticHost();
  addKvmEmulatedFeatures(with, {.tsc_deadline = true});
  EXPECT_TRUE(with[1].ecx & bit(24));
  EXPECT_EQ(with[1].ecx & ~bit(24), syntheticHost()[1].ecx);

  auto without = syntheticHost();
  addKvmEmulatedFeatures(without, {.tsc_deadline = false});
  EXPECT_FALSE(without[1].ecx & bit(24));
}

TEST(KvmEmulatedFeatures, MinusTscDeadlineStillRemovesIt) {
  auto supported = syntheticHost();
  addKvmEmulatedFeatures(supported, {.tsc_deadline = true});
  config::CpuConfig cpu;
  cpu.model = "host";
  cpu.features = {{"tsc-deadline", false}};
  auto plan = planCpuid(supported, cpu);
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->base[1].ecx & bit(24));
}

TEST(CpuidForVcpu, ApicIdAndLogicalCountInLeaf1) {
  auto plan = planCpuid(syntheticHost(), cpu({}));
  ASSERT_TRUE(plan.ok());
  auto entries = cpuidForVcpu(*plan, 3, 4);
  const auto* leaf1 = find(entries, 1);
  ASSERT_NE(leaf1, nullptr);
  EXPECT_EQ(leaf1->ebx >> 24, 3u) << "initial APIC id";
  EXPECT_EQ((leaf1->ebx >> 16) & 0xFF, 4u) << "logical processors";
  EXPECT_EQ(leaf1->ebx & 0xFFFF, 0x0800u) << "CLFLUSH size and brand index kept";
  EXPECT_TRUE(leaf1->edx & bit(28)) << "HTT with more than one vCPU";
  EXPECT_EQ(leaf1->ecx & ~bit(31), bit(0) | bit(13) | bit(21) | bit(23)) << "features untouched";
}

TEST(CpuidForVcpu, HypervisorBitIsAlwaysSet) {
  auto plan = planCpuid(syntheticHost(), cpu({}));
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(find(plan->base, 1)->ecx & bit(31)) << "the synthetic host does not have it";
  for (uint32_t count : {1u, 2u, 254u}) {
    EXPECT_TRUE(find(cpuidForVcpu(*plan, 0, count), 1)->ecx & bit(31)) << count;
  }
}

TEST(CpuidForVcpu, SingleVcpuHasNoHtt) {
  auto plan = planCpuid(syntheticHost(), cpu({}));
  ASSERT_TRUE(plan.ok());
  auto entries = cpuidForVcpu(*plan, 0, 1);
  EXPECT_FALSE(find(entries, 1)->edx & bit(28));
  EXPECT_EQ((find(entries, 1)->ebx >> 16) & 0xFF, 1u);
  EXPECT_EQ(find(entries, 0xB, 1)->eax, 0u) << "no APIC id bits for cores";
  EXPECT_EQ(find(entries, 0xB, 1)->ebx, 1u);
}

TEST(CpuidForVcpu, ExtendedTopologyLeafB) {
  auto plan = planCpuid(syntheticHost(), cpu({}));
  ASSERT_TRUE(plan.ok());
  auto entries = cpuidForVcpu(*plan, 5, 6);
  const auto* smt = find(entries, 0xB, 0);
  const auto* core = find(entries, 0xB, 1);
  ASSERT_NE(smt, nullptr);
  ASSERT_NE(core, nullptr);
  EXPECT_EQ(smt->eax, 0u);
  EXPECT_EQ(smt->ebx, 1u) << "one thread per core";
  EXPECT_EQ(smt->ecx, 0x100u) << "level 0, type SMT";
  EXPECT_EQ(smt->edx, 5u) << "x2APIC id";
  EXPECT_EQ(core->eax, 3u) << "6 vCPUs need 3 APIC id bits";
  EXPECT_EQ(core->ebx, 6u);
  EXPECT_EQ(core->ecx, 0x201u) << "level 1, type core";
  EXPECT_EQ(core->edx, 5u);
}

TEST(CpuidForVcpu, EveryVcpuGetsItsOwnApicId) {
  auto plan = planCpuid(syntheticHost(), cpu({}));
  ASSERT_TRUE(plan.ok());
  for (uint32_t index = 0; index < 254; index += 37) {
    auto entries = cpuidForVcpu(*plan, index, 254);
    EXPECT_EQ(find(entries, 1)->ebx >> 24, index);
    EXPECT_EQ(find(entries, 0xB, 0)->edx, index);
    EXPECT_EQ(find(entries, 0xB, 1)->edx, index);
  }
}

TEST(CpuidForVcpu, CacheAndAmdCoreCounts) {
  auto plan = planCpuid(syntheticHost(), cpu({}));
  ASSERT_TRUE(plan.ok());
  auto four = cpuidForVcpu(*plan, 0, 4);
  EXPECT_EQ(find(four, 4, 0)->eax >> 26, 3u) << "cores per package - 1";
  EXPECT_EQ(find(four, 4, 0)->eax & 0x03FFFFFF, 0x1C004121u & 0x03FFFFFF) << "cache description kept";
  EXPECT_EQ(find(four, 4, 1)->eax >> 26, 3u);
  EXPECT_EQ(find(four, 0x80000008)->ecx & 0xFF, 3u) << "AMD: cores - 1";
  EXPECT_EQ((find(four, 0x80000008)->ecx >> 12) & 0xF, 2u) << "AMD: APIC id size";
  EXPECT_EQ(find(four, 0x80000008)->eax, 0x3027u) << "address sizes kept";
  auto many = cpuidForVcpu(*plan, 0, 254);
  EXPECT_EQ(find(many, 4, 0)->eax >> 26, 63u) << "the 6-bit field saturates";
  EXPECT_EQ(find(many, 0x80000008)->ecx & 0xFF, 253u);
}

TEST(CpuidForVcpu, DoesNotChangeThePlan) {
  auto plan = planCpuid(syntheticHost(), cpu({}));
  ASSERT_TRUE(plan.ok());
  auto before = plan->base;
  (void)cpuidForVcpu(*plan, 7, 8);
  EXPECT_EQ(std::memcmp(before.data(), plan->base.data(), before.size() * sizeof(kvm_cpuid_entry2)), 0);
}

// The host's real list, as KVM reports it (label "kvm": tests/vmm/CMakeLists.txt).

class RealKvmCpuid : public ::testing::Test {
 protected:
  void SetUp() override {
    auto kvm = kvm::Kvm::open();
    if (!kvm) {
      VMMD_CANNOT_RUN("no usable /dev/kvm: " << kvm.error().message());
    }
    auto supported = kvm->supportedCpuid();
    ASSERT_TRUE(supported.ok()) << supported.error().message();
    supported_ = std::move(*supported);
  }
  std::vector<kvm_cpuid_entry2> supported_;
};

TEST_F(RealKvmCpuid, ListHasTheBasicLeaves) {
  ASSERT_NE(find(supported_, 0), nullptr);
  ASSERT_NE(find(supported_, 1), nullptr);
  EXPECT_GE(find(supported_, 0)->eax, 1u);
  EXPECT_TRUE(find(supported_, 1)->edx & bit(0)) << "FPU";
}

TEST_F(RealKvmCpuid, MinusCx16ClearsItAndHypervisorIsSet) {
  auto plan = planCpuid(supported_, cpu({{"cx16", false}, {"sse4.2", false}}));
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  auto entries = cpuidForVcpu(*plan, 1, 2);
  const auto* leaf1 = find(entries, 1);
  ASSERT_NE(leaf1, nullptr);
  EXPECT_FALSE(leaf1->ecx & bit(13)) << "cx16";
  EXPECT_FALSE(leaf1->ecx & bit(20)) << "sse4.2";
  EXPECT_TRUE(leaf1->ecx & bit(31)) << "hypervisor";
  EXPECT_EQ(leaf1->ebx >> 24, 1u);
  EXPECT_EQ(entries.size(), supported_.size());
}

TEST_F(RealKvmCpuid, EveryKnownFeatureCanBeMaskedOff) {
  // Each feature name maps to a leaf KVM knows or to nothing; none is an error.
  for (const char* name : {"sse3", "vmx", "avx", "x2apic", "avx2", "avx512f", "xsaveopt", "lm", "nx", "invtsc",
                           "kvmclock", "kvm-pv-eoi", "svm", "pdpe1gb", "rdtscp"}) {
    auto plan = planCpuid(supported_, cpu({{name, false}}));
    EXPECT_TRUE(plan.ok()) << name;
  }
  auto unknown = planCpuid(supported_, cpu({{"not-a-feature", true}}));
  EXPECT_FALSE(unknown.ok());
}

TEST_F(RealKvmCpuid, PlusFeaturesTheHostHasDoNotWarn) {
  const auto* leaf1 = find(supported_, 1);
  ASSERT_NE(leaf1, nullptr);
  ASSERT_TRUE(leaf1->edx & bit(0));
  auto plan = planCpuid(supported_, cpu({{"fpu", true}}));
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(plan->warnings, IsEmpty());
}

}  // namespace
}  // namespace vmmd
