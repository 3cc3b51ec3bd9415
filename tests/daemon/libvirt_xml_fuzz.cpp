// libFuzzer target: any input to definitionFromDomainXml gets a value or an error, never a crash
// or a hang; whatever it accepts exports, and that export imports back to the same definition.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "daemon/definition/definition_json.h"
#include "daemon/definition/libvirt_xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmmd::daemon;
  auto def = definitionFromDomainXml(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!def) return 0;
  auto xml = domainXmlFromDefinition(*def, ExportContext{"/usr/bin/vmm", std::nullopt});
  if (!xml) return 0;  // text XML cannot carry came in as character references: refused, not broken
  auto again = definitionFromDomainXml(*xml);
  if (!again || !(*again == *def)) {
    std::fprintf(stderr, "round trip changed the definition: %s\n%s\n", serializeDefinition(*def).c_str(),
                 again ? serializeDefinition(*again).c_str() : again.error().message().c_str());
    std::abort();
  }
  return 0;
}
