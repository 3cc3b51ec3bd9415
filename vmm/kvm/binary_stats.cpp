#include "vmm/kvm/binary_stats.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace vmmd::kvm {
namespace {

// A malformed header (a kernel we do not understand) must not make us read gigabytes.
constexpr uint32_t kMaxDescriptors = 4096;
constexpr uint32_t kMaxNameSize = 4096;
// struct kvm_stats_desc before its name: flags u32, exponent s16, size u16, offset u32,
// bucket_size u32. Spelled out: C++ sizes the header's flexible-array wrapper differently from C.
constexpr size_t kDescriptorFixedSize = 16;
constexpr size_t kDescriptorFlagsAt = 0, kDescriptorSizeAt = 6, kDescriptorOffsetAt = 8;

Status preadAll(int fd, void* buffer, size_t size, off_t offset) {
  auto* out = static_cast<uint8_t*>(buffer);
  while (size > 0) {
    ssize_t n = ::pread(fd, out, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::fromErrno("read KVM statistics");
    if (n == 0) return Error("read KVM statistics: short file");
    out += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return {};
}

}  // namespace

Result<BinaryStats> BinaryStats::open(int object_fd) {
  UniqueFd fd(::ioctl(object_fd, KVM_GET_STATS_FD, 0));
  if (!fd) return Error::fromErrno("KVM_GET_STATS_FD");
  kvm_stats_header header{};
  if (auto st = preadAll(fd.get(), &header, sizeof header, 0); !st) return st.error();
  if (header.num_desc > kMaxDescriptors || header.name_size == 0 || header.name_size > kMaxNameSize) {
    return Error("KVM statistics: unexpected header (" + std::to_string(header.num_desc) + " descriptors, names of " +
                 std::to_string(header.name_size) + " bytes)");
  }
  const size_t entry_size = kDescriptorFixedSize + header.name_size;
  std::vector<uint8_t> block(entry_size * header.num_desc);
  if (auto st = preadAll(fd.get(), block.data(), block.size(), header.desc_offset); !st) return st.error();
  std::vector<Descriptor> descriptors;
  for (uint32_t i = 0; i < header.num_desc; ++i) {
    const uint8_t* entry = block.data() + i * entry_size;
    uint32_t flags;
    uint16_t count;
    uint32_t offset;
    std::memcpy(&flags, entry + kDescriptorFlagsAt, sizeof flags);
    std::memcpy(&count, entry + kDescriptorSizeAt, sizeof count);
    std::memcpy(&offset, entry + kDescriptorOffsetAt, sizeof offset);
    const char* name = reinterpret_cast<const char*>(entry + kDescriptorFixedSize);
    descriptors.push_back({std::string(name, strnlen(name, header.name_size)), offset, count,
                           (flags & KVM_STATS_UNIT_MASK) == KVM_STATS_UNIT_BOOLEAN});
  }
  return BinaryStats(std::move(fd), header.data_offset, std::move(descriptors));
}

Result<std::vector<BinaryStat>> BinaryStats::read() const {
  size_t end = 0;
  for (const auto& d : descriptors_) end = std::max<size_t>(end, d.offset + d.count * sizeof(uint64_t));
  std::vector<uint8_t> data(end);
  if (auto st = preadAll(fd_.get(), data.data(), data.size(), data_offset_); !st) return st.error();
  std::vector<BinaryStat> out;
  for (const auto& d : descriptors_) {
    BinaryStat stat{d.name, std::vector<uint64_t>(d.count), d.boolean};
    std::memcpy(stat.values.data(), data.data() + d.offset, d.count * sizeof(uint64_t));
    out.push_back(std::move(stat));
  }
  return out;
}

}  // namespace vmmd::kvm
