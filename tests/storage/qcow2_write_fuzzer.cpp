// libFuzzer target: sequences of write, writeZeroes, discard, flush, reopen and internal snapshot
// create, apply and delete on a new qcow2 image whose geometry (cluster size, version, refcount width, size) the first bytes choose.
// Every range read back matches a shadow copy of the disk (a discarded byte may read as zero or
// as before; a reverted disk matches the shadow saved with its snapshot), and the library's own check finds neither corruption nor leaks after each reopen
// and at the end.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "storage/block_device.h"
#include "storage/qcow2.h"

using namespace vmmd::storage;

namespace {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint64_t take(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | (pos_ < size_ ? data_[pos_++] : 0);
    return v;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

std::unique_ptr<BlockDevice> openRw(const std::string& path) {
  OpenOptions o;
  o.format = ImageFormat::Qcow2;
  o.lock = false;
  auto dev = openImage(path, o);
  if (!dev.ok()) {
    std::fprintf(stderr, "reopen failed: %s\n", dev.error().message().c_str());
    std::abort();
  }
  return std::move(*dev);
}

void expectOk(const vmmd::Result<void>& r, const char* what) {
  if (r.ok()) return;
  std::fprintf(stderr, "%s failed: %s\n", what, r.error().message().c_str());
  std::abort();
}

void expectConsistent(BlockDevice& dev) {
  auto res = dynamic_cast<Qcow2Device&>(dev).check(RepairMode::None);
  if (!res.ok()) {
    std::fprintf(stderr, "check failed: %s\n", res.error().message().c_str());
    std::abort();
  }
  if (res->corruptions || res->leaks) {
    for (const auto& m : res->messages) std::fprintf(stderr, "%s\n", m.c_str());
    std::abort();
  }
}

void expectShadow(BlockDevice& dev, const std::vector<uint8_t>& shadow, uint64_t offset, uint64_t length) {
  std::vector<uint8_t> got(length);
  expectOk(dev.read(offset, got), "read");
  if (!std::equal(got.begin(), got.end(), shadow.begin() + static_cast<ptrdiff_t>(offset))) {
    std::fprintf(stderr, "read at %llu length %llu differs from what was written\n", (unsigned long long)offset,
                 (unsigned long long)length);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static int fd = ::memfd_create("fuzz-qcow2-writes", 0);
  if (fd < 0) return 0;
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  Input in(data, size);
  Qcow2CreateOptions c;
  c.clusterSize = 512u << in.take(1) % 8;  // 512 B .. 64 KiB
  c.version = in.take(1) % 2 ? 3 : 2;
  c.refcountBits = 1u << in.take(1) % 7;  // 1 .. 64
  c.size = 512 * (1 + in.take(2) % 8192);  // up to 4 MiB
  if (!createQcow2(path, c).ok()) return 0;
  auto dev = openRw(path);
  std::vector<uint8_t> shadow(c.size, 0);
  std::map<std::string, std::vector<uint8_t>> saved;  // snapshot id -> the disk it holds
  uint8_t stamp = 1;
  for (int ops = 0; ops < 64 && !in.empty(); ++ops) {
    const int kind = static_cast<int>(in.take(1) % 10);
    // Few bytes per request (short inputs reach whole clusters): offset in 64-byte steps, length in
    // sectors plus a few bytes.
    const uint64_t offset = in.take(2) * 64 % c.size;
    const uint64_t length = std::min<uint64_t>(c.size - offset, in.take(1) * 512 + 1 + in.take(1) % 512);
    switch (kind) {
      case 0: case 1: case 2: {  // write a recognisable pattern
        std::vector<uint8_t> bytes(length);
        for (uint64_t i = 0; i < length; ++i) bytes[i] = static_cast<uint8_t>(stamp + i * 7);
        ++stamp;
        expectOk(dev->write(offset, bytes), "write");
        std::copy(bytes.begin(), bytes.end(), shadow.begin() + static_cast<ptrdiff_t>(offset));
        expectShadow(*dev, shadow, offset, length);
        break;
      }
      case 3:
        expectOk(dev->writeZeroes(offset, length), "writeZeroes");
        std::fill_n(shadow.begin() + static_cast<ptrdiff_t>(offset), length, 0);
        expectShadow(*dev, shadow, offset, length);
        break;
      case 4: {  // unspecified contents: each byte zero or as before
        expectOk(dev->discard(offset, length), "discard");
        std::vector<uint8_t> got(length);
        expectOk(dev->read(offset, got), "read");
        for (uint64_t i = 0; i < length; ++i) {
          if (got[i] != 0 && got[i] != shadow[offset + i]) {
            std::fprintf(stderr, "discarded byte at %llu reads neither zero nor what it held\n", (unsigned long long)(offset + i));
            std::abort();
          }
        }
        std::copy(got.begin(), got.end(), shadow.begin() + static_cast<ptrdiff_t>(offset));
        break;
      }
      case 5: expectOk(dev->flush(), "flush"); break;
      case 6:
        dev.reset();
        dev = openRw(path);
        expectConsistent(*dev);
        break;
      case 8: {  // a snapshot (1-bit refcounts cannot share a cluster: refused, nothing changed)
        auto* q = dynamic_cast<Qcow2Device*>(dev.get());
        SnapshotRequest request;
        request.name = "s" + std::to_string(ops);
        auto made = q->createSnapshot(request);
        if (!made.ok() && made.error().code() == EOVERFLOW) break;
        expectOk(made.ok() ? vmmd::Result<void>() : vmmd::Result<void>(made.error()), "createSnapshot");
        saved[made->id] = shadow;
        break;
      }
      case 9: {  // revert to a snapshot (even offset) or delete it (odd)
        if (saved.empty()) break;
        auto* q = dynamic_cast<Qcow2Device*>(dev.get());
        auto it = std::next(saved.begin(), static_cast<ptrdiff_t>(offset / 64 % saved.size()));
        if (offset / 64 % 2 == 0) {
          auto r = q->applySnapshot(it->first);
          if (!r.ok() && r.error().code() == EOVERFLOW) break;
          expectOk(r, "applySnapshot");
          shadow = it->second;
          expectShadow(*dev, shadow, 0, c.size);
        } else {
          auto gone = q->deleteSnapshot(it->first, "");
          expectOk(gone.ok() ? vmmd::Result<void>() : vmmd::Result<void>(gone.error()), "deleteSnapshot");
          saved.erase(it);
        }
        break;
      }
      default: expectShadow(*dev, shadow, offset, length); break;
    }
  }
  expectShadow(*dev, shadow, 0, c.size);
  expectConsistent(*dev);
  return 0;
}
