// qcow2 internal snapshots: create/apply/delete against shadow disks, copy-on-write of shared
// clusters and L2 tables, interop with qemu-img 7.2 (both directions, savevm included), hostile
// snapshot tables, and writers killed in the middle of snapshot operations.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <atomic>
#include <map>
#include <thread>

#include "storage/endian.h"
#include "storage/qcow2.h"
#include "tests/storage/test_util.h"

namespace vmmd::storage {
namespace {

using test::ScratchDir;

SnapshotRequest named(const std::string& name) {
  SnapshotRequest r;
  r.name = name;
  return r;
}

Qcow2Device* asQcow2(const std::unique_ptr<BlockDevice>& dev) { return dynamic_cast<Qcow2Device*>(dev.get()); }

std::vector<uint8_t> readAll(BlockDevice& dev) {
  std::vector<uint8_t> out(dev.size());
  auto r = dev.read(0, out);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return out;
}

std::vector<uint8_t> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::vector<uint8_t> bytes(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));  // one call: fast in debug builds too
  return bytes;
}

// The snapshot's disk as qemu-img sees it (convert -l), as bytes.
std::vector<uint8_t> qemuSnapshotContents(const std::string& image, const std::string& name, const std::string& scratch) {
  auto r = test::run("qemu-img convert -l snapshot.name=" + name + " -O raw " + image + " " + scratch);
  EXPECT_EQ(r.status, 0) << r.output;
  return readFile(scratch);
}

void expectClean(const std::string& path) {
  auto r = test::qemuCheck(path);
  EXPECT_EQ(r.status, 0) << r.output;
  auto dev = test::openOrDie(path, true);
  ASSERT_TRUE(dev);
  auto res = asQcow2(dev)->check(RepairMode::None);
  ASSERT_TRUE(res.ok()) << res.error().message();
  EXPECT_EQ(res->corruptions, 0u);
  EXPECT_EQ(res->leaks, 0u);
  for (const auto& m : res->messages) ADD_FAILURE() << m;
}

// One mutation of the active disk, mirrored into the shadow.
void mutate(BlockDevice& dev, std::vector<uint8_t>& shadow, std::mt19937_64& rng) {
  const uint64_t size = dev.size();
  uint64_t len = 1 + rng() % (200 << 10), off = rng() % (size - len);
  switch (rng() % 6) {
    case 0:
      ASSERT_TRUE(dev.writeZeroes(off, len).ok());
      std::fill(shadow.begin() + off, shadow.begin() + off + len, 0);
      break;
    default: {
      auto d = test::randomBytes(rng, len);
      auto r = dev.write(off, d);
      ASSERT_TRUE(r.ok()) << r.error().message();
      std::copy(d.begin(), d.end(), shadow.begin() + off);
    }
  }
}

struct Geometry {
  uint32_t cluster;
  uint32_t version;
  uint32_t refBits;
};

class StorageSnapshotGeometry : public ::testing::TestWithParam<Geometry> {};

// Random writes, snapshots, reverts and deletes against a shadow of the active disk and one of
// every snapshot; the image stays clean for qemu-img and for us, and qemu-img reads every
// snapshot as we wrote it.
TEST_P(StorageSnapshotGeometry, RandomOperationsMatchShadows) {
  REQUIRE_QEMU_IMG();
  const Geometry g = GetParam();
  ScratchDir dir;
  const std::string path = dir / "s.qcow2";
  ASSERT_TRUE(createQcow2(path, test::qcow2Options(8 << 20, g.cluster, g.version, g.refBits)).ok());
  std::mt19937_64 rng(g.cluster + g.version * 7 + g.refBits);
  std::vector<uint8_t> active(8 << 20, 0);
  std::map<std::string, std::vector<uint8_t>> saved;  // by id
  int made = 0;
  for (int round = 0; round < 3; ++round) {
    {
      auto dev = test::openOrDie(path);
      ASSERT_TRUE(dev);
      auto* q = asQcow2(dev);
      for (int step = 0; step < 24; ++step) {
        int what = static_cast<int>(rng() % 10);
        if (what == 0) {
          auto e = q->createSnapshot(named("snap" + std::to_string(made++)));
          // 2-bit refcounts: a cluster shared by the active disk and 3 snapshots is full.
          if (!e.ok() && g.refBits == 2 && e.error().code() == EOVERFLOW) continue;
          ASSERT_TRUE(e.ok()) << e.error().message();
          saved[e->id] = active;
        } else if (what == 1 && !saved.empty()) {
          auto it = std::next(saved.begin(), static_cast<long>(rng() % saved.size()));
          auto r = q->applySnapshot(it->first);
          if (!r.ok() && g.refBits == 2 && r.error().code() == EOVERFLOW) continue;
          ASSERT_TRUE(r.ok()) << r.error().message();
          active = it->second;
          ASSERT_EQ(readAll(*dev), active) << "after reverting to " << it->first;
        } else if (what == 2 && saved.size() > 1) {
          auto it = std::next(saved.begin(), static_cast<long>(rng() % saved.size()));
          auto e = q->deleteSnapshot(it->first, "");
          ASSERT_TRUE(e.ok()) << e.error().message();
          saved.erase(it);
        } else {
          mutate(*dev, active, rng);
        }
      }
      ASSERT_EQ(readAll(*dev), active);
      ASSERT_EQ(q->snapshots().size(), saved.size());
    }
    expectClean(path);
    for (const auto& [id, contents] : saved) {
      auto list = asQcow2(test::openOrDie(path, true))->snapshots();
      int i = findSnapshot(list, id, "");
      ASSERT_GE(i, 0);
      EXPECT_TRUE(qemuSnapshotContents(path, list[i].name, dir / "out.raw") == contents) << "snapshot " << id;
    }
  }
  auto cmp = test::run("qemu-img snapshot -l " + path);
  EXPECT_EQ(cmp.status, 0) << cmp.output;
}

INSTANTIATE_TEST_SUITE_P(Geometries, StorageSnapshotGeometry,
                         ::testing::Values(Geometry{65536, 3, 16}, Geometry{4096, 3, 16}, Geometry{512, 2, 16},
                                           Geometry{65536, 3, 2}, Geometry{4096, 3, 64}),
                         [](const auto& info) {
                           return "c" + std::to_string(info.param.cluster) + "_v" + std::to_string(info.param.version) +
                                  "_r" + std::to_string(info.param.refBits);
                         });

TEST(StorageSnapshot, WritesAfterASnapshotCopyOnWriteAndRevertDropsThem) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  const std::string path = dir / "a.qcow2";
  ASSERT_TRUE(createQcow2(path, test::qcow2Options(4 << 20, 65536)).ok());
  std::vector<uint8_t> before(100000, 0x11), after(5000, 0x22), got(5000);
  {
    auto dev = test::openOrDie(path);
    ASSERT_TRUE(dev);
    auto* q = asQcow2(dev);
    ASSERT_TRUE(dev->write(0, before).ok());
    auto sn = q->createSnapshot(named("before"));
    ASSERT_TRUE(sn.ok()) << sn.error().message();
    EXPECT_EQ(sn->id, "1");
    EXPECT_EQ(sn->diskSize, 4u << 20);
    ASSERT_TRUE(dev->write(70000, after).ok());   // partial cluster: copy-on-write of the rest
    ASSERT_TRUE(dev->write(2 << 20, after).ok());  // a new cluster, in a shared L2 table
    ASSERT_TRUE(dev->read(70000, got).ok());
    EXPECT_EQ(got, after);
  }
  expectClean(path);
  auto snap = qemuSnapshotContents(path, "before", dir / "before.raw");
  ASSERT_EQ(snap.size(), 4u << 20);
  EXPECT_TRUE(std::equal(before.begin(), before.end(), snap.begin()));
  EXPECT_EQ(snap[2 << 20], 0);
  {
    auto dev = test::openOrDie(path);
    ASSERT_TRUE(dev);
    auto* q = asQcow2(dev);
    ASSERT_TRUE(q->applySnapshot("1").ok());
    ASSERT_TRUE(dev->read(70000, got).ok());
    EXPECT_EQ(got, std::vector<uint8_t>(before.begin() + 70000, before.begin() + 75000));
    ASSERT_TRUE(dev->read(2 << 20, got).ok());
    EXPECT_EQ(got, std::vector<uint8_t>(5000, 0));
    auto del = q->deleteSnapshot("", "before");
    ASSERT_TRUE(del.ok());
    EXPECT_EQ(del->id, "1");
    EXPECT_TRUE(q->snapshots().empty());
  }
  expectClean(path);
}

TEST(StorageSnapshot, IdsAndErrors) {
  ScratchDir dir;
  const std::string path = dir / "a.qcow2";
  ASSERT_TRUE(createQcow2(path, test::qcow2Options(1 << 20)).ok());
  auto dev = test::openOrDie(path);
  auto* q = asQcow2(dev);
  ASSERT_EQ(q->createSnapshot(named("a"))->id, "1");
  SnapshotRequest custom = named("b");
  custom.id = "7";
  ASSERT_EQ(q->createSnapshot(custom)->id, "7");
  ASSERT_EQ(q->createSnapshot(named("c"))->id, "8");
  auto dup = q->createSnapshot(custom);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code(), EEXIST);
  EXPECT_FALSE(q->applySnapshot("99").ok());
  EXPECT_FALSE(q->deleteSnapshot("1", "b").ok());  // id and name must both match
  EXPECT_FALSE(q->deleteSnapshot("", "").ok());
  auto list = q->snapshots();
  EXPECT_EQ(findSnapshotByIdOrName(list, "c"), 2);
  EXPECT_EQ(findSnapshotByIdOrName(list, "7"), 1);
  dev.reset();
  auto ro = test::openOrDie(path, true);
  EXPECT_EQ(asQcow2(ro)->createSnapshot(named("x")).error().code(), EROFS);
  EXPECT_EQ(asQcow2(ro)->snapshots().size(), 3u);
}

TEST(StorageSnapshot, OneBitRefcountsRefuseClearly) {
  ScratchDir dir;
  const std::string path = dir / "a.qcow2";
  ASSERT_TRUE(createQcow2(path, test::qcow2Options(1 << 20, 65536, 3, 1)).ok());
  auto dev = test::openOrDie(path);
  std::vector<uint8_t> d(4096, 1);
  ASSERT_TRUE(dev->write(0, d).ok());
  auto r = asQcow2(dev)->createSnapshot(named("a"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("refcount_bits"), std::string::npos) << r.error().message();
  ASSERT_TRUE(dev->write(4096, d).ok());  // still usable, nothing leaked
  EXPECT_TRUE(asQcow2(dev)->snapshots().empty());
  dev.reset();
  if (test::haveQemuImg()) expectClean(path);
}

// Snapshots made by qemu-img are listed, written around (copy-on-write), applied and deleted by
// us; snapshots made by us are listed, applied and compared by qemu-img.
TEST(StorageSnapshotInterop, QemuImgSnapshotsBothWays) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  const std::string path = dir / "q.qcow2", img = test::vmmImg();
  ASSERT_EQ(test::run("qemu-img create -q -f qcow2 " + path + " 8M").status, 0);
  ASSERT_EQ(test::run("qemu-io -c 'write -P 0x31 0 1M' " + path).status, 0);
  ASSERT_EQ(test::run("qemu-img snapshot -c qfirst " + path).status, 0);
  ASSERT_EQ(test::run("qemu-img convert -O raw " + path + " " + (dir / "first.raw")).status, 0);
  {
    auto dev = test::openOrDie(path);
    ASSERT_TRUE(dev);
    auto list = asQcow2(dev)->snapshots();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].name, "qfirst");
    std::vector<uint8_t> d(300000, 0x42);
    ASSERT_TRUE(dev->write(500000, d).ok());
    ASSERT_TRUE(asQcow2(dev)->createSnapshot(named("ours")).ok());
  }
  expectClean(path);
  ASSERT_EQ(test::run("qemu-img convert -O raw " + path + " " + (dir / "ours.raw")).status, 0);
  auto listed = test::run("qemu-img snapshot -l " + path);
  EXPECT_NE(listed.output.find("qfirst"), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find("ours"), std::string::npos) << listed.output;
  // vmm-img's listing is qemu-img's, line for line.
  auto ours = test::run(img + " snapshot -l " + path);
  EXPECT_EQ(ours.output, listed.output);
  ASSERT_EQ(test::run("qemu-io -c 'write -P 0x55 0 2M' " + path).status, 0);
  auto a = test::run(img + " snapshot -a qfirst " + path);
  ASSERT_EQ(a.status, 0) << a.output;
  EXPECT_EQ(test::run("qemu-img compare -f qcow2 -F raw " + path + " " + (dir / "first.raw")).status, 0);
  ASSERT_EQ(test::run("qemu-img snapshot -a ours " + path).status, 0);
  EXPECT_EQ(test::run("qemu-img compare -f qcow2 -F raw " + path + " " + (dir / "ours.raw")).status, 0);
  auto d = test::run(img + " snapshot -d qfirst " + path);
  ASSERT_EQ(d.status, 0) << d.output;
  expectClean(path);
  EXPECT_EQ(test::run("qemu-img compare -f qcow2 -F raw " + path + " " + (dir / "ours.raw")).status, 0);
  ASSERT_EQ(test::run("qemu-img snapshot -d ours " + path).status, 0);
  expectClean(path);
  EXPECT_EQ(test::run(img + " snapshot -l " + path).output, "");
}

// Snapshots taken while four threads keep writing: each snapshot holds every write whole or not
// at all (the operation waits for requests in flight and holds new ones), and a later snapshot
// never holds an older version of a region than an earlier one.
TEST(StorageSnapshot, ConcurrentWritersSeeAtomicSnapshots) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  const std::string path = dir / "a.qcow2";
  constexpr uint64_t kRegion = 24 << 10, kRegions = 64;  // regions straddle 4 KiB clusters
  ASSERT_TRUE(createQcow2(path, test::qcow2Options(kRegion * kRegions, 4096)).ok());
  std::vector<std::string> names;
  {
    auto dev = test::openOrDie(path);
    ASSERT_TRUE(dev);
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (uint64_t t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        std::mt19937_64 rng(t);
        for (uint32_t version = 1; !stop; ++version) {
          const uint64_t region = t + 4 * (rng() % (kRegions / 4));  // each thread owns its regions
          std::vector<uint8_t> d(kRegion);
          for (uint64_t i = 0; i < kRegion; i += 4) storeBe32(&d[i], version);
          if (!dev->write(region * kRegion, d).ok()) return;
        }
      });
    }
    bool failed = false;  // no ASSERT while the writers run: they must be joined first
    for (int i = 0; i < 12 && !failed; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(15));
      auto e = asQcow2(dev)->createSnapshot(named("c" + std::to_string(i)));
      EXPECT_TRUE(e.ok()) << e.error().message();
      failed = !e.ok();
      if (!failed) names.push_back(e->name);
      if (!failed && i % 4 == 3) {
        failed = !asQcow2(dev)->deleteSnapshot("", names[i - 1]).ok();
        EXPECT_FALSE(failed);
      }
    }
    stop = true;
    for (auto& w : writers) w.join();
    ASSERT_FALSE(failed);
  }
  expectClean(path);
  std::vector<uint32_t> last(kRegions, 0);
  for (size_t i = 0; i < names.size(); ++i) {
    if (i % 4 == 2) continue;  // deleted
    auto disk = qemuSnapshotContents(path, names[i], dir / "c.raw");
    ASSERT_EQ(disk.size(), kRegion * kRegions);
    for (uint64_t r = 0; r < kRegions; ++r) {
      const uint32_t v = loadBe32(&disk[r * kRegion]);
      for (uint64_t at = r * kRegion; at < (r + 1) * kRegion; at += 4) {
        ASSERT_EQ(loadBe32(&disk[at]), v) << "snapshot " << names[i] << " holds a torn write in region " << r;
      }
      EXPECT_GE(v, last[r]) << "snapshot " << names[i] << " region " << r << " went back in time";
      last[r] = v;
    }
  }
}

// The disk size is part of a snapshot: an image grown after one (its L1 table grown too) goes
// back to the old size when it is applied, and forward again; resizing with snapshots works.
TEST(StorageSnapshotInterop, SnapshotsAcrossResize) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  const std::string path = dir / "r.qcow2", img = test::vmmImg();
  ASSERT_EQ(test::run("qemu-img create -q -f qcow2 -o cluster_size=512 " + path + " 4M").status, 0);
  ASSERT_EQ(test::run("qemu-io -c 'write -P 0x21 0 8k' " + path).status, 0);
  ASSERT_EQ(test::run("qemu-img snapshot -c small " + path).status, 0);
  ASSERT_EQ(test::run("qemu-img resize -q " + path + " 8M").status, 0);  // 128 -> 256 L1 entries
  ASSERT_EQ(test::run("qemu-io -c 'write -P 0x22 6M 8k' " + path).status, 0);
  auto r = test::run(img + " snapshot -c big " + path);
  ASSERT_EQ(r.status, 0) << r.output;
  r = test::run(img + " resize " + path + " 12M");
  ASSERT_EQ(r.status, 0) << r.output;
  expectClean(path);
  r = test::run(img + " snapshot -a small " + path);
  ASSERT_EQ(r.status, 0) << r.output;
  expectClean(path);
  EXPECT_NE(test::run("qemu-img info " + path).output.find("virtual size: 4 MiB"), std::string::npos);
  EXPECT_EQ(test::run("qemu-io -c 'read -P 0x21 0 8k' " + path).output.find("Pattern verification failed"), std::string::npos);
  ASSERT_EQ(test::run("qemu-img snapshot -a big " + path).status, 0);
  EXPECT_NE(test::run("qemu-img info " + path).output.find("virtual size: 8 MiB"), std::string::npos);
  r = test::run(img + " snapshot -a big " + path);
  ASSERT_EQ(r.status, 0) << r.output;
  auto dev = test::openOrDie(path, true);
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->size(), 8u << 20);
  std::vector<uint8_t> got(8192);
  ASSERT_TRUE(dev->read(6 << 20, got).ok());
  EXPECT_EQ(got, std::vector<uint8_t>(8192, 0x22));
  dev.reset();
  expectClean(path);
}

// QEMU's savevm stores the VM state in the image past the disk (vm_state_size > 0): we list it,
// apply and delete it, and the VM state clusters are freed with it.
TEST(StorageSnapshotInterop, QemuSavevmSnapshot) {
  REQUIRE_QEMU_IMG();
  if (test::run("qemu-system-x86_64 --version").status != 0) GTEST_SKIP() << "qemu-system-x86_64 not installed";
  ScratchDir dir;
  const std::string path = dir / "v.qcow2";
  ASSERT_EQ(test::run("qemu-img create -q -f qcow2 " + path + " 4M").status, 0);
  ASSERT_EQ(test::run("qemu-io -c 'write -P 0x66 0 256k' " + path).status, 0);
  auto saved = test::run("printf 'savevm vmsnap\\nquit\\n' | timeout 60 qemu-system-x86_64 -M none -m 16 -nodefaults "
                         "-display none -accel tcg -drive if=none,id=d0,format=qcow2,file=" +
                         path + " -monitor stdio");
  ASSERT_EQ(saved.status, 0) << saved.output;
  auto dev = test::openOrDie(path);
  ASSERT_TRUE(dev);
  auto list = asQcow2(dev)->snapshots();
  ASSERT_EQ(list.size(), 1u) << saved.output;
  EXPECT_EQ(list[0].name, "vmsnap");
  EXPECT_GT(list[0].vmStateSize, 0u);
  std::vector<uint8_t> d(65536, 0x77);
  ASSERT_TRUE(dev->write(0, d).ok());
  ASSERT_TRUE(asQcow2(dev)->applySnapshot(list[0].id).ok());
  std::vector<uint8_t> got(65536);
  ASSERT_TRUE(dev->read(0, got).ok());
  EXPECT_EQ(got, std::vector<uint8_t>(65536, 0x66));
  dev.reset();
  expectClean(path);
  auto del = test::run(test::vmmImg() + " snapshot -d vmsnap " + path);
  ASSERT_EQ(del.status, 0) << del.output;
  expectClean(path);
}

// A writer killed while it creates, applies and deletes snapshots between writes leaves the old
// or the new snapshot table and at worst leaked clusters (and bit 63 on clusters whose extra
// reference is such a leak): `qemu-img check -r all` finds nothing worse, no refcount below its
// references, and every snapshot still listed reads as qemu-img saw it before the kill.
[[noreturn]] void snapshotForever(const std::string& path, uint64_t seed) {
  auto dev = openImage(path, OpenOptions{});
  if (!dev.ok()) ::_exit(10);
  auto* q = dynamic_cast<Qcow2Device*>(dev->get());
  std::mt19937_64 rng(seed);
  for (int n = 0;; ++n) {
    Result<void> r;
    switch (rng() % 5) {
      case 0: {
        if (q->snapshots().size() >= 4) break;  // few snapshots: each is read back after every kill
        auto e = q->createSnapshot(named("k" + std::to_string(seed) + "_" + std::to_string(n)));
        if (!e.ok()) ::_exit(11);
        break;
      }
      case 1: {
        auto list = q->snapshots();
        if (list.size() > 1) {
          auto e = q->deleteSnapshot(list[rng() % list.size()].id, "");
          if (!e.ok()) ::_exit(12);
        }
        break;
      }
      case 2: {
        auto list = q->snapshots();
        if (!list.empty() && !q->applySnapshot(list[rng() % list.size()].id).ok()) ::_exit(13);
        break;
      }
      default: {
        uint64_t len = 1 + rng() % (64 << 10), off = rng() % (q->size() - len);
        auto d = test::randomBytes(rng, len);
        if (!q->write(off, d).ok()) ::_exit(14);
      }
    }
  }
}

TEST(StorageSnapshotCrash, KilledDuringSnapshotOperations) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  const std::string path = dir / "c.qcow2", copy = dir / "copy.qcow2";
  ASSERT_TRUE(createQcow2(path, test::qcow2Options(4 << 20, 4096)).ok());
  std::mt19937_64 rng(5);
  for (int i = 0; i < 10; ++i) {
    // What qemu-img reads in every snapshot now, by name (unique: ids are reused after a delete).
    // The writer deletes some of them before the kill; none that stays may change.
    std::map<std::string, std::vector<uint8_t>> before;
    {
      auto dev = test::openOrDie(path, true);
      ASSERT_TRUE(dev);
      for (const auto& sn : asQcow2(dev)->snapshots()) before[sn.name] = qemuSnapshotContents(path, sn.name, dir / "sn.raw");
    }
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) snapshotForever(path, 100 + i);
    std::this_thread::sleep_for(std::chrono::microseconds(5000 + rng() % 80000));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited by itself with status " << WEXITSTATUS(status);
    auto plain = test::qemuCheck(path);
    // "ERROR cluster N refcount=R reference=F" is a refcount below its references (QEMU's words).
    for (const char* worse : {"ERROR cluster", "ERROR L2", "ERROR offset"}) {
      EXPECT_EQ(plain.output.find(worse), std::string::npos) << "kill " << i << ":\n" << plain.output;
    }
    {
      auto dev = test::openOrDie(path, true);
      ASSERT_TRUE(dev);
      auto list = asQcow2(dev)->snapshots();
      for (const auto& sn : list) {
        if (!before.count(sn.name)) continue;  // made by this writer
        EXPECT_TRUE(qemuSnapshotContents(path, sn.name, dir / "sn.raw") == before[sn.name]) << "kill " << i << " snapshot " << sn.name;
      }
    }
    ASSERT_EQ(test::run("cp " + path + " " + copy).status, 0);
    auto repaired = test::run("qemu-img check -r all " + copy);
    EXPECT_EQ(test::qemuCheck(copy).status, 0) << "kill " << i << ":\n" << repaired.output;
    // Our own repair makes it clean too, and the writer carries on from there.
    auto dev = test::openOrDie(path);
    ASSERT_TRUE(dev);
    auto res = asQcow2(dev)->check(RepairMode::All);
    ASSERT_TRUE(res.ok()) << res.error().message();
    dev.reset();
    auto again = test::qemuCheck(path);
    ASSERT_EQ(again.status, 0) << "kill " << i << ":\n" << again.output;
  }
}

// Hostile snapshot tables: each is a clear error on open, never a crash or a huge allocation.
class StorageSnapshotHostile : public ::testing::Test {
 protected:
  void SetUp() override {
    path = dir / "h.qcow2";
    ASSERT_TRUE(createQcow2(path, test::qcow2Options(4 << 20)).ok());
    auto dev = test::openOrDie(path);
    std::vector<uint8_t> d(100000, 0xab);
    ASSERT_TRUE(dev->write(0, d).ok());
    auto sn = asQcow2(dev)->createSnapshot(named("one"));
    ASSERT_TRUE(sn.ok());
    l1 = sn->l1Offset;
    table = asQcow2(dev)->header().snapshotsOffset;
  }
  void put(uint64_t off, uint64_t v, int bytes) {
    uint8_t b[8];
    if (bytes == 8) storeBe64(b, v);
    if (bytes == 4) storeBe32(b, static_cast<uint32_t>(v));
    if (bytes == 2) storeBe16(b, static_cast<uint16_t>(v));
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, b, bytes, static_cast<off_t>(off)), bytes);
    ::close(fd);
  }
  void expectOpenError(const std::string& what) {
    for (bool readOnly : {true, false}) {
      OpenOptions o;
      o.readOnly = readOnly;
      auto dev = openImage(path, o);
      ASSERT_FALSE(dev.ok()) << "opened a hostile image";
      EXPECT_NE(dev.error().message().find(what), std::string::npos) << dev.error().message();
    }
  }
  ScratchDir dir;
  std::string path;
  uint64_t l1 = 0, table = 0;
};

TEST_F(StorageSnapshotHostile, TooManySnapshots) {
  put(60, 0x7fffffff, 4);
  expectOpenError("too many snapshots");
}

TEST_F(StorageSnapshotHostile, MoreEntriesThanTheTableHolds) {
  put(60, 65536, 4);
  expectOpenError("past the end of the snapshot table");
}

TEST_F(StorageSnapshotHostile, TableOverlapsTheHeader) {
  put(64, 0, 8);
  expectOpenError("snapshot table");
}

TEST_F(StorageSnapshotHostile, TableOverlapsTheRefcountTable) {
  put(64, 65536, 8);  // where qcow2 create puts the refcount table
  expectOpenError("overlaps");
}

TEST_F(StorageSnapshotHostile, TableOutsideTheFile) {
  put(64, 1ull << 40, 8);
  expectOpenError("outside the file");
}

TEST_F(StorageSnapshotHostile, L1OutsideTheFile) {
  put(table, 1ull << 40, 8);
  expectOpenError("L1 table lies outside the file");
}

TEST_F(StorageSnapshotHostile, HugeL1) {
  put(table + 8, 0x7fffffff, 4);
  expectOpenError("L1 table too large");
}

TEST_F(StorageSnapshotHostile, MisalignedL1) {
  put(table, l1 + 8, 8);
  expectOpenError("not cluster aligned");
}

TEST_F(StorageSnapshotHostile, L1OverlapsTheActiveL1) {
  uint64_t active = 0;
  {
    auto dev = test::openOrDie(path, true);
    active = asQcow2(dev)->header().l1TableOffset;
  }
  put(table, active, 8);
  expectOpenError("overlaps");
}

TEST_F(StorageSnapshotHostile, HugeExtraData) {
  put(table + 36, 0x10000000, 4);
  expectOpenError("extra data");
}

TEST_F(StorageSnapshotHostile, NameLongerThanTheTable) {
  put(table + 14, 0xffff, 2);
  expectOpenError("past the end of the snapshot table");
}

TEST_F(StorageSnapshotHostile, HugeDiskSize) {
  put(table + 40 + 8, 1ull << 62, 8);
  expectOpenError("too large");
}

TEST_F(StorageSnapshotHostile, OneHugeL1NamedByEverySnapshot) {
  // 10 entries all naming a 64 KiB L1 table in a file of a few clusters: more than the file holds.
  std::vector<uint8_t> entry(40 + 24 + 2, 0);
  storeBe64(&entry[0], l1);
  storeBe32(&entry[8], 8192);
  storeBe16(&entry[12], 1);
  storeBe16(&entry[14], 1);
  storeBe32(&entry[36], 24);
  entry[64] = '1';
  entry[65] = 'x';
  entry.resize(72, 0);
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(::pwrite(fd, entry.data(), entry.size(), static_cast<off_t>(table + i * 72)), 72);
  ::close(fd);
  put(60, 10, 4);
  expectOpenError("larger together than the file");
}

TEST_F(StorageSnapshotHostile, L2TableNamedTwiceInASnapshot) {
  uint8_t raw[8];
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_EQ(::pread(fd, raw, 8, static_cast<off_t>(l1)), 8);
  ::close(fd);
  const uint64_t first = loadBe64(raw);
  ASSERT_NE(first, 0u);
  put(table + 8, 2, 4);   // the snapshot's L1 table gets a second entry (its cluster has room)
  put(l1 + 8, first, 8);  // which names entry 0's L2 table too
  auto dev = test::openOrDie(path);
  ASSERT_TRUE(dev);
  auto r = asQcow2(dev)->applySnapshot("1");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("named twice"), std::string::npos) << r.error().message();
}

TEST_F(StorageSnapshotHostile, SnapshotL2OutsideTheFileFailsApplyAndCheckClearly) {
  put(l1, (1ull << 45), 8);  // the snapshot's L1 entry 0 points far away
  auto dev = test::openOrDie(path);
  ASSERT_TRUE(dev);
  auto r = asQcow2(dev)->applySnapshot("1");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("outside the file"), std::string::npos) << r.error().message();
  auto del = asQcow2(dev)->deleteSnapshot("1", "");
  EXPECT_FALSE(del.ok());
  dev.reset();
  auto ro = test::openOrDie(path, true);
  auto res = asQcow2(ro)->check(RepairMode::None);
  ASSERT_TRUE(res.ok()) << res.error().message();
  EXPECT_GT(res->corruptions, 0u);
}

}  // namespace
}  // namespace vmmd::storage
