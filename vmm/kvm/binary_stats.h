// KVM's binary statistics of one VM or vCPU (KVM_GET_STATS_FD, Linux 5.14+; the kernel's
// Documentation/virt/kvm/api.rst, "KVM_GET_STATS_FD"): what QEMU's query-stats reports under the
// provider "kvm". The descriptors are read once when the fd is opened; each read() takes the
// current values with one pread of the data block, without touching the vCPU (whose own ioctls
// wait while it is in KVM_RUN).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vmmd::kvm {

struct BinaryStat {
  std::string name;
  std::vector<uint64_t> values;  // one value; a histogram's buckets when there are more
  bool boolean = false;          // a flag (guest_mode): QEMU reports it as true/false
};

class BinaryStats {
 public:
  // `object_fd`: a VM or vCPU fd. Open it before the vCPU runs (the ioctl takes the vCPU's lock).
  static Result<BinaryStats> open(int object_fd);
  Result<std::vector<BinaryStat>> read() const;

 private:
  struct Descriptor {
    std::string name;
    uint32_t offset;  // bytes into the data block
    uint16_t count;   // u64 values
    bool boolean;
  };
  BinaryStats(UniqueFd fd, uint32_t data_offset, std::vector<Descriptor> descriptors)
      : fd_(std::move(fd)), data_offset_(data_offset), descriptors_(std::move(descriptors)) {}

  UniqueFd fd_;
  uint32_t data_offset_;
  std::vector<Descriptor> descriptors_;
};

}  // namespace vmmd::kvm
