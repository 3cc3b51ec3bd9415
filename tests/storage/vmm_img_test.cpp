// vmm-img, the tool: qemu-img's command shapes, outputs and exit codes.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "storage/endian.h"
#include "tests/storage/test_util.h"

namespace vmmd::storage {
namespace {

using test::run;
using test::ScratchDir;
using test::vmmImg;

std::string img(const std::string& args) { return vmmImg() + " " + args; }

// vmm-img snapshot: qemu-img's listing, messages and exit statuses; info shows the snapshots as
// qemu-img info does (human and JSON).
TEST(StorageVmmImg, SnapshotCommandAsQemuImg) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  const std::string a = dir / "a.qcow2";
  ASSERT_EQ(run(img("create -q -f qcow2 " + a + " 1M")).status, 0);
  auto r = run(img("snapshot -c first " + a));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "");
  ASSERT_EQ(run("qemu-img snapshot -c second " + a).status, 0);
  EXPECT_EQ(run(img("snapshot -l " + a)).output, run("qemu-img snapshot -l " + a).output);
  EXPECT_EQ(run(img("snapshot " + a)).output, run("qemu-img snapshot -l " + a).output);  // -l is the default
  auto human = run(img("info " + a)).output, theirs = run("qemu-img info " + a).output;
  auto section = [](const std::string& text) {
    auto from = text.find("Snapshot list:");
    return from == std::string::npos ? std::string() : text.substr(from, text.find("Format specific") - from);
  };
  EXPECT_FALSE(section(human).empty()) << human;
  EXPECT_EQ(section(human), section(theirs));
  rapidjson::Document ours, qemu;
  ASSERT_FALSE(ours.Parse(run(img("info --output=json " + a)).output.c_str()).HasParseError());
  ASSERT_FALSE(qemu.Parse(run("qemu-img info --output=json " + a).output.c_str()).HasParseError());
  ASSERT_TRUE(ours.HasMember("snapshots"));
  EXPECT_TRUE(ours["snapshots"] == qemu["snapshots"]);
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {"snapshot -a nope " + a, "Could not apply snapshot 'nope': "},
           {"snapshot -d nope " + a, "Could not delete snapshot 'nope': snapshot not found"},
           {"snapshot -l -c x " + a, "Cannot mix '-l', '-a', '-c', '-d'"},
           {"snapshot -c x", "Expecting one image file name"},
           {"snapshot -c x " + a + " " + a, "Expecting one image file name"}}) {
    r = run(img(args));
    EXPECT_EQ(r.status, 1) << args << ": " << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << ": " << r.output;
  }
  const std::string raw = dir / "r.raw";
  ASSERT_EQ(run(img("create -q -f raw " + raw + " 1M")).status, 0);
  r = run(img("snapshot -c x " + raw));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("does not support snapshots"), std::string::npos) << r.output;
  ASSERT_EQ(run(img("snapshot -d first " + a)).status, 0);
  ASSERT_EQ(run(img("snapshot -d 2 " + a)).status, 0);  // by id
  EXPECT_EQ(run(img("snapshot -l " + a)).output, "");
  EXPECT_EQ(test::qemuCheck(a).status, 0);
}

TEST(StorageVmmImg, CreateAndInfoJsonMatchesQemuImg) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  auto r = run(img("create -f qcow2 -o cluster_size=4k " + dir / "base.qcow2 100M"));
  ASSERT_EQ(r.status, 0) << r.output;
  // As qemu-img 7.2: a backing file without its format is refused, never probed.
  r = run(img("create -f qcow2 -b base.qcow2 " + dir / "top.qcow2"));
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("without backing format"), std::string::npos) << r.output;
  r = run(img("create -f qcow2 -b base.qcow2 -F qcow2 " + dir / "top.qcow2"));
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* name : {"base.qcow2", "top.qcow2"}) {
    auto ours = run(img("info --output=json " + dir / name));
    auto theirs = run("qemu-img info --output=json " + dir / name);
    ASSERT_EQ(ours.status, 0) << ours.output;
    ASSERT_EQ(theirs.status, 0) << theirs.output;
    rapidjson::Document a, b;
    ASSERT_FALSE(a.Parse(ours.output.c_str()).HasParseError()) << ours.output;
    ASSERT_FALSE(b.Parse(theirs.output.c_str()).HasParseError()) << theirs.output;
    for (auto it = b.MemberBegin(); it != b.MemberEnd(); ++it) {
      std::string key = it->name.GetString();
      ASSERT_TRUE(a.HasMember(key.c_str())) << "missing key " << key << " in\n" << ours.output;
      if (key == "actual-size") continue;
      EXPECT_TRUE(a[key.c_str()] == it->value) << key << " differs:\n" << ours.output << "\nvs\n" << theirs.output;
    }
  }
  auto human = run(img("info " + dir / "top.qcow2"));
  EXPECT_NE(human.output.find("virtual size: 100 MiB (104857600 bytes)"), std::string::npos) << human.output;
  EXPECT_NE(human.output.find("backing file: base.qcow2"), std::string::npos) << human.output;
}

TEST(StorageVmmImg, ErrorsNameTheFile) {
  ScratchDir dir;
  auto r = run(img("info " + dir / "missing.qcow2"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find(dir / "missing.qcow2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("No such file"), std::string::npos) << r.output;
  r = run(img("create -f qcow2 " + dir / "x.qcow2 12Q"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("12Q"), std::string::npos) << r.output;
  r = run(img("create -f qcow2 -o cluster_size=1000 " + dir / "x.qcow2 1M"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("cluster size"), std::string::npos) << r.output;
  r = run(img("create -f vmdk " + dir / "x.img 1M"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("vmdk"), std::string::npos) << r.output;
}

TEST(StorageVmmImg, CheckFindsAndRepairsLeaks) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  std::string path = dir / "a.qcow2";
  ASSERT_EQ(run(img("create -q -f qcow2 " + path + " 1M")).status, 0);
  EXPECT_EQ(run(img("check " + path)).status, 0);
  // Leak: give cluster 10 a refcount although nothing uses it (refcount block is cluster 2).
  ASSERT_EQ(::truncate(path.c_str(), 16 * 65536), 0);
  int fd = ::open(path.c_str(), O_RDWR);
  uint8_t one[2] = {0, 1};
  ASSERT_EQ(::pwrite(fd, one, 2, 2 * 65536 + 10 * 2), 2);
  ::close(fd);
  auto r = run(img("check " + path));
  EXPECT_EQ(r.status, 3) << r.output;
  EXPECT_NE(r.output.find("1 leaked clusters were found"), std::string::npos) << r.output;
  EXPECT_EQ(run("qemu-img check " + path).status, 3);
  r = run(img("check --output=json " + path));
  EXPECT_NE(r.output.find("\"leaks\": 1"), std::string::npos) << r.output;
  r = run(img("check -r leaks " + path));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("1 leaked clusters"), std::string::npos) << r.output;
  EXPECT_EQ(run("qemu-img check " + path).status, 0);
  // Corruption: cluster 3 (the L1 table) with refcount 0.
  fd = ::open(path.c_str(), O_RDWR);
  uint8_t zero[2] = {0, 0};
  ASSERT_EQ(::pwrite(fd, zero, 2, 2 * 65536 + 3 * 2), 2);
  ::close(fd);
  EXPECT_EQ(run(img("check " + path)).status, 2);
  r = run(img("check -r all " + path));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(run("qemu-img check " + path).status, 0);
  EXPECT_EQ(run(img("check " + dir / "raw.img")).status, 1);
  ASSERT_EQ(run(img("create -q -f raw " + dir / "raw.img 1M")).status, 0);
  EXPECT_EQ(run(img("check " + dir / "raw.img")).status, 63);
}

TEST(StorageVmmImg, ConvertPlainCompressedAndExisting) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  std::string src = dir / "src.raw";
  ASSERT_EQ(run("dd if=/dev/urandom of=" + src + " bs=1M count=3 status=none").status, 0);
  ASSERT_EQ(run("truncate -s 16M " + src).status, 0);
  // Compressible text at 8M.
  ASSERT_EQ(run("yes vmmd-storage | head -c 2000000 | dd of=" + src + " bs=1M seek=8 conv=notrunc status=none").status, 0);
  auto r = run(img("convert -p -O qcow2 " + src + " " + dir / "plain.qcow2"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("100.00/100%"), std::string::npos) << r.output;
  r = run(img("convert -c -O qcow2 -o cluster_size=4k " + src + " " + dir / "comp.qcow2"));
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* name : {"plain.qcow2", "comp.qcow2"}) {
    EXPECT_EQ(run("qemu-img check " + dir / name).status, 0) << name;
    auto cmp = run("qemu-img compare " + src + " " + dir / name);
    EXPECT_EQ(cmp.status, 0) << name << ": " << cmp.output;
    EXPECT_EQ(run(img("compare " + src + " " + dir / name)).status, 0);
  }
  auto check = run("qemu-img check " + dir / "comp.qcow2");
  EXPECT_EQ(check.output.find(" 0.00% compressed"), std::string::npos) << check.output;
  // Sparse result: zeroes were not written.
  auto info = run(img("info --output=json " + dir / "plain.qcow2"));
  rapidjson::Document d;
  d.Parse(info.output.c_str());
  EXPECT_LT(d["actual-size"].GetUint64(), 8u << 20);
  // -n into an existing image full of garbage: zero ranges must be written too.
  ASSERT_EQ(run("qemu-img create -q -f qcow2 " + dir / "old.qcow2 16M").status, 0);
  ASSERT_EQ(run("qemu-io -c 'write -P 0xee 0 16M' " + dir / "old.qcow2").status, 0);
  r = run(img("convert -n -O qcow2 " + src + " " + dir / "old.qcow2"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(run("qemu-img compare " + src + " " + dir / "old.qcow2").status, 0);
  EXPECT_EQ(run("qemu-img check " + dir / "old.qcow2").status, 0);
  // qcow2 -> raw round trip.
  ASSERT_EQ(run(img("convert -O raw " + dir / "comp.qcow2 " + dir / "back.raw")).status, 0);
  EXPECT_EQ(run("cmp " + src + " " + dir / "back.raw").status, 0);
}

TEST(StorageVmmImg, ResizeCompareBench) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  std::string a = dir / "a.qcow2", b = dir / "b.qcow2";
  ASSERT_EQ(run(img("create -q -f qcow2 " + a + " 1M")).status, 0);
  auto r = run(img("resize " + a + " +3M"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Image resized."), std::string::npos);
  r = run("qemu-img info --output=json " + a);
  EXPECT_NE(r.output.find("\"virtual-size\": 4194304"), std::string::npos) << r.output;
  EXPECT_NE(run(img("resize " + a + " 1M")).status, 0);  // shrinking needs --shrink (and qcow2 refuses)
  ASSERT_EQ(run(img("create -q -f qcow2 " + b + " 4M")).status, 0);
  EXPECT_EQ(run(img("compare " + a + " " + b)).status, 0);
  ASSERT_EQ(run("qemu-io -c 'write -P 1 1M 4k' " + b).status, 0);
  r = run(img("compare " + a + " " + b));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("Content mismatch at offset 1048576!"), std::string::npos) << r.output;
  r = run(img("bench -c 2000 -d 8 -w -S 12288 " + a));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Run completed in"), std::string::npos) << r.output;
  r = run(img("bench -c 2000 -d 8 -t none " + a));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(run("qemu-img check " + a).status, 0);
  ASSERT_EQ(run(img("create -q -f raw " + dir / "r.raw 2M")).status, 0);
  EXPECT_EQ(run(img("resize --shrink " + dir / "r.raw 1M")).status, 0);
  EXPECT_EQ(run(img("resize " + dir / "r.raw -512k")).status, 1);
}

}  // namespace
}  // namespace vmmd::storage
