// Firmware boot in a definition: "boot" instead of "kernel", its validation, its canonical form,
// how vmm is told (bootindex on the disks' own -device, -bios for a loader), how it is described.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "daemon/definition/definition_json.h"
#include "daemon/launch/worker_argv.h"

namespace vmmd::daemon {
namespace {

using Args = std::vector<std::string>;

constexpr const char* kUuid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
constexpr const char* kTwoDisks = R"("disks": [{"path": "/img/data.raw", "format": "raw"},
                                              {"id": "root", "path": "/img/debian.qcow2", "format": "qcow2"}])";

// A document without a kernel: two disks and `boot` (or whatever `rest` holds).
std::string diskVm(const std::string& rest) {
  return std::string(R"({"schema": 1, "name": "deb", "uuid": ")") + kUuid + R"(", "memory": 512, )" + kTwoDisks +
         (rest.empty() ? "" : ", " + rest) + "}";
}

std::string errorOf(const std::string& json) {
  auto def = parseDefinition(json);
  return def.ok() ? "<accepted>" : def.error().message();
}

TEST(DefinitionBoot, FirmwareFromTheNamedDisk) {
  auto def = parseDefinition(diskVm(R"("boot": {"firmware": "bios", "order": ["root"]})"));
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_FALSE(def->kernel);
  ASSERT_TRUE(def->boot);
  EXPECT_EQ(def->boot->firmware, Firmware::kBios);
  EXPECT_FALSE(def->boot->loader);
  EXPECT_EQ(def->boot->order, (std::vector<std::string>{"root"}));
  EXPECT_EQ(describeBoot(*def), "firmware bios from root");
}

TEST(DefinitionBoot, DefaultsAreEveryDiskThroughBios) {
  auto def = parseDefinition(diskVm(R"("boot": {})"));
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_EQ(def->boot->order, (std::vector<std::string>{"disk0", "root"}));
  EXPECT_EQ(describeBoot(*def), "firmware bios from disk0, root");
}

TEST(DefinitionBoot, CanonicalFormRoundTrips) {
  auto def = parseDefinition(diskVm(R"("boot": {"order": ["root", "disk0"], "loader": "/usr/share/seabios/bios.bin"})"));
  ASSERT_TRUE(def.ok()) << def.error().message();
  std::string text = serializeDefinition(*def);
  EXPECT_NE(text.find(R"("memory":512,"vcpus":1,"machine":"pc","boot":{"firmware":"bios","loader":"/usr/share/seabios/bios.bin",)"
                      R"("order":["root","disk0"]},"disks":)"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("kernel"), std::string::npos) << text;
  auto again = parseDefinition(text);
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(*again, *def);
  EXPECT_EQ(serializeDefinition(*again), text);
}

TEST(DefinitionBoot, ErrorsNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {diskVm(""), "kernel: required, unless \"boot\" says to boot from a disk through firmware"},
      {diskVm(R"("boot": {}, "kernel": "/k")"), "boot: cannot be combined with kernel (a kernel is booted directly)"},
      {diskVm(R"("boot": {}, "initrd": "/i")"), "initrd: needs kernel (the boot loader on the disk chooses its own)"},
      {diskVm(R"("boot": {}, "cmdline": "quiet")"), "cmdline: needs kernel (the boot loader on the disk chooses its own)"},
      {diskVm(R"("boot": "disk0")"), "boot: must be an object"},
      {diskVm(R"("boot": {"firmware": "uefi"})"), "boot.firmware: must be bios (the only firmware vmm has)"},
      {diskVm(R"("boot": {"loader": "bios.bin"})"), "boot.loader: must be an absolute path"},
      {diskVm(R"("boot": {"order": "root"})"), "boot.order: must be an array of disk ids"},
      {diskVm(R"("boot": {"order": []})"), "boot.order: must name at least one disk"},
      {diskVm(R"("boot": {"order": ["root", 1]})"), "boot.order[1]: must be a disk id (a string)"},
      {diskVm(R"("boot": {"order": ["cdrom"]})"), "boot.order[0]: no disk with id 'cdrom'"},
      {diskVm(R"("boot": {"order": ["root", "root"]})"), "boot.order[1]: 'root' is named twice"},
      {diskVm(R"("boot": {"menu": true})"), "boot.menu: unknown field"},
      {std::string(R"({"schema": 1, "name": "a", "memory": 64, "boot": {}})"), "boot: no disk to boot from (disks is empty)"},
  };
  for (const auto& [json, message] : cases) EXPECT_EQ(errorOf(json), message) << json;
}

TEST(DefinitionBoot, WorkerBootsTheFirmwareFromTheOrderedDisks) {
  auto def = parseDefinition(diskVm(R"("boot": {"order": ["root"]})"));
  ASSERT_TRUE(def.ok()) << def.error().message();
  auto paths = workerPathsFor("/run/vmmd", "deb");
  ASSERT_TRUE(paths.ok());
  Args argv = workerArgv(*def, *paths);
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "-kernel"), argv.end());
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "-bios"), argv.end());  // vmm's own SeaBIOS
  // The firmware's own output on the serial console (QEMU: etc/sercon-port), as under -nographic.
  EXPECT_NE(std::find(argv.begin(), argv.end(), "q35,accel=kvm,graphics=off"), argv.end());
  auto drive = std::find(argv.begin(), argv.end(), "file=/img/data.raw,format=raw,if=virtio,readonly=off,cache=writeback,id=disk0");
  ASSERT_NE(drive, argv.end());
  // The boot disk: the same place in the argv, with its own device carrying the bootindex.
  Args boot_disk(drive + 1, drive + 5);
  EXPECT_EQ(boot_disk, (Args{"-drive", "file=/img/debian.qcow2,format=qcow2,if=none,readonly=off,cache=writeback,id=root",
                             "-device", "virtio-blk-pci,drive=root,bootindex=1"}));
}

TEST(DefinitionBoot, LoaderAndOrderReachTheWorker) {
  auto def = parseDefinition(diskVm(R"("boot": {"order": ["root", "disk0"], "loader": "/fw/bios.bin"})"));
  ASSERT_TRUE(def.ok()) << def.error().message();
  auto paths = workerPathsFor("/run/vmmd", "deb");
  ASSERT_TRUE(paths.ok());
  Args argv = workerArgv(*def, *paths);
  auto bios = std::find(argv.begin(), argv.end(), "-bios");
  ASSERT_NE(bios, argv.end());
  EXPECT_EQ(*(bios + 1), "/fw/bios.bin");
  EXPECT_NE(std::find(argv.begin(), argv.end(), "virtio-blk-pci,drive=root,bootindex=1"), argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "virtio-blk-pci,drive=disk0,bootindex=2"), argv.end());
  EXPECT_EQ(describeBoot(*def), "firmware bios (/fw/bios.bin) from root, disk0");
}

TEST(DefinitionBoot, KernelBootIsDescribedAsDirect) {
  auto def = parseDefinition(R"({"schema": 1, "name": "k", "memory": 64, "kernel": "/boot/vmlinuz"})");
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_EQ(describeBoot(*def), "kernel /boot/vmlinuz (direct)");
}

}  // namespace
}  // namespace vmmd::daemon
