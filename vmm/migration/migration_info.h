// What query-migrate reports (QEMU's MigrationInfo and MigrationStats, qapi/migration.json):
// the status, its error, times and RAM counters. One copy lives in the MigrationManager, updated
// by the migration thread under the manager's lock and read by QMP on the main loop.
#pragma once

#include <cstdint>
#include <string>

namespace vmmd::migration {

// QEMU's MigrationStatus values that vmm reaches.
enum class MigrationStatus { None, Setup, Cancelling, Cancelled, Active, Completed, Failed, Device };

inline const char* statusName(MigrationStatus status) {
  switch (status) {
    case MigrationStatus::None: return "none";
    case MigrationStatus::Setup: return "setup";
    case MigrationStatus::Cancelling: return "cancelling";
    case MigrationStatus::Cancelled: return "cancelled";
    case MigrationStatus::Active: return "active";
    case MigrationStatus::Completed: return "completed";
    case MigrationStatus::Failed: return "failed";
    case MigrationStatus::Device: return "device";
  }
  return "none";
}

inline bool isFinished(MigrationStatus status) {
  return status == MigrationStatus::None || status == MigrationStatus::Completed || status == MigrationStatus::Failed || status == MigrationStatus::Cancelled;
}

struct RamStats {
  uint64_t transferred = 0;   // bytes on the wire so far (all sections)
  uint64_t remaining = 0;     // bytes of dirty pages still to send
  uint64_t total = 0;         // guest RAM bytes
  uint64_t duplicate = 0;     // zero pages (sent as a count)
  uint64_t normal = 0;        // pages sent with their data
  uint64_t dirty_pages_rate = 0;  // pages the guest dirtied per second in the last pass
  double mbps = 0;            // throughput of the last pass, megabits/s
  uint64_t dirty_sync_count = 0;  // dirty-bitmap syncs (passes after the first)
  uint64_t pages_per_second = 0;
  uint64_t precopy_bytes = 0;   // sent while the guest ran
  uint64_t downtime_bytes = 0;  // sent while it was stopped
};

struct MigrationInfo {
  MigrationStatus status = MigrationStatus::None;
  bool outgoing = true;   // false on a destination (-incoming)
  std::string error;      // error-desc, when failed
  uint64_t setup_ms = 0;
  uint64_t total_ms = 0;  // so far, or of the whole migration once finished
  uint64_t downtime_ms = 0;           // once completed
  uint64_t expected_downtime_ms = 0;  // while active
  RamStats ram;
};

}  // namespace vmmd::migration
