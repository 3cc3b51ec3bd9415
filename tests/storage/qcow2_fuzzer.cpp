// libFuzzer target: arbitrary bytes as an image file; open (auto-probed, read-only, no backing
// files) and read, map and check it; with internal snapshots, also open it for writing and apply,
// delete and create snapshots (hostile snapshot tables and their L1/L2 tables). Nothing may
// crash, hang or allocate without bound.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "storage/block_device.h"
#include "storage/qcow2.h"

using namespace vmmd::storage;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static int fd = ::memfd_create("fuzz-image", 0);
  if (fd < 0) return 0;
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) return 0;
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  OpenOptions o;
  o.readOnly = true;
  o.lock = false;
  o.openBacking = false;
  auto dev = openImage(path, o);
  if (!dev.ok()) return 0;
  BlockDevice& d = **dev;
  const uint64_t limit = std::min<uint64_t>(d.size(), 8 << 20);
  std::vector<uint8_t> buf(64 << 10);
  for (uint64_t off = 0; off < limit; off += buf.size()) {
    uint64_t len = std::min<uint64_t>(buf.size(), d.size() - off);
    if (!d.read(off, std::span(buf.data(), len)).ok()) break;
  }
  for (uint64_t off = 0, n = 0; off < limit && n < 64; ++n) {
    auto st = d.blockStatus(off, limit - off);
    if (!st.ok() || st->length == 0) break;
    off += st->length;
  }
  auto* q = dynamic_cast<Qcow2Device*>(&d);
  if (!q || size >= (1 << 20)) return 0;
  (void)q->check(RepairMode::None);
  const auto snapshots = q->snapshots();
  if (snapshots.empty()) return 0;
  dev->reset();
  o.readOnly = false;
  auto rw = openImage(path, o);
  if (!rw.ok()) return 0;
  auto* w = dynamic_cast<Qcow2Device*>(rw->get());
  (void)w->applySnapshot(snapshots[0].id);
  (void)w->deleteSnapshot(snapshots.back().id, "");
  SnapshotRequest request;
  request.name = "fuzz";
  (void)w->createSnapshot(request);
  (void)w->check(RepairMode::None);
  return 0;
}
