// libFuzzer target: arbitrary bytes through the stream reader and the session dispatcher of a
// small registry (typed arguments, deferred and oob commands). Splits the input at a few points
// so that framing across reads is exercised too.
#include <cstddef>
#include <cstdint>

#include "qmp/session.h"
#include "test_registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmmd::qmp;
  static testing::TestRegistry* t = [] {
    static testing::TestRegistry registry;
    return &registry;
  }();
  size_t out = 0;
  SessionOptions options{testing::kVersion};
  options.maxMessageBytes = 1 << 16;
  auto session = Session::create(t->registry, options, [&](std::string_view m) { out += m.size(); });
  session->start();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t step = size > 0 ? 1 + data[0] % 17 : 1;
  while (!input.empty()) {
    size_t n = std::min(step, input.size());
    session->feed(input.substr(0, n));
    input.remove_prefix(n);
    if (!t->deferred.empty() && input.size() % 3 == 0) t->deferred.clear();  // complete some later
  }
  session->close();
  t->deferred.clear();
  return 0;
}
