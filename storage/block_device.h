// The block layer: one interface for every disk image format (raw, qcow2), used by the worker's
// virtio-blk device and by vmm-img.
//
// Thread safety: read, write, writeZeroes, discard, flush and blockStatus may be called
// concurrently from any number of threads (an I/O thread pool with several requests in flight).
// Requests touching overlapping guest ranges at the same time complete in an unspecified order,
// as on a real disk, but never corrupt the image's metadata. resize must be called with no other
// request in flight (the caller quiesces the queue first).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/file_opener.h"
#include "base/result.h"
#include "storage/io_vector.h"

namespace vmmd::storage {

enum class ImageFormat { Auto, Raw, Qcow2 };
const char* formatName(ImageFormat format);
// "raw", "qcow2" (and "auto" when allowAuto); anything else is an error naming the value.
Result<ImageFormat> parseFormat(std::string_view name, bool allowAuto = true);

// How an image file uses the host page cache; the QEMU cache mode names (base/parse.h's
// parseDiskCache) map to it by their `direct` flag.
enum class CacheMode {
  Writeback,  // page cache; flush() makes writes durable
  None,       // O_DIRECT for aligned data I/O (falls back to buffered I/O where unsupported)
};

struct OpenOptions {
  ImageFormat format = ImageFormat::Auto;
  bool readOnly = false;
  CacheMode cache = CacheMode::Writeback;
  bool lock = true;            // take QEMU-compatible image locks on every file of the chain
  bool openBacking = true;     // false: unallocated clusters read as zeroes (fuzzing, info)
  bool repair = false;         // allow opening a dirty qcow2 image for writing (check -r)
  int maxChainDepth = 32;      // backing files below the top image
  // qcow2: fdatasync barriers between dependent metadata writes, so that the image survives a
  // power loss (a refcount is durable before the entry that uses the cluster, and so on). Off
  // for cache=unsafe and for images nobody uses before one final flush (convert's target).
  bool writeBarriers = true;
  // Opens every file of the chain (the top image, its backing files once resolved to a path, the
  // O_DIRECT descriptor); null: open(2). Must outlive the openImage call only.
  const FileOpener* opener = nullptr;
};

// What a guest range is backed by (for convert, compare, map).
enum class ExtentKind { Data, Zero, Unallocated };
struct Extent {
  ExtentKind kind;
  uint64_t length;
};

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;

  // Reads buf.size() bytes at offset; offset + size must be within size().
  virtual Result<void> read(uint64_t offset, std::span<uint8_t> buf) = 0;
  virtual Result<void> write(uint64_t offset, std::span<const uint8_t> buf) = 0;
  // The same for a list of buffers that covers one contiguous range (a guest request's pages).
  // Formats override these to do one request's worth of work at once: a qcow2 write allocates
  // all the clusters it fills in one go instead of once per page.
  virtual Result<void> readv(uint64_t offset, ReadVector bufs);
  virtual Result<void> writev(uint64_t offset, WriteVector bufs);
  // Afterwards the range reads as zeroes.
  virtual Result<void> writeZeroes(uint64_t offset, uint64_t length) = 0;
  // A hint: the range's contents become unspecified (in practice: zero or unchanged), space may
  // be given back to the host.
  virtual Result<void> discard(uint64_t offset, uint64_t length) = 0;
  // Makes completed writes and metadata durable.
  virtual Result<void> flush() = 0;
  // Grows (or, for raw, shrinks) the virtual disk. Not concurrent with other requests.
  virtual Result<void> resize(uint64_t newSize) = 0;

  virtual uint64_t size() const = 0;
  virtual bool readOnly() const = 0;
  virtual ImageFormat format() const = 0;
  virtual const std::string& path() const = 0;
  // The kind of the range starting at offset, and how far it extends (at most maxLength).
  virtual Result<Extent> blockStatus(uint64_t offset, uint64_t maxLength) = 0;
  // The next image of the backing chain, or null.
  virtual BlockDevice* backing() const { return nullptr; }
  // Gives back what the format holds in reserve for future writes (qcow2: clusters whose
  // refcount is raised but that nothing references yet), so that the image on the disk is exactly
  // what is in use: before another process takes the image over (migration). Later writes
  // reserve again.
  virtual Result<void> releaseReserved() { return {}; }
};

// Opens an image and its backing chain (relative backing names resolve against the image's
// folder), detecting loops and chains deeper than options.maxChainDepth, and locks every file
// like QEMU does, so that QEMU and vmm never both write one image.
Result<std::unique_ptr<BlockDevice>> openImage(const std::string& path, const OpenOptions& options);

// Where a backing file name from `image`'s header points, as QEMU resolves it: an absolute name
// as it is, a relative one against the folder of `image` as it was named (not canonicalized).
std::string resolveBackingName(const std::string& image, const std::string& name);

}  // namespace vmmd::storage
