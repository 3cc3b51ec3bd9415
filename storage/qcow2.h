// The qcow2 format: create, open (v2 and v3), check and repair.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "storage/block_device.h"
#include "storage/image_file.h"
#include "storage/qcow2_header.h"

namespace vmmd::storage {

struct Qcow2CreateOptions {
  uint64_t size = 0;
  uint32_t clusterSize = 65536;
  uint32_t version = 3;           // 2 = compat=0.10, 3 = compat=1.1
  uint32_t refcountBits = 16;
  std::string backingFile;        // stored as given; resolved against the image's folder
  std::string backingFormat;      // "raw" / "qcow2" / empty
};
Result<void> createQcow2(const std::string& path, const Qcow2CreateOptions& options);

enum class RepairMode { None, Leaks, All };

struct CheckResult {
  uint64_t corruptions = 0;
  uint64_t leaks = 0;
  uint64_t corruptionsFixed = 0;
  uint64_t leaksFixed = 0;
  uint64_t totalClusters = 0;       // guest clusters
  uint64_t allocatedClusters = 0;
  uint64_t fragmentedClusters = 0;
  uint64_t compressedClusters = 0;
  uint64_t imageEndOffset = 0;
  std::vector<std::string> messages;  // one per problem, in qemu-img's words
};

class Qcow2Device : public BlockDevice {
 public:
  virtual const qcow2::Header& header() const = 0;
  virtual uint32_t clusterSize() const = 0;
  // Compares every refcount with the references the tables make; repairs as asked (needs a
  // writable image).
  virtual Result<CheckResult> check(RepairMode repair) = 0;
  // Writes one whole guest cluster deflate-compressed (as convert -c); data.size() must be the
  // cluster size (or the rest of the disk for the last cluster). Falls back to a normal write
  // when the data does not compress.
  virtual Result<void> writeCompressed(uint64_t offset, std::span<const uint8_t> data) = 0;
};

// Opens a name from the header's backing file field with the header's backing format (never
// empty: an image without one is refused, not probed).
using BackingOpener =
    std::function<Result<std::unique_ptr<BlockDevice>>(const std::string& name, const std::string& format)>;
Result<std::unique_ptr<BlockDevice>> openQcow2(std::unique_ptr<ImageFile> file, const OpenOptions& options,
                                               const BackingOpener& openBacking);

}  // namespace vmmd::storage
