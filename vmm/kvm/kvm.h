// Thin RAII wrappers over the KVM ioctls: the system fd, one VM, one vCPU. No policy lives here;
// the machine decides what to create and how to run it.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/file_opener.h"
#include "base/mapping.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace vmmd::kvm {

class Vcpu;

// /dev/kvm itself: capability checks and the host's supported CPUID.
class Kvm {
 public:
  // A device that is missing, not permitted or not KVM is an error saying what to do (diagnosis.h).
  // Opened through `files` (the worker's fd sets may hold it); an error that is not open(2)'s
  // (code 0: an fd set without a fitting descriptor) is returned as it is.
  static Result<Kvm> open(const char* path = "/dev/kvm", const FileOpener& files = plainFiles());

  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }
  int checkExtension(long capability) const;
  Result<std::vector<kvm_cpuid_entry2>> supportedCpuid() const;
  Result<size_t> vcpuMmapSize() const;
  // The MSRs KVM can save and restore (KVM_GET_MSR_INDEX_LIST): not all of them exist for every
  // vCPU's CPUID; a vCPU reads the ones it has (Vcpu::readMsrs).
  Result<std::vector<uint32_t>> msrIndexList() const;

 private:
  Kvm(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

// One GSI route: to a pin of the in-kernel PIC/IOAPIC, or an MSI message.
struct GsiRoute {
  uint32_t gsi;
  bool msi;
  uint32_t irqchip;  // KVM_IRQCHIP_PIC_MASTER/PIC_SLAVE/IOAPIC, for pin routes
  uint32_t pin;
  uint64_t msi_address;
  uint32_t msi_data;
};

// One virtual machine: memory slots, in-kernel irqchip and PIT, interrupt lines, ioeventfd/irqfd.
class Vm {
 public:
  static Result<Vm> create(const Kvm& kvm);

  int fd() const { return fd_.get(); }
  // `read_only` (KVM_MEM_READONLY, a ROM): guest writes exit as MMIO instead of landing.
  Status setUserMemoryRegion(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host, bool read_only = false);
  // Turns KVM's dirty-page logging of an existing slot on or off (KVM_MEM_LOG_DIRTY_PAGES); the
  // slot keeps its range and host memory.
  Status setDirtyLogging(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host, bool on);
  // The pages of `slot` the guest wrote since the last call (or since logging began), one bit
  // per 4 KiB page, and clears them (KVM_GET_DIRTY_LOG). `bitmap` covers the whole slot.
  Status getDirtyLog(uint32_t slot, std::span<uint64_t> bitmap);
  Status createIrqchip();
  Status createPit();
  Status setTssAddress(uint64_t address);
  Status setIdentityMapAddress(uint64_t address);
  Status setIrqLine(uint32_t irq, bool level);
  Status setIrqfd(int eventfd, uint32_t gsi, bool assign = true);
  Status setIoeventfd(int eventfd, uint64_t address, uint32_t length, bool pio, bool assign = true);
  // Signals `eventfd` only for writes of `value` (virtio-mmio's one QueueNotify register: one fd per queue).
  Status setIoeventfdMatching(int eventfd, uint64_t address, uint32_t length, uint64_t value, bool assign = true);
  Status enableCap(uint32_t capability, uint64_t arg0 = 0);
  // Replaces the whole GSI routing table (KVM_SET_GSI_ROUTING).
  Status setGsiRouting(const std::vector<GsiRoute>& routes);
  // KVM_CHECK_EXTENSION on the VM (KVM_CAP_XSAVE2's size is a VM's); 0 when absent.
  int checkExtension(long capability) const;

  // VM-wide state for migration: kvmclock, the in-kernel PIC/IOAPIC (chip KVM_IRQCHIP_*), the PIT.
  Result<kvm_clock_data> clock() const;
  Status setClock(const kvm_clock_data& clock);
  Result<kvm_irqchip> irqchip(uint32_t chip_id) const;
  Status setIrqchip(const kvm_irqchip& chip);
  Result<kvm_pit_state2> pit() const;
  Status setPit(const kvm_pit_state2& pit);

 private:
  explicit Vm(UniqueFd fd) : fd_(std::move(fd)) {}
  Status setMemorySlot(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host, uint32_t flags);
  UniqueFd fd_;
};

// One virtual CPU and its shared kvm_run page. Used by exactly one thread at a time.
class Vcpu {
 public:
  static Result<Vcpu> create(const Kvm& kvm, const Vm& vm, uint32_t id);

  uint32_t id() const { return id_; }
  int fd() const { return fd_.get(); }
  kvm_run* runState() const { return reinterpret_cast<kvm_run*>(run_.data()); }

  // KVM_RUN; returns the errno as an error (EINTR when kicked by a signal).
  Status run();

  Result<kvm_regs> regs() const;
  Status setRegs(const kvm_regs& regs);
  Result<kvm_sregs> sregs() const;
  Status setSregs(const kvm_sregs& sregs);
  Result<kvm_sregs2> sregs2() const;  // with KVM_CAP_SREGS2 (the PAE PDPTRs too)
  Status setSregs2(const kvm_sregs2& sregs);
  Result<kvm_fpu> fpu() const;
  Status setFpu(const kvm_fpu& fpu);
  // The XSAVE area: `size` bytes (KVM_CAP_XSAVE2's answer on the VM; 0: KVM_GET_XSAVE, 4 KiB).
  Result<std::vector<uint8_t>> xsave(size_t size) const;
  Status setXsave(std::span<const uint8_t> area);
  Result<kvm_xcrs> xcrs() const;
  Status setXcrs(const kvm_xcrs& xcrs);
  // Reads what it can of `indices` in order: an MSR this vCPU refuses is left out.
  Result<std::vector<kvm_msr_entry>> readMsrs(const std::vector<uint32_t>& indices) const;
  Result<kvm_vcpu_events> events() const;
  Status setEvents(const kvm_vcpu_events& events);
  Result<kvm_debugregs> debugRegs() const;
  Status setDebugRegs(const kvm_debugregs& regs);
  // The guest's TSC frequency in kHz (KVM_GET_TSC_KHZ / KVM_SET_TSC_KHZ, KVM_CAP_TSC_CONTROL).
  Result<uint32_t> tscKhz() const;
  Status setTscKhz(uint32_t khz);
  Status setCpuid(const std::vector<kvm_cpuid_entry2>& entries);
  Status setMsrs(const std::vector<kvm_msr_entry>& msrs);
  Result<kvm_lapic_state> lapic() const;
  Status setLapic(const kvm_lapic_state& lapic);
  Status setXcr0(uint64_t value);
  Result<kvm_mp_state> mpState() const;
  Status setMpState(uint32_t state);

 private:
  Vcpu(uint32_t id, UniqueFd fd, Mapping run) : id_(id), fd_(std::move(fd)), run_(std::move(run)) {}
  uint32_t id_;
  UniqueFd fd_;
  Mapping run_;
};

}  // namespace vmmd::kvm
