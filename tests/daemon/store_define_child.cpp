// Helper for store_durability_test: defines COUNT VMs ("vm0", "vm1"...) in the store at PATH and
// writes each name to stdout only after its transaction committed, i.e. when vmmd would have
// acknowledged it. The test kills this process with SIGKILL at a random point.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "daemon/definition/definition_json.h"
#include "daemon/store/store.h"

int main(int argc, char** argv) {
  using namespace vmmd::daemon;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PATH COUNT\n", argv[0]);
    return 2;
  }
  auto store = Store::open(argv[1]);
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().message().c_str());
    return 1;
  }
  int count = std::atoi(argv[2]);
  for (int i = 0; i < count; ++i) {
    std::string name = "vm" + std::to_string(i);
    auto def = parseDefinition(R"({"schema": 1, "name": ")" + name +
                               R"(", "memory": 64, "kernel": "/boot/vmlinuz", "disks": [{"path": "/img/)" + name +
                               R"(.qcow2", "format": "qcow2"}]})");
    if (!def) {
      std::fprintf(stderr, "%s\n", def.error().message().c_str());
      return 1;
    }
    if (auto st = store->define(*def); !st) {
      std::fprintf(stderr, "define %s: %s\n", name.c_str(), st.error().message().c_str());
      return 1;
    }
    // One write(2) per acknowledgement, unbuffered, so the pipe holds exactly what was acknowledged.
    std::string line = name + "\n";
    if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return 1;
  }
  return 0;
}
