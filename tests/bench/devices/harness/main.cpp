// The virtio device benchmark (b): the driver harness pushes requests and frames through the
// device models and the table sets each figure beside the physical limit measured in the same
// run. See tests/bench/devices/README.md; run it with tests/bench/devices/harness/run.sh.
//
//   virtio_device_bench [--dir DIR] [--seconds S] [--disk-mib N] [--only blk|net] [--filter ROW-SUBSTRING] [--rounds N] [--device-only 1]
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <string>

#include "tests/bench/devices/harness/bench.h"

namespace {

void printRow(const vmmd::bench::Row& row) {
  if (!row.error.empty()) {
    std::printf("%-36s | %s\n", row.what.c_str(), ("ERROR: " + row.error).c_str());
    return;
  }
  double percent = row.physical.operations_per_second > 0
                       ? 100.0 * row.device.operations_per_second / row.physical.operations_per_second
                       : 0;
  std::printf("%-36s | %10.0f %-8s %8.1f MiB/s | %10.0f %-8s %8.1f MiB/s | %6.1f %%%s\n", row.what.c_str(),
              row.device.operations_per_second, row.unit.c_str(), row.device.mib_per_second,
              row.physical.operations_per_second, row.unit.c_str(), row.physical.mib_per_second, percent,
              percent < 90 ? "  < 90" : "");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  vmmd::bench::Options options;
  std::string only;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--dir") options.directory = value;
    else if (flag == "--seconds") options.seconds = std::atof(value.c_str());
    else if (flag == "--disk-mib") options.disk_bytes = std::strtoull(value.c_str(), nullptr, 10) << 20;
    else if (flag == "--only") only = value;
    else if (flag == "--filter") options.filter = value;
    else if (flag == "--rounds") options.rounds = std::max(1, std::atoi(value.c_str()));
    else if (flag == "--device-only") options.device_only = value == "1";
    else {
      std::fprintf(stderr, "usage: %s [--dir DIR] [--seconds S] [--disk-mib N] [--only blk|net] [--filter ROW-SUBSTRING] [--rounds N] [--device-only 1]\n", argv[0]);
      return 2;
    }
  }
  // libuv's pool serves the device's requests; the baseline uses as many threads.
  ::setenv("UV_THREADPOOL_SIZE", std::to_string(options.threads).c_str(), 1);
  std::printf("%-36s | %-36s | %-36s | device/limit\n", "row", "device path (driver harness)", "physical limit (same I/O, no device)");
  std::printf("%s\n", std::string(130, '-').c_str());
  bool ok = true;
  // The network rows first: they move the process into a private network namespace before any
  // thread exists.
  if (only.empty() || only == "net") {
    for (const auto& row : vmmd::bench::netRows(options)) {
      printRow(row);
      ok = ok && row.error.empty();
    }
  }
  if (only.empty() || only == "blk") {
    for (const auto& row : vmmd::bench::blockRows(options)) {
      printRow(row);
      ok = ok && row.error.empty();
    }
  }
  std::printf("(queue depth %u, %u I/O threads, %.1f s per figure in %u alternating rounds, disk %llu MiB in %s)\n",
              options.queue_depth, options.threads, options.seconds, options.rounds, static_cast<unsigned long long>(options.disk_bytes >> 20),
              options.directory.c_str());
  return ok ? 0 : 1;
}
