// Golden refusals: every libvirt_xml/refusals/NAME.xml is refused with exactly the message in
// NAME.err, which names the element or attribute at fault.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "daemon/definition/libvirt_xml.h"

namespace vmmd::daemon {
namespace {

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string firstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

TEST(LibvirtXmlRefusal, EveryGoldenDocumentIsRefusedNamingTheElement) {
  const std::filesystem::path dir = std::filesystem::path(VMMD_LIBVIRT_XML_DATA) / "refusals";
  size_t checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".xml") continue;
    std::filesystem::path expected = entry.path();
    expected.replace_extension(".err");
    ASSERT_TRUE(std::filesystem::exists(expected)) << expected;
    auto def = definitionFromDomainXml(readFile(entry.path()));
    ASSERT_FALSE(def.ok()) << entry.path() << " was accepted";
    EXPECT_EQ(def.error().message(), firstLine(readFile(expected))) << entry.path();
    EXPECT_EQ(def.error().message().rfind('/', 0), 0u) << "no path in: " << def.error().message();
    ++checked;
  }
  EXPECT_GE(checked, 40u);
}

// The documents differ from an accepted one only in what they are refused for.
TEST(LibvirtXmlRefusal, TheirCommonBaseIsAccepted) {
  auto def = definitionFromDomainXml(R"(<domain type='kvm'>
  <name>refused</name>
  <memory unit='MiB'>64</memory>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>/boot/vmlinuz</kernel>
  </os>
  <devices>
    <serial type='pty'/>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/d/a.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='ethernet'>
      <target dev='tap0' managed='no'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>)");
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_EQ(def->name, "refused");
  EXPECT_TRUE(def->serial);
  ASSERT_EQ(def->disks.size(), 1u);
  ASSERT_EQ(def->nics.size(), 1u);
}

}  // namespace
}  // namespace vmmd::daemon
