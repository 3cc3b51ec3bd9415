#include "vmm/kvm/binary_stats.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "tests/support/cannot_run.h"
#include "vmm/kvm/kvm.h"

namespace vmmd::kvm {
namespace {

bool has(const std::vector<BinaryStat>& stats, const std::string& name) {
  return std::any_of(stats.begin(), stats.end(), [&](const BinaryStat& s) { return s.name == name && !s.values.empty(); });
}

// A real VM and vCPU: KVM's statistics as QEMU's query-stats reads them (Linux 5.14+).
TEST(RealKvmBinaryStats, VmAndVcpuHaveTheirCounters) {
  auto kvm = Kvm::open();
  if (!kvm) VMMD_CANNOT_RUN("no usable /dev/kvm: " << kvm.error().message());
  auto vm = Vm::create(*kvm);
  ASSERT_TRUE(vm.ok()) << vm.error().message();
  auto vcpu = Vcpu::create(*kvm, *vm, 0);
  ASSERT_TRUE(vcpu.ok()) << vcpu.error().message();

  auto vm_stats = BinaryStats::open(vm->fd());
  ASSERT_TRUE(vm_stats.ok()) << vm_stats.error().message();
  auto vm_values = vm_stats->read();
  ASSERT_TRUE(vm_values.ok()) << vm_values.error().message();
  EXPECT_TRUE(has(*vm_values, "remote_tlb_flush")) << vm_values->size() << " VM stats";

  auto vcpu_stats = BinaryStats::open(vcpu->fd());
  ASSERT_TRUE(vcpu_stats.ok()) << vcpu_stats.error().message();
  auto vcpu_values = vcpu_stats->read();
  ASSERT_TRUE(vcpu_values.ok()) << vcpu_values.error().message();
  EXPECT_TRUE(has(*vcpu_values, "exits")) << vcpu_values->size() << " vCPU stats";
  EXPECT_TRUE(has(*vcpu_values, "io_exits"));
}

TEST(BinaryStats, ANonKvmFdIsRefused) {
  auto stats = BinaryStats::open(0);
  ASSERT_FALSE(stats.ok());
  EXPECT_NE(stats.error().message().find("KVM_GET_STATS_FD"), std::string::npos) << stats.error().message();
}

}  // namespace
}  // namespace vmmd::kvm
