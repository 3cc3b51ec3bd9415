// The machine type in a definition: "pc" (the default) or "microvm", its validation (what vmm's
// microvm cannot build is refused at define time), its canonical form, the worker argv it gives
// (microvm's machine option and virtio-mmio device names) and the libvirt XML that carries it.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "daemon/definition/definition_json.h"
#include "daemon/definition/libvirt_xml.h"
#include "daemon/launch/worker_argv.h"
#include "vmm/machine/microvm_layout.h"

namespace vmmd::daemon {
namespace {

using Args = std::vector<std::string>;

// The definition's limit is the worker's: a change to vmm's transport count must show up here.
static_assert(kMicrovmTransports == microvm::kTransportCount);

constexpr const char* kUuid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";

std::string vm(const std::string& rest) {
  return std::string(R"({"schema": 1, "name": "fast", "uuid": ")") + kUuid + R"(", "memory": 64, "kernel": "/k")" +
         (rest.empty() ? "" : ", " + rest) + "}";
}

std::string errorOf(const std::string& json) {
  auto def = parseDefinition(json);
  return def.ok() ? "<accepted>" : def.error().message();
}

// `count` disks /d/0.raw, /d/1.raw...
std::string disks(size_t count) {
  std::string text = R"("disks": [)";
  for (size_t i = 0; i < count; ++i) {
    text += (i ? ", " : "") + std::string(R"({"path": "/d/)") + std::to_string(i) + R"(.raw", "format": "raw"})";
  }
  return text + "]";
}

// The worker argv of the definition `json` under /run/vmmd.
Args argvOf(const std::string& json) {
  auto def = parseDefinition(json);
  EXPECT_TRUE(def.ok()) << def.error().message();
  auto paths = workerPathsFor("/run/vmmd", "fast");
  EXPECT_TRUE(paths.ok());
  return def.ok() && paths.ok() ? workerArgv(*def, *paths) : Args{};
}

std::vector<std::string> optionValues(const Args& argv, const std::string& option) {
  std::vector<std::string> values;
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == option) values.push_back(argv[i + 1]);
  }
  return values;
}

TEST(DefinitionMachine, AbsentIsPc) {
  auto def = parseDefinition(vm(""));
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_EQ(def->machine, MachineType::kPc);
  EXPECT_NE(serializeDefinition(*def).find(R"("vcpus":1,"machine":"pc","kernel":)"), std::string::npos);
}

TEST(DefinitionMachine, MicrovmRoundTrips) {
  auto def = parseDefinition(vm(R"("machine": "microvm", "agent": true, "nics": [{"ifname": "tap0"}], )" + disks(2)));
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_EQ(def->machine, MachineType::kMicrovm);
  std::string text = serializeDefinition(*def);
  EXPECT_NE(text.find(R"("machine":"microvm")"), std::string::npos) << text;
  auto again = parseDefinition(text);
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(*again, *def);
  EXPECT_EQ(toString(MachineType::kMicrovm), "microvm");
  EXPECT_EQ(parseMachineType("pc"), MachineType::kPc);
  EXPECT_EQ(parseMachineType("q35"), std::nullopt);
}

TEST(DefinitionMachine, RefusesOtherMachines) {
  for (const char* value : {R"("q35")", R"("Microvm")", R"("")", R"("pc-i440fx-7.2")"}) {
    EXPECT_EQ(errorOf(vm(std::string(R"("machine": )") + value)), "machine: must be pc or microvm") << value;
  }
  EXPECT_EQ(errorOf(vm(R"("machine": 1)")), "machine: must be a string");
}

TEST(DefinitionMachine, MicrovmHasNoFirmware) {
  std::string doc = std::string(R"({"schema": 1, "name": "fw", "machine": "microvm", "memory": 64, )") + disks(1) +
                    R"(, "boot": {"order": ["disk0"]}})";
  EXPECT_EQ(errorOf(doc), R"(boot: not on machine microvm (it has no firmware: give a kernel, or use "machine": "pc"))");
  // The same document on pc is fine.
  std::string pc = doc;
  pc.replace(pc.find("microvm"), 7, "pc");
  EXPECT_EQ(errorOf(pc), "<accepted>");
}

TEST(DefinitionMachine, MicrovmHasEightVirtioSlots) {
  // 6 disks + a NIC + the agent fill the 8 transports; one more device does not fit.
  std::string nic = R"("nics": [{"ifname": "tap0"}])";
  EXPECT_EQ(errorOf(vm(R"("machine": "microvm", "agent": true, )" + nic + ", " + disks(6))), "<accepted>");
  EXPECT_EQ(errorOf(vm(R"("machine": "microvm", )" + disks(8))), "<accepted>");
  EXPECT_EQ(errorOf(vm(R"("machine": "microvm", "agent": true, )" + nic + ", " + disks(7))),
            R"(machine: microvm has 8 virtio-mmio slots, this VM needs 9 (one per disk, per NIC and for the agent); use "machine": "pc")");
  EXPECT_EQ(errorOf(vm(R"("machine": "pc", "agent": true, )" + nic + ", " + disks(16))), "<accepted>");
}

TEST(WorkerArgvMachine, MicrovmGetsItsMachineAndMmioDevices) {
  Args argv = argvOf(vm(R"("machine": "microvm", "agent": true, "serial": true,
      "disks": [{"path": "/img/root.qcow2", "format": "qcow2", "cache": "none"},
                {"id": "seed", "path": "/img/seed.raw", "format": "raw", "readonly": true}],
      "nics": [{"ifname": "tap0", "mac": "52:54:00:00:00:01"}])"));
  EXPECT_EQ(optionValues(argv, "-machine"), (Args{"microvm,accel=kvm,rtc=on"}));
  EXPECT_EQ(optionValues(argv, "-kernel"), (Args{"/k"}));
  EXPECT_EQ(optionValues(argv, "-serial"), (Args{"chardev:console"}));  // microvm's ISA serial is on
  // QEMU's if=virtio is a PCI device: on microvm each disk is if=none plus its virtio-blk-device.
  EXPECT_EQ(optionValues(argv, "-drive"),
            (Args{"file=/img/root.qcow2,format=qcow2,if=none,readonly=off,cache=none,id=disk0",
                  "file=/img/seed.raw,format=raw,if=none,readonly=on,cache=writeback,id=seed"}));
  EXPECT_EQ(optionValues(argv, "-device"),
            (Args{"virtio-blk-device,drive=disk0", "virtio-blk-device,drive=seed",
                  "virtio-net-device,netdev=net0,mac=52:54:00:00:00:01", "virtio-serial-device",
                  "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0,id=agent0"}));
  for (const std::string& arg : argv) EXPECT_EQ(arg.find("-pci"), std::string::npos) << arg;
}

TEST(WorkerArgvMachine, PcKeepsPciDevices) {
  Args argv = argvOf(vm(R"("machine": "pc", "agent": true, "nics": [{"ifname": "tap0", "mac": "52:54:00:00:00:01"}], )" + disks(1)));
  EXPECT_EQ(optionValues(argv, "-machine"), (Args{"q35,accel=kvm"}));
  EXPECT_EQ(optionValues(argv, "-drive"), (Args{"file=/d/0.raw,format=raw,if=virtio,readonly=off,cache=writeback,id=disk0"}));
  EXPECT_EQ(optionValues(argv, "-device"),
            (Args{"virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01", "virtio-serial-pci",
                  "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0,id=agent0"}));
}

TEST(LibvirtXmlMachine, MicrovmImportsAndExports) {
  auto def = definitionFromDomainXml(
      "<domain type='kvm'><name>fast</name><memory unit='MiB'>64</memory>"
      "<os><type arch='x86_64' machine='microvm'>hvm</type><kernel>/k</kernel></os></domain>");
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_EQ(def->machine, MachineType::kMicrovm);
  auto xml = domainXmlFromDefinition(*def, ExportContext{"/usr/bin/vmm", std::nullopt});
  ASSERT_TRUE(xml.ok()) << xml.error().message();
  EXPECT_NE(xml->find("<type arch=\"x86_64\" machine=\"microvm\">hvm</type>"), std::string::npos) << *xml;
  auto again = definitionFromDomainXml(*xml);
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(*again, *def);
}

TEST(LibvirtXmlMachine, Q35AndAbsentArePc) {
  for (const char* type : {"<type arch='x86_64' machine='q35'>hvm</type>", "<type arch='x86_64' machine='pc-q35-7.2'>hvm</type>",
                           "<type>hvm</type>"}) {
    auto def = definitionFromDomainXml(std::string("<domain type='kvm'><name>p</name><memory unit='MiB'>64</memory><os>") +
                                       type + "<kernel>/k</kernel></os></domain>");
    ASSERT_TRUE(def.ok()) << type << ": " << def.error().message();
    EXPECT_EQ(def->machine, MachineType::kPc) << type;
  }
}

TEST(LibvirtXmlMachine, MicrovmWithFirmwareBootIsRefused) {
  auto def = definitionFromDomainXml(
      "<domain type='kvm'><name>fw</name><memory unit='MiB'>64</memory>"
      "<os><type arch='x86_64' machine='microvm'>hvm</type><boot dev='hd'/></os>"
      "<devices><disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/>"
      "<source file='/d/a.raw'/><target dev='vda' bus='virtio'/></disk></devices></domain>");
  ASSERT_FALSE(def.ok());
  EXPECT_NE(def.error().message().find("not on machine microvm"), std::string::npos) << def.error().message();
}

}  // namespace
}  // namespace vmmd::daemon
