// The domain XML mapping both ways: the exported document of a full definition (golden), each
// field on import, what libvirt adds being ignored, and import(export(d)) == d for every shape.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/definition/definition_json.h"
#include "daemon/definition/libvirt_xml.h"

namespace vmmd::daemon {
namespace {

const std::filesystem::path kData = VMMD_LIBVIRT_XML_DATA;

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A domain with `devices` and `extra` (elements after <os>) around the required minimum.
std::string domain(const std::string& devices, const std::string& extra = "",
                   const std::string& memory = "<memory unit='MiB'>64</memory>") {
  return "<domain type='kvm'><name>m</name>" + memory +
         "<os><type>hvm</type><kernel>/boot/vmlinuz</kernel></os>" + extra + "<devices>" + devices +
         "</devices></domain>";
}

VmDefinition imported(const std::string& xml) {
  auto def = definitionFromDomainXml(xml);
  EXPECT_TRUE(def.ok()) << def.error().message() << "\n" << xml;
  return def.ok() ? *def : VmDefinition{};
}

TEST(LibvirtXmlMapping, ExportOfAFullDefinitionIsTheGoldenDocument) {
  auto def = parseDefinition(readFile(kData / "export" / "full.json"));
  ASSERT_TRUE(def.ok()) << def.error().message();
  auto xml = domainXmlFromDefinition(*def, ExportContext{"/usr/libexec/vmmd/vmm", "/run/vmmd/vms/db.prod_1/qga.sock"});
  ASSERT_TRUE(xml.ok()) << xml.error().message();
  EXPECT_EQ(*xml, readFile(kData / "export" / "full.xml"));
  auto again = definitionFromDomainXml(*xml);
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(*again, *def);
}

TEST(LibvirtXmlMapping, EveryShapeSurvivesExportAndImport) {
  size_t shapes = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kData / "shapes")) {
    auto def = parseDefinition(readFile(entry.path()));
    ASSERT_TRUE(def.ok()) << entry.path() << ": " << def.error().message();
    auto xml = domainXmlFromDefinition(*def, ExportContext{"/usr/bin/vmm", std::nullopt});
    ASSERT_TRUE(xml.ok()) << xml.error().message();
    auto again = definitionFromDomainXml(*xml);
    ASSERT_TRUE(again.ok()) << entry.path() << ": " << again.error().message();
    EXPECT_EQ(serializeDefinition(*again), serializeDefinition(*def)) << entry.path();
    ++shapes;
  }
  EXPECT_GE(shapes, 10u);
}

TEST(LibvirtXmlMapping, LibvirtWrittenDocumentsImport) {
  for (const char* name : {"virt_install", "qemu_dumpxml"}) {
    auto def = definitionFromDomainXml(readFile(kData / "imports" / (std::string(name) + ".xml")));
    ASSERT_TRUE(def.ok()) << name << ": " << def.error().message();
    EXPECT_EQ(serializeDefinition(*def) + "\n", readFile(kData / "imports" / (std::string(name) + ".json"))) << name;
  }
}

TEST(LibvirtXmlMapping, MemoryTakesEveryLibvirtUnitThatComesToWholeMiB) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "65536"},          {"b", "67108864"},  {"bytes", "67108864"}, {"k", "65536"},
      {"KiB", "65536"},       {"kib", "65536"},   {"M", "64"},           {"MiB", "64"},
      {"MB", "67.108864"},    {"KB", "64000"}, {"G", "1"},            {"GiB", "1"}};
  for (auto [unit, count] : cases) {
    std::string attr = *unit ? std::string(" unit='") + unit + "'" : "";
    auto def = definitionFromDomainXml(domain("", "", "<memory" + attr + ">" + count + "</memory>"));
    if (std::string(unit) == "MB" || std::string(unit) == "KB") {
      ASSERT_FALSE(def.ok()) << unit;  // "67.108864" is no whole number; 64000 KB is 61.04 MiB
      continue;
    }
    ASSERT_TRUE(def.ok()) << unit << ": " << def.error().message();
    EXPECT_EQ(def->memory_mib, std::string(unit).rfind('G', 0) == 0 ? 1024u : 64u) << unit;
  }
  EXPECT_EQ(imported(domain("", "", "<memory unit='MB'>1048576</memory>")).memory_mib, 1000000u);
  EXPECT_EQ(imported(domain("", "", "<memory unit='TiB'>1</memory>")).memory_mib, 1024u * 1024u);
  EXPECT_FALSE(definitionFromDomainXml(domain("", "", "<memory unit='EiB'>20</memory>")).ok());  // overflow
  EXPECT_FALSE(definitionFromDomainXml(domain("", "", "<memory unit='parsec'>1</memory>")).ok());
}

TEST(LibvirtXmlMapping, MachineFields) {
  VmDefinition def = imported(
      "<domain type='kvm' id='7'><name>box</name><uuid>3F2504E0-4F89-41D3-9A0C-0305E82C3301</uuid>"
      "<memory unit='GiB'>2</memory><currentMemory unit='MiB'>2048</currentMemory>"
      "<vcpu placement='static' current='3'>3</vcpu>"
      "<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><kernel>/k</kernel><initrd>/i</initrd>"
      "<cmdline>console=ttyS0 a=&lt;b&gt;</cmdline><boot dev='hd'/></os>"
      "<on_poweroff>restart</on_poweroff><on_reboot>restart</on_reboot><on_crash>preserve</on_crash></domain>");
  EXPECT_EQ(def.name, "box");
  EXPECT_EQ(def.uuid, "3f2504e0-4f89-41d3-9a0c-0305e82c3301");
  EXPECT_EQ(def.memory_mib, 2048u);
  EXPECT_EQ(def.vcpus, 3u);
  EXPECT_EQ(def.kernel, "/k");
  EXPECT_EQ(def.initrd, "/i");
  EXPECT_EQ(def.cmdline, "console=ttyS0 a=<b>");
  EXPECT_EQ(def.on_poweroff, PoweroffPolicy::kRestart);
  EXPECT_EQ(def.on_crash, CrashPolicy::kPreserve);
  EXPECT_FALSE(def.serial);  // no <devices>: no serial port, no agent
  EXPECT_FALSE(def.agent);
}

TEST(LibvirtXmlMapping, DisksWithFormatCacheReadonlyAndIdsFromMetadata) {
  VmDefinition def = imported(domain(
      "<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/>"
      "<source file='/v/root.qcow2'/><target dev='vda' bus='virtio'/></disk>"
      "<disk type='file'><driver type='raw' cache='unsafe'/><source file='/v/seed.img'/>"
      "<target dev='vdb'/><readonly/></disk>",
      "<metadata><v:settings xmlns:v='urn:x-vmmd:domain:1'><v:disk target='vdb' id='seed'/></v:settings>"
      "<other:thing xmlns:other='http://example.org/other'/></metadata>"));
  ASSERT_EQ(def.disks.size(), 2u);
  EXPECT_EQ(def.disks[0], (DiskSpec{"disk0", "/v/root.qcow2", DiskFormat::kQcow2, false, DiskCache::kNone}));
  EXPECT_EQ(def.disks[1], (DiskSpec{"seed", "/v/seed.img", DiskFormat::kRaw, true, DiskCache::kUnsafe}));
}

// Without <kernel>: firmware boot. <boot dev='hd'/> alone tries every disk in order; the disks'
// <boot order> choose and order them (ids from the metadata or the defaults); <loader> is -bios.
TEST(LibvirtXmlMapping, FirmwareBootFromTheDisks) {
  const std::string disks =
      "<devices><disk type='file'><driver type='raw'/><source file='/v/data.img'/><target dev='vda'/>%A</disk>"
      "<disk type='file'><driver type='qcow2'/><source file='/v/deb.qcow2'/><target dev='vdb'/>%B</disk></devices>";
  auto document = [&](const std::string& os, const std::string& a, const std::string& b) {
    std::string devices = disks;
    devices.replace(devices.find("%A"), 2, a);
    devices.replace(devices.find("%B"), 2, b);
    return "<domain type='kvm'><name>fw</name><memory unit='MiB'>512</memory><os><type>hvm</type>" + os +
           "</os>" + devices + "</domain>";
  };
  VmDefinition every = imported(document("<boot dev='hd'/>", "", ""));
  EXPECT_FALSE(every.kernel);
  ASSERT_TRUE(every.boot);
  EXPECT_EQ(every.boot->order, (std::vector<std::string>{"disk0", "disk1"}));
  EXPECT_FALSE(every.boot->loader);
  VmDefinition ordered = imported(document("<loader readonly='yes' type='rom'>/fw/bios.bin</loader>",
                                           "<boot order='2'/>", "<boot order='1'/>"));
  ASSERT_TRUE(ordered.boot);
  EXPECT_EQ(ordered.boot->order, (std::vector<std::string>{"disk1", "disk0"}));
  EXPECT_EQ(ordered.boot->loader, "/fw/bios.bin");
  auto xml = domainXmlFromDefinition(ordered, ExportContext{"/usr/bin/vmm", std::nullopt});
  ASSERT_TRUE(xml.ok()) << xml.error().message();
  EXPECT_NE(xml->find("<loader readonly=\"yes\" type=\"rom\">/fw/bios.bin</loader>"), std::string::npos) << *xml;
  EXPECT_EQ(xml->find("<kernel>"), std::string::npos) << *xml;
  EXPECT_NE(xml->find("<boot order=\"1\"/>"), std::string::npos) << *xml;
}

TEST(LibvirtXmlMapping, NicsSerialAndAgent) {
  VmDefinition def = imported(domain(
      "<interface type='ethernet'><mac address='52:54:00:AB:CD:EF'/><target dev='tap3'/>"
      "<model type='virtio'/></interface>"
      "<console type='pty'><target type='serial' port='0'/></console>"
      "<channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"));
  ASSERT_EQ(def.nics.size(), 1u);
  EXPECT_EQ(def.nics[0], (NicSpec{"tap3", "52:54:00:ab:cd:ef", ""}));
  EXPECT_TRUE(def.serial);  // a console alone is COM1 too
  EXPECT_TRUE(def.agent);
  VmDefinition generated = imported(domain("<interface type='ethernet'><target dev='tap0'/><model type='virtio'/></interface>"));
  EXPECT_EQ(generated.nics[0].mac.substr(0, 9), "52:54:00:");
}

TEST(LibvirtXmlMapping, NicOnANetwork) {
  VmDefinition def = imported(domain(
      "<interface type='network'><mac address='52:54:00:AB:CD:01'/><source network='default'/>"
      "<model type='virtio'/></interface>"));
  ASSERT_EQ(def.nics.size(), 1u);
  EXPECT_EQ(def.nics[0], (NicSpec{"", "52:54:00:ab:cd:01", "default"}));
  // What libvirt's dumpxml of a running domain adds: the tap it made, the bridge, a port id.
  VmDefinition running = imported(domain(
      "<interface type='network'><mac address='52:54:00:ab:cd:01'/>"
      "<source network='default' portid='1a2b3c4d-0000-4000-8000-000000000001' bridge='virbr0'/>"
      "<target dev='vnet3'/><model type='virtio'/><alias name='net0'/>"
      "<address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></interface>"));
  EXPECT_EQ(running.nics, def.nics);
  auto xml = domainXmlFromDefinition(def, ExportContext{"/usr/bin/vmm", std::nullopt});
  ASSERT_TRUE(xml.ok()) << xml.error().message();
  EXPECT_NE(xml->find("<interface type=\"network\">\n      <mac address=\"52:54:00:ab:cd:01\"/>\n"
                      "      <source network=\"default\"/>\n      <model type=\"virtio\"/>"),
            std::string::npos)
      << *xml;
  auto no_name = definitionFromDomainXml(domain("<interface type='network'><source/><model type='virtio'/></interface>"));
  ASSERT_FALSE(no_name.ok());
  EXPECT_EQ(no_name.error().message(), "/domain/devices/interface/source/@network: required");
}

TEST(LibvirtXmlMapping, VmmdSettingsFromMetadata) {
  VmDefinition def = imported(domain(
      "", "<metadata><vmmd:settings xmlns:vmmd='urn:x-vmmd:domain:1'><vmmd:autostart>yes</vmmd:autostart>"
          "<vmmd:restart-backoff initial-ms='250' max-ms='8000' max-attempts='0' reset-after-s='60'/>"
          "</vmmd:settings></metadata>"));
  EXPECT_TRUE(def.autostart);
  EXPECT_EQ(def.restart_backoff, (RestartBackoff{250, 8000, 0, 60}));
  EXPECT_FALSE(def.limits);
  VmDefinition limited = imported(domain(
      "", "<metadata><vmmd:settings xmlns:vmmd='urn:x-vmmd:domain:1'>"
          "<vmmd:limits cpu-percent='50' memory-overhead-mib='32'/></vmmd:settings></metadata>"));
  EXPECT_EQ(limited.limits, (ResourceLimits{50, 32}));
  auto bad = definitionFromDomainXml(domain(
      "", "<metadata><vmmd:settings xmlns:vmmd='urn:x-vmmd:domain:1'>"
          "<vmmd:limits cpu-percent='0'/></vmmd:settings></metadata>"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("cpu-percent"), std::string::npos) << bad.error().message();
  // Absent settings are the JSON defaults.
  VmDefinition plain = imported(domain(""));
  EXPECT_FALSE(plain.autostart);
  EXPECT_EQ(plain.restart_backoff, RestartBackoff{});
}

TEST(LibvirtXmlMapping, ExportRefusesTextXmlCannotCarry) {
  auto def = parseDefinition(R"({"schema": 1, "name": "c", "memory": 64, "kernel": "/k", "cmdline": "a\u0001b"})");
  ASSERT_TRUE(def.ok()) << def.error().message();
  auto xml = domainXmlFromDefinition(*def, ExportContext{"/usr/bin/vmm", std::nullopt});
  ASSERT_FALSE(xml.ok());
  EXPECT_EQ(xml.error().message(), "domain XML: cmdline: holds control character 1, which XML cannot carry");
}

TEST(LibvirtXmlMapping, ExportNeedsAbsolutePathsInItsContext) {
  auto def = parseDefinition(R"({"schema": 1, "name": "c", "memory": 64, "kernel": "/k", "agent": true})");
  ASSERT_TRUE(def.ok()) << def.error().message();
  auto relative = domainXmlFromDefinition(*def, ExportContext{"vmm", std::nullopt});
  ASSERT_FALSE(relative.ok());
  EXPECT_EQ(relative.error().message(), "domain XML: emulator: 'vmm' is not an absolute path");
  auto socket = domainXmlFromDefinition(*def, ExportContext{"/usr/bin/vmm", "qga.sock"});
  ASSERT_FALSE(socket.ok());
  EXPECT_EQ(socket.error().message(), "domain XML: agent socket: 'qga.sock' is not an absolute path");
}

}  // namespace
}  // namespace vmmd::daemon
