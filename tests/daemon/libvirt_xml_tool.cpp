// Offline converter between vmmd's JSON definitions and libvirt's domain XML, for
// libvirt_xml_roundtrip.py (which hands the XML to libvirt's own tools):
//   libvirt_xml_tool canonical FILE.json          canonical JSON (generated uuid/MACs fixed)
//   libvirt_xml_tool export FILE.json EMULATOR [AGENT_SOCKET]   domain XML
//   libvirt_xml_tool import FILE.xml              canonical JSON of the imported definition
// Errors go to stderr with exit status 1; usage errors exit 2.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "daemon/definition/definition_json.h"
#include "daemon/definition/libvirt_xml.h"

namespace {

std::string readFile(const char* path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int fail(const std::string& message) {
  std::fprintf(stderr, "libvirt_xml_tool: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace vmmd::daemon;
  std::string command = argc > 2 ? argv[1] : "";
  if (!((command == "canonical" || command == "import") && argc == 3) && !(command == "export" && (argc == 4 || argc == 5))) {
    std::fprintf(stderr, "usage: libvirt_xml_tool canonical|import FILE | export FILE.json EMULATOR [AGENT_SOCKET]\n");
    return 2;
  }
  std::string text = readFile(argv[2]);
  if (command == "import") {
    auto def = definitionFromDomainXml(text);
    if (!def) return fail(def.error().message());
    std::cout << serializeDefinition(*def) << "\n";
    return 0;
  }
  auto def = parseDefinition(text);
  if (!def) return fail(def.error().message());
  if (command == "canonical") {
    std::cout << serializeDefinition(*def) << "\n";
    return 0;
  }
  auto xml = domainXmlFromDefinition(*def, ExportContext{argv[3], argc == 5 ? std::optional<std::string>(argv[4]) : std::nullopt});
  if (!xml) return fail(xml.error().message());
  std::cout << *xml;
  return 0;
}
