// The device benchmark's pieces: each measures one row (the device path driven by the driver
// harness) together with its physical limit (the same I/O done directly) in the same run.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace vmmd::bench {

struct Figure {
  double operations_per_second = 0;
  double mib_per_second = 0;
  // Adds one round's figure to a mean over `rounds` rounds of equal length.
  void addRound(const Figure& round, unsigned rounds) {
    operations_per_second += round.operations_per_second / rounds;
    mib_per_second += round.mib_per_second / rounds;
  }
};

struct Row {
  std::string what;    // "blk raw none read 4k"
  std::string unit;    // "IOPS", "frames/s"
  Figure device;       // through the virtio device model
  Figure physical;     // the same I/O without it
  std::string error;   // set when the row could not be measured
};

struct Options {
  std::string directory = "/var/tmp";
  uint64_t disk_bytes = 256ull << 20;
  double seconds = 2.0;       // per figure, split over `rounds` alternating device/limit rounds
  unsigned rounds = 4;        // (so that load from elsewhere on the machine hits both alike)
  unsigned threads = 4;      // the I/O executor's threads (libuv's pool), and the baseline's
  unsigned queue_depth = 32;  // requests in flight on the virtqueue
  std::string filter;         // only rows whose name contains this
  bool device_only = false;   // skip the physical limits (for profiling the device path)
};

inline bool wanted(const Options& options, const std::string& row) {
  return options.filter.empty() || row.find(options.filter) != std::string::npos;
}

std::vector<Row> blockRows(const Options& options);
std::vector<Row> netRows(const Options& options);

// Seconds since `start`.
inline double since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace vmmd::bench
