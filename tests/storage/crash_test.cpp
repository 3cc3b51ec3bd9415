// Crash safety: a writer killed (SIGKILL) at random points leaves an image that `qemu-img check`
// finds at worst leaking clusters, never corrupt.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "storage/qcow2.h"
#include "tests/storage/test_util.h"

namespace vmmd::storage {
namespace {

using test::ScratchDir;

[[noreturn]] void writeForever(const std::string& path, uint64_t seed) {
  OpenOptions o;
  auto dev = openImage(path, o);
  if (!dev.ok()) ::_exit(10);
  std::mt19937_64 rng(seed);
  const uint64_t size = (*dev)->size();
  for (;;) {
    uint64_t len = 1 + rng() % (96 << 10), off = rng() % (size - len);
    int what = static_cast<int>(rng() % 10);
    Result<void> r;
    if (what == 0) {
      r = (*dev)->discard(off, len);
    } else if (what == 1) {
      r = (*dev)->writeZeroes(off, len);
    } else if (what == 2) {
      auto* q = dynamic_cast<Qcow2Device*>(dev->get());
      uint64_t cs = q->clusterSize(), c = (off / cs) * cs;
      std::vector<uint8_t> cl(std::min(cs, size - c), static_cast<uint8_t>(rng()));
      r = q->writeCompressed(c, cl);
    } else {
      auto d = test::randomBytes(rng, len);
      r = (*dev)->write(off, d);
    }
    if (!r.ok()) ::_exit(11);
  }
}

void killLoop(const std::string& path, int kills, uint64_t seed) {
  std::mt19937_64 rng(seed);
  int leaky = 0;
  for (int i = 0; i < kills; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) writeForever(path, seed * 1000 + i);
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 60000));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited by itself with status " << WEXITSTATUS(status);
    auto r = test::qemuCheck(path);
    ASSERT_TRUE(r.status == 0 || r.status == 3) << "kill " << i << ": qemu-img check says\n" << r.output;
    if (r.status == 3) ++leaky;
    // Our own check agrees that nothing is corrupt; repair leaks now and then.
    OpenOptions o;
    o.readOnly = i % 3 != 0;
    auto dev = openImage(path, o);
    ASSERT_TRUE(dev.ok()) << dev.error().message();
    auto* q = dynamic_cast<Qcow2Device*>(dev->get());
    auto res = q->check(o.readOnly ? RepairMode::None : RepairMode::Leaks);
    ASSERT_TRUE(res.ok()) << res.error().message();
    EXPECT_EQ(res->corruptions, 0u);
    if (!o.readOnly) {
      dev->reset();
      auto again = test::qemuCheck(path);
      EXPECT_EQ(again.status, 0) << again.output;
    }
  }
  std::printf("%d kills, %d left leaked clusters (then repaired or carried on)\n", kills, leaky);
}

TEST(StorageCrash, KilledWriterLeavesAtWorstLeaks) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  Qcow2CreateOptions c;
  c.size = 16 << 20;
  c.clusterSize = 4096;
  ASSERT_TRUE(createQcow2(dir / "a.qcow2", c).ok());
  killLoop(dir / "a.qcow2", 15, 1);
}

TEST(StorageCrash, KilledWriterDuringRefcountTableGrowth) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  Qcow2CreateOptions c;
  c.size = 8 << 20;
  c.clusterSize = 512;
  c.refcountBits = 64;  // one refcount table cluster covers only 2 MiB: it grows often
  ASSERT_TRUE(createQcow2(dir / "a.qcow2", c).ok());
  killLoop(dir / "a.qcow2", 15, 2);
}

}  // namespace
}  // namespace vmmd::storage
