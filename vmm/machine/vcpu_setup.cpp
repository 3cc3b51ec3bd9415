#include "vmm/machine/vcpu_setup.h"

#include <cstring>

#include "vmm/platform/layout.h"

namespace vmmd {
namespace {

constexpr uint64_t kCr0ProtectionEnable = 1ull << 0, kCr0ExtensionType = 1ull << 4, kCr0Paging = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kEferLme = 1ull << 8, kEferLma = 1ull << 10;
constexpr uint16_t kCodeSelector = 0x10, kDataSelector = 0x18, kTssSelector = 0x20;
constexpr uint32_t kMsrMiscEnable = 0x1a0;
constexpr uint64_t kMiscEnableFastStrings = 1;

// A GDT descriptor from its parts (Intel SDM vol. 3, 3.4.5).
uint64_t descriptor(uint32_t base, uint32_t limit, uint16_t flags) {
  uint64_t b = base, l = limit, f = flags;
  return ((b & 0xFF000000) << 32) | ((f & 0xF0FF) << 40) | ((l & 0x000F0000) << 32) | ((b & 0x00FFFFFF) << 16) |
         (l & 0x0000FFFF);
}

kvm_segment segmentFrom(uint64_t desc, uint16_t selector) {
  kvm_segment s{};
  s.base = static_cast<uint32_t>(((desc >> 16) & 0xFFFFFF) | ((desc >> 32) & 0xFF000000));
  uint32_t limit = static_cast<uint32_t>((desc & 0xFFFF) | ((desc >> 32) & 0xF0000));
  s.g = (desc >> 55) & 1;
  s.limit = s.g ? (limit << 12) | 0xFFF : limit;
  s.selector = selector;
  s.type = (desc >> 40) & 0xF;
  s.present = (desc >> 47) & 1;
  s.dpl = (desc >> 45) & 3;
  s.db = (desc >> 54) & 1;
  s.s = (desc >> 44) & 1;
  s.l = (desc >> 53) & 1;
  return s;
}

Status writePageTables(GuestMemory& memory) {
  // Identity map of the first 4 GiB in 2 MiB pages: PML4[0] -> PDPT[0..3] -> four PDs.
  uint64_t pml4_entry = layout::kPdpt | 0x3;
  if (auto st = memory.writeObject(layout::kPml4, pml4_entry); !st) return st;
  for (uint64_t i = 0; i < 4; ++i) {
    uint64_t pdpt_entry = (layout::kPageDirs + i * 0x1000) | 0x3;
    if (auto st = memory.writeObject(layout::kPdpt + i * 8, pdpt_entry); !st) return st;
  }
  uint8_t* pds = memory.hostAddress(layout::kPageDirs, 4 * 0x1000);
  if (!pds) return Error("page tables do not fit in guest memory");
  for (uint64_t i = 0; i < 4 * 512; ++i) {
    uint64_t entry = (i << 21) | 0x83;  // present, writable, 2 MiB page
    std::memcpy(pds + i * 8, &entry, 8);
  }
  return {};
}

}  // namespace

Status configureVcpu(kvm::Vcpu& vcpu, const CpuidPlan& cpuid, uint32_t index, uint32_t count) {
  auto entries = cpuidForVcpu(cpuid, index, count);
  if (auto st = vcpu.setCpuid(entries); !st) return st;
  // XCR0 starts with every state component the CPUID advertises, which is what Linux then
  // enables itself. KVM derives CPUID 0xD's save-area sizes from the XCR0 it knows; where the
  // guest's XSETBV never reaches KVM (nested under emulated SVM, measured in our nested tier)
  // an XCR0 left at 1 makes Linux warn "XSAVE consistency problem" at boot (QEMU shows it too).
  if (uint64_t xcr0 = advertisedXcr0(entries)) (void)vcpu.setXcr0(xcr0);
  // Fast strings enabled, as firmware leaves it; a refusal is not fatal (some hosts filter it).
  (void)vcpu.setMsrs({kvm_msr_entry{kMsrMiscEnable, 0, kMiscEnableFastStrings}});
  // Local APIC LINT0 = ExtINT (the 8259 reaches the BSP in virtual-wire mode), LINT1 = NMI.
  auto lapic = vcpu.lapic();
  if (!lapic) return lapic.error();
  auto set_lvt = [&](size_t offset, uint32_t delivery_mode) {
    uint32_t value;
    std::memcpy(&value, &lapic->regs[offset], 4);
    value = (value & ~0x700u & ~(1u << 16)) | (delivery_mode << 8);
    std::memcpy(&lapic->regs[offset], &value, 4);
  };
  set_lvt(0x350, 7);  // ExtINT
  set_lvt(0x360, 4);  // NMI
  return vcpu.setLapic(*lapic);
}

Status setupBootVcpu(kvm::Vcpu& vcpu, GuestMemory& memory, const boot::BootEntry& entry) {
  bool long_mode = entry.mode == boot::BootEntry::Mode::Long64;
  // Code segment: 64-bit (L) for the Linux entry, 32-bit (D/B) for PVH; flat data; a TSS.
  uint16_t code_flags = long_mode ? 0xA09B : 0xC09B;
  uint64_t gdt[5] = {0, 0, descriptor(0, 0xFFFFF, code_flags), descriptor(0, 0xFFFFF, 0xC093),
                     descriptor(0, 0x67, 0x008B)};
  if (auto st = memory.write(layout::kGdt, {reinterpret_cast<const uint8_t*>(gdt), sizeof gdt}); !st) return st;

  auto sregs = vcpu.sregs();
  if (!sregs) return sregs.error();
  sregs->gdt.base = layout::kGdt;
  sregs->gdt.limit = sizeof gdt - 1;
  sregs->idt.base = 0;
  sregs->idt.limit = 0;
  sregs->cs = segmentFrom(gdt[2], kCodeSelector);
  kvm_segment data = segmentFrom(gdt[3], kDataSelector);
  sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
  sregs->tr = segmentFrom(gdt[4], kTssSelector);
  sregs->cr0 = kCr0ProtectionEnable | kCr0ExtensionType;
  sregs->cr4 = 0;
  sregs->efer = 0;
  if (long_mode) {
    if (auto st = writePageTables(memory); !st) return st;
    sregs->cr3 = layout::kPml4;
    sregs->cr4 = kCr4Pae;
    sregs->cr0 |= kCr0Paging;
    sregs->efer = kEferLme | kEferLma;
  }
  if (auto st = vcpu.setSregs(*sregs); !st) return st;

  kvm_regs regs{};
  regs.rflags = 0x2;
  regs.rip = entry.entry;
  if (long_mode) {
    regs.rsi = entry.boot_info;
  } else {
    regs.rbx = entry.boot_info;
  }
  if (auto st = vcpu.setRegs(regs); !st) return st;

  kvm_fpu fpu{};
  fpu.fcw = 0x37F;
  fpu.mxcsr = 0x1F80;
  return vcpu.setFpu(fpu);
}

}  // namespace vmmd
