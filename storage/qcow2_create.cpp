// Creating an empty qcow2 image: header cluster, refcount table, one refcount block, L1 table.
#include <fcntl.h>
#include <unistd.h>

#include "base/unique_fd.h"
#include "storage/endian.h"
#include "storage/qcow2.h"

namespace vmmd::storage {

Result<void> createQcow2(const std::string& path, const Qcow2CreateOptions& o) {
  using namespace qcow2;
  const uint32_t cs = o.clusterSize;
  if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1))) {
    return Error(path + ": cluster size " + std::to_string(cs) + " must be a power of two between 512 and 2M");
  }
  if (o.version != 2 && o.version != 3) return Error(path + ": unsupported qcow2 version");
  if (o.refcountBits == 0 || o.refcountBits > 64 || (o.refcountBits & (o.refcountBits - 1))) {
    return Error(path + ": refcount_bits must be a power of two up to 64");
  }
  if (o.version == 2 && o.refcountBits != 16) return Error(path + ": compat=0.10 images need refcount_bits=16");
  if (o.size > kMaxVirtualSize) return Error(path + ": size " + std::to_string(o.size) + " too large");
  Header h;
  h.version = o.version;
  h.clusterBits = static_cast<uint32_t>(__builtin_ctz(cs));
  h.size = (o.size + 511) & ~511ull;
  h.refcountOrder = static_cast<uint32_t>(__builtin_ctz(o.refcountBits));
  h.backingFile = o.backingFile;
  h.backingFormat = o.backingFormat;
  uint64_t l1Entries = l1EntriesFor(h.size, h.clusterBits);
  if (l1Entries * 8 > kMaxL1Bytes) return Error(path + ": size too large for cluster size " + std::to_string(cs));
  h.l1Size = static_cast<uint32_t>(l1Entries);
  uint64_t l1Clusters = std::max<uint64_t>(1, (l1Entries * 8 + cs - 1) / cs);
  h.refcountTableOffset = uint64_t(cs);
  h.refcountTableClusters = 1;
  h.l1TableOffset = 3ull * cs;
  uint64_t used = 3 + l1Clusters;
  if (used > uint64_t(cs) * 8 / o.refcountBits) return Error(path + ": size too large for cluster size " + std::to_string(cs));
  auto head = serializeHeader(h);
  if (!head) return head.error().withContext(path);

  std::vector<uint8_t> image(used * cs, 0);
  std::copy(head->begin(), head->end(), image.begin());
  storeBe64(&image[cs], 2ull * cs);  // refcount table -> block at cluster 2
  uint8_t* block = &image[2ull * cs];
  for (uint64_t c = 0; c < used; ++c) {
    uint64_t bit = c * o.refcountBits;
    switch (o.refcountBits) {
      case 64: storeBe64(block + c * 8, 1); break;
      case 32: storeBe32(block + c * 4, 1); break;
      case 16: storeBe16(block + c * 2, 1); break;
      case 8: block[c] = 1; break;
      default: block[bit / 8] |= static_cast<uint8_t>(1u << (bit % 8));
    }
  }
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return Error::fromErrno("create " + path);
  for (size_t done = 0; done < image.size();) {
    ssize_t n = ::pwrite(fd.get(), image.data() + done, image.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::fromErrno("write " + path);
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace vmmd::storage
