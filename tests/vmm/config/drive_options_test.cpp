#include "vmm/config/drive_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vmmd::config {
namespace {

using ::testing::HasSubstr;

MachineConfig drivesFrom(const std::vector<std::string>& drive_args) {
  MachineConfig config;
  int index = 0;
  for (const auto& arg : drive_args) {
    auto st = parseDrive("-drive", arg, config, index++);
    EXPECT_TRUE(st.ok()) << st.error().message();
  }
  return config;
}

std::string driveError(const std::string& arg) {
  MachineConfig config;
  auto st = parseDrive("-drive", arg, config, 0);
  EXPECT_FALSE(st.ok()) << arg << " was accepted";
  return st.ok() ? std::string() : st.error().message();
}

Result<MachineConfig> blockdevsFrom(const std::vector<std::string>& args) {
  std::vector<BlockdevNode> nodes;
  for (const auto& arg : args) {
    auto node = parseBlockdev("-blockdev", arg);
    if (!node) return node.error();
    nodes.push_back(*node);
  }
  MachineConfig config;
  if (auto st = resolveBlockdevs(nodes, config); !st) return st.error();
  return config;
}

TEST(Drive, IfVirtioIsTheDefaultAndAddsItsDevice) {
  MachineConfig c = drivesFrom({"file=/a.raw", "file=/b.qcow2,format=qcow2"});
  ASSERT_EQ(c.drives.size(), 2u);
  EXPECT_EQ(c.drives[0].id, "virtio0");  // QEMU's default ids for if=virtio
  EXPECT_EQ(c.drives[1].id, "virtio1");
  EXPECT_EQ(c.drives[0].format, "");      // probed at open, as QEMU does
  ASSERT_EQ(c.devices.size(), 2u);
  EXPECT_EQ(c.devices[1].driver, "virtio-blk-pci");
  EXPECT_EQ(c.devices[1].properties.at("drive"), "virtio1");
}

TEST(Drive, CacheModesMapToDirectAndNoFlush) {
  struct Case {
    const char* mode;
    bool direct, no_flush;
  };
  for (Case c : {Case{"none", true, false}, Case{"directsync", true, false}, Case{"writeback", false, false},
                 Case{"writethrough", false, false}, Case{"unsafe", false, true}, Case{"off", true, false}}) {
    MachineConfig config = drivesFrom({std::string("file=/a,if=none,id=d,cache=") + c.mode});
    ASSERT_EQ(config.drives.size(), 1u);
    EXPECT_EQ(config.drives[0].direct, c.direct) << c.mode;
    EXPECT_EQ(config.drives[0].no_flush, c.no_flush) << c.mode;
  }
}

TEST(Drive, QemuOnlyKeysAreAcceptedAndIgnored) {
  MachineConfig c = drivesFrom({"file=/a,if=none,id=d,aio=threads,discard=unmap,detect-zeroes=on,werror=report"});
  EXPECT_EQ(c.drives.size(), 1u);
}

TEST(Drive, ErrorsNameTheOptionAndTheProblem) {
  EXPECT_THAT(driveError("format=raw"), HasSubstr("file= is required"));
  EXPECT_THAT(driveError("file=/a,format=vmdk"), HasSubstr("format 'vmdk' is not supported"));
  EXPECT_THAT(driveError("file=/a,if=ide"), HasSubstr("if=ide is not supported"));
  EXPECT_THAT(driveError("file=/a,cache=fast"), HasSubstr("cache mode 'fast' is unknown"));
  EXPECT_THAT(driveError("file=/a,media=cdrom"), HasSubstr("media=cdrom"));
  EXPECT_THAT(driveError("file=/a,readonly=maybe"), HasSubstr("readonly"));
  EXPECT_THAT(driveError("file=/a,bogus=1"), HasSubstr("bogus"));
}

TEST(Drive, DuplicateIdsAreRefused) {
  MachineConfig config;
  ASSERT_TRUE(parseDrive("-drive", "file=/a,id=d", config, 0).ok());
  auto st = parseDrive("-drive", "file=/b,id=d", config, 1);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message(), HasSubstr("duplicate drive id 'd'"));
}

TEST(Blockdev, FormatNodeOverProtocolNodeBecomesOneDrive) {
  auto c = blockdevsFrom({"driver=file,node-name=f,filename=/img.qcow2,cache.direct=on",
                          "driver=qcow2,node-name=disk0,file=f,read-only=on"});
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_EQ(c->drives.size(), 1u);
  EXPECT_EQ(c->drives[0].id, "disk0");
  EXPECT_EQ(c->drives[0].path, "/img.qcow2");
  EXPECT_EQ(c->drives[0].format, "qcow2");
  EXPECT_TRUE(c->drives[0].direct);
  EXPECT_TRUE(c->drives[0].read_only);
}

TEST(Blockdev, InlineFileChildAndBareProtocolNode) {
  auto c = blockdevsFrom({"driver=raw,node-name=a,file.driver=file,file.filename=/a.raw",
                          "driver=file,node-name=b,filename=/b.raw"});
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_EQ(c->drives.size(), 2u);
  EXPECT_EQ(c->drives[0].path, "/a.raw");
  EXPECT_EQ(c->drives[1].id, "b");
  EXPECT_EQ(c->drives[1].format, "raw");
}

TEST(Blockdev, BrokenGraphsAreClearErrors) {
  auto missing = blockdevsFrom({"driver=qcow2,node-name=d,file=nowhere"});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message(), HasSubstr("node 'nowhere' not found"));

  auto not_file = blockdevsFrom({"driver=raw,node-name=r,file.driver=file,file.filename=/r",
                                 "driver=qcow2,node-name=q,file=r"});
  ASSERT_FALSE(not_file.ok());
  EXPECT_THAT(not_file.error().message(), HasSubstr("is not a file node"));

  auto duplicate = blockdevsFrom({"driver=file,node-name=x,filename=/a", "driver=file,node-name=x,filename=/b"});
  ASSERT_FALSE(duplicate.ok());
  EXPECT_THAT(duplicate.error().message(), HasSubstr("duplicate node-name 'x'"));

  auto bad_driver = blockdevsFrom({"driver=nbd,node-name=n"});
  ASSERT_FALSE(bad_driver.ok());
  EXPECT_THAT(bad_driver.error().message(), HasSubstr("driver 'nbd' is not supported"));

  auto no_name = blockdevsFrom({"driver=file,filename=/a"});
  ASSERT_FALSE(no_name.ok());
  EXPECT_THAT(no_name.error().message(), HasSubstr("node-name= is required"));
}

}  // namespace
}  // namespace vmmd::config
