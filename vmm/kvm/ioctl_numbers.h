// The KVM ioctl numbers whose argument ends in a flexible array, computed with the kernel's
// layout; kvm.cpp calls them and the seccomp allowlists (vmm/sandbox) allow them by number.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

namespace vmmd::kvm {

// Debian 12's uapi headers declare the flexible arrays of kvm_cpuid2 and kvm_msrs with
// __DECLARE_FLEX_ARRAY, which in C++ adds a one-byte empty struct: sizeof becomes 12 and the
// entries move to offset 12, so both the ioctl numbers and the layout would be wrong. These
// headers have the kernel's real layout (entries at offset 8).
struct CpuidHeader {
  uint32_t nent;
  uint32_t padding;
};
struct MsrsHeader {
  uint32_t nmsrs;
  uint32_t pad;
};
struct RoutingHeader {
  uint32_t nr;
  uint32_t flags;
};
static_assert(sizeof(CpuidHeader) == 8 && sizeof(MsrsHeader) == 8 && sizeof(RoutingHeader) == 8);
constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, RoutingHeader);
constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);

}  // namespace vmmd::kvm
