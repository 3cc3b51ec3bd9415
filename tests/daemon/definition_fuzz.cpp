// libFuzzer target: any input to parseDefinition gets a value or an error, never a crash; and
// whatever it accepts survives the canonical round trip unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "daemon/definition/definition_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmmd::daemon;
  auto def = parseDefinition(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!def) return 0;
  std::string text = serializeDefinition(*def);
  auto again = parseDefinition(text);
  if (!again || !(*again == *def) || serializeDefinition(*again) != text) {
    std::fprintf(stderr, "round trip changed the definition: %s\n", text.c_str());
    std::abort();
  }
  return 0;
}
