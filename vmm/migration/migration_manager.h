// The worker's migration state, as QEMU's QMP shows it: capabilities, parameters, the one
// outgoing or incoming migration and its MigrationInfo. QMP handlers call it on the main loop;
// the migration itself runs on a thread of its own (OutgoingMigration / IncomingMigration) that
// reports through it. Status changes become MIGRATION events when the `events` capability is on.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/result.h"
#include "base/unique_fd.h"
#include "vmm/migration/byte_channel.h"
#include "vmm/migration/migration_host.h"
#include "vmm/migration/migration_info.h"

namespace vmmd::migration {

// QEMU 7.2's MigrationCapability names, in its order.
const std::vector<std::string>& capabilityNames();

struct Parameters {
  uint64_t downtime_limit_ms = 300;     // QEMU's default
  uint64_t max_bandwidth = 128u << 20;  // bytes/s; QEMU's default (MAX_THROTTLE)
};

class MigrationManager {
 public:
  explicit MigrationManager(MigrationHost& host) : host_(host) {}
  ~MigrationManager();

  // QMP migrate: refused while one runs or for a bad URI; otherwise starts the thread.
  Status startOutgoing(const std::string& uri);
  // -incoming URI at start, or migrate-incoming after -incoming defer.
  Status startIncoming(const std::string& uri);
  void cancel();
  // The worker exits: stops whichever migration runs and joins its thread.
  void shutdown();

  MigrationInfo info() const;
  bool active() const;

  // Capabilities: `events` and `mapped-ram` change what vmm does; the others it does not
  // implement, so enabling one is refused naming it.
  bool capability(const std::string& name) const;
  // Why `name` cannot be set to `on` now (an unknown name, a migration running, unsupported).
  Status checkCapability(const std::string& name, bool on) const;
  Status setCapability(const std::string& name, bool on);
  Parameters parameters() const;
  Status setDowntimeLimit(uint64_t ms);
  Status setMaxBandwidth(uint64_t bytes_per_second);

  // getfd / closefd: descriptors QMP clients pass for fd: URIs.
  void addFd(const std::string& name, UniqueFd fd);
  bool closeFd(const std::string& name);

  // For the migration threads.
  MigrationHost& host() { return host_; }
  void setStatus(MigrationStatus status, const std::string& error = "");
  template <typename Update>
  void update(Update&& change) {
    std::lock_guard lock(mutex_);
    change(info_);
  }
  const std::atomic<bool>& cancelled() const { return cancel_; }
  RateLimiter& limiter() { return limiter_; }
  std::atomic<uint64_t>& wireBytes() { return wire_bytes_; }
  uint64_t downtimeLimitMs() const { return downtime_limit_ms_.load(); }
  std::optional<UniqueFd> takeFd(const std::string& name);

 private:
  void joinFinished();
  // A fresh MigrationInfo in status setup.
  void begin(bool outgoing);

  MigrationHost& host_;
  mutable std::mutex mutex_;
  MigrationInfo info_;
  std::chrono::steady_clock::time_point started_;
  std::map<std::string, bool> capabilities_;
  std::atomic<uint64_t> downtime_limit_ms_{Parameters{}.downtime_limit_ms};
  std::atomic<uint64_t> max_bandwidth_{Parameters{}.max_bandwidth};
  RateLimiter limiter_;
  std::atomic<uint64_t> wire_bytes_{0};  // of the outgoing stream, as they leave
  std::atomic<bool> cancel_{false};
  std::thread thread_;
  bool incoming_started_ = false;
  std::map<std::string, UniqueFd> fds_;  // guarded by mutex_ (the thread takes from it)
};

}  // namespace vmmd::migration
