// The unprivileged identities workers run as: one uid (and the gid of the same number) per running
// VM, from a range that vmmd owns (--worker-ids BASE:COUNT). Each worker is then a different user:
// one that escapes its device model can neither signal, ptrace nor read another VM's worker, and
// owns nothing on the host (its files come as fds, worker_files.h).
//
// The default range, 0x70000000 (1879048192) + 65536, lies above the ranges systemd hands out
// (system, regular and dynamic users below 65536; systemd-nspawn's container ranges up to
// 1879048191) and below 2^31, which some tools read as negative. A uid that has a passwd entry
// is skipped. The allocator keeps no state on disk: a restarted vmmd learns a re-attached worker's
// uid from /proc/PID/status (reserve()).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "base/result.h"

namespace vmmd::daemon {

struct WorkerIdRange {
  uint32_t base = 0x70000000;
  uint32_t count = 65536;

  bool operator==(const WorkerIdRange&) const = default;
};

// "BASE:COUNT" (decimal or 0x hex); errors name --worker-ids. Refuses uid 0 and ranges that wrap
// or reach 2^31.
Result<WorkerIdRange> parseWorkerIdRange(std::string_view text);

class WorkerIdAllocator;

// One worker's uid/gid while its VM is supervised; gives the id back when destroyed.
class WorkerIdLease {
 public:
  WorkerIdLease() = default;
  WorkerIdLease(WorkerIdAllocator* owner, uint32_t id) : owner_(owner), id_(id) {}
  ~WorkerIdLease() { release(); }
  WorkerIdLease(WorkerIdLease&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)), id_(other.id_) {}
  WorkerIdLease& operator=(WorkerIdLease&& other) noexcept {
    if (this != &other) {
      release();
      owner_ = std::exchange(other.owner_, nullptr);
      id_ = other.id_;
    }
    return *this;
  }
  WorkerIdLease(const WorkerIdLease&) = delete;
  WorkerIdLease& operator=(const WorkerIdLease&) = delete;

  bool held() const { return owner_ != nullptr; }
  uid_t uid() const { return id_; }
  gid_t gid() const { return id_; }
  void release();

 private:
  WorkerIdAllocator* owner_ = nullptr;
  uint32_t id_ = 0;
};

class WorkerIdAllocator {
 public:
  // Whether an id belongs to a host account (getpwuid/getgrgid); replaceable for tests.
  using InUseByHost = std::function<bool(uint32_t id)>;

  explicit WorkerIdAllocator(WorkerIdRange range, InUseByHost in_use_by_host = hostHasId);

  // The lowest free id of the range; an error when every one is taken.
  Result<WorkerIdLease> acquire();
  // A re-attached worker's id (from /proc): taken as is, even outside the range (the range
  // may have changed across the restart), so that no new worker gets it too. Fails when held.
  Result<WorkerIdLease> reserve(uint32_t id);
  bool inUse(uint32_t id) const { return taken_.contains(id); }
  const WorkerIdRange& range() const { return range_; }

  static bool hostHasId(uint32_t id);

 private:
  friend class WorkerIdLease;
  void give_back(uint32_t id) { taken_.erase(id); }

  WorkerIdRange range_;
  InUseByHost in_use_by_host_;
  std::set<uint32_t> taken_;
};

}  // namespace vmmd::daemon
