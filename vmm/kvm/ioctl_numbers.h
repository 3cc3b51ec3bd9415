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
struct MsrListHeader {
  uint32_t nmsrs;
};
// kvm_xsave's fixed part (its flexible tail holds what KVM_CAP_XSAVE2 says is beyond 4 KiB).
struct XsaveHeader {
  uint32_t region[1024];
};
static_assert(sizeof(CpuidHeader) == 8 && sizeof(MsrsHeader) == 8 && sizeof(RoutingHeader) == 8);
static_assert(sizeof(MsrListHeader) == 4 && sizeof(XsaveHeader) == 4096);
constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, RoutingHeader);
constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);
constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, XsaveHeader);
constexpr unsigned long kGetXsave2 = _IOR(KVMIO, 0xcf, XsaveHeader);
constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, XsaveHeader);

}  // namespace vmmd::kvm
