// Malformed and hostile domain XML: refused quickly with a message, never expanded or fetched.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "daemon/definition/libvirt_xml.h"

namespace vmmd::daemon {
namespace {

std::string errorOf(const std::string& xml) {
  auto def = definitionFromDomainXml(xml);
  return def.ok() ? "<accepted>" : def.error().message();
}

TEST(LibvirtXmlHostile, MalformedXmlNamesLineAndColumn) {
  EXPECT_EQ(errorOf("<domain type='kvm'>\n  <name>x</nam>\n</domain>"),
            "domain XML: line 2, column 16: Opening and ending tag mismatch: name line 2 and nam");
  EXPECT_EQ(errorOf(""), "domain XML: line 1, column 1: Document is empty");
  EXPECT_NE(errorOf("<domain type='kvm'><name>\xff\xfe</name></domain>").find("domain XML: line 1"), std::string::npos);
}

TEST(LibvirtXmlHostile, BillionLaughsIsRefusedBeforeAnyExpansion) {
  std::string xml = "<?xml version='1.0'?>\n<!DOCTYPE domain [\n  <!ENTITY lol 'lol'>\n";
  std::string previous = "lol";
  for (int i = 1; i <= 9; ++i) {
    std::string name = "lol" + std::to_string(i);
    xml += "  <!ENTITY " + name + " '";
    for (int j = 0; j < 10; ++j) xml += "&" + previous + ";";
    xml += "'>\n";
    previous = name;
  }
  xml += "]>\n<domain type='kvm'><name>&lol9;</name></domain>";
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(errorOf(xml), "domain XML: a DOCTYPE is not allowed (a domain XML has none; its entities are not read)");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST(LibvirtXmlHostile, ExternalEntitiesAndDtdsAreNeverLoaded) {
  const std::string refused = "domain XML: a DOCTYPE is not allowed (a domain XML has none; its entities are not read)";
  EXPECT_EQ(errorOf("<!DOCTYPE domain [<!ENTITY pw SYSTEM 'file:///etc/passwd'>]>\n"
                    "<domain type='kvm'><name>&pw;</name></domain>"),
            refused);
  EXPECT_EQ(errorOf("<!DOCTYPE domain SYSTEM 'http://127.0.0.1:1/domain.dtd'><domain type='kvm'/>"), refused);
  EXPECT_EQ(errorOf("<!DOCTYPE domain [<!ENTITY % p SYSTEM 'file:///etc/passwd'> %p;]><domain type='kvm'/>"), refused);
  // Without a DOCTYPE an entity reference is simply undeclared.
  EXPECT_NE(errorOf("<domain type='kvm'><name>&pw;</name></domain>").find("Entity 'pw' not defined"), std::string::npos);
}

TEST(LibvirtXmlHostile, XIncludeIsNotProcessed) {
  EXPECT_EQ(errorOf("<domain type='kvm' xmlns:xi='http://www.w3.org/2001/XInclude'><name>x</name>"
                    "<memory unit='MiB'>64</memory><os><type>hvm</type><kernel>/k</kernel></os>"
                    "<devices><xi:include href='/etc/passwd' parse='text'/></devices></domain>"),
            "/domain/devices/xi:include: not supported by vmm");
}

TEST(LibvirtXmlHostile, HugeInputIsRefusedBySize) {
  std::string xml = "<domain type='kvm'><name>" + std::string(1024 * 1024, 'a') + "</name></domain>";
  EXPECT_EQ(errorOf(xml), "domain XML: larger than 1024 KiB");
}

TEST(LibvirtXmlHostile, DeepNestingHitsTheParsersDepthLimit) {
  std::string xml = "<domain type='kvm'>";
  for (int i = 0; i < 5000; ++i) xml += "<a>";
  for (int i = 0; i < 5000; ++i) xml += "</a>";
  xml += "</domain>";
  std::string error = errorOf(xml);
  EXPECT_EQ(error.rfind("domain XML: line 1, column ", 0), 0u) << error;
}

}  // namespace
}  // namespace vmmd::daemon
