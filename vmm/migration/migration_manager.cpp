#include "vmm/migration/migration_manager.h"

#include <algorithm>

#include "vmm/migration/incoming.h"
#include "vmm/migration/outgoing.h"
#include "vmm/sandbox/sandbox.h"

namespace vmmd::migration {

const std::vector<std::string>& capabilityNames() {
  static const std::vector<std::string> names = {
      "xbzrle",        "rdma-pin-all",        "auto-converge",  "zero-blocks",       "compress",
      "events",        "postcopy-ram",        "x-colo",         "release-ram",       "block",
      "return-path",   "pause-before-switchover", "multifd",    "dirty-bitmaps",     "postcopy-blocktime",
      "late-block-activate", "x-ignore-shared", "validate-uuid", "background-snapshot", "zero-copy-send",
      "postcopy-preempt",
      // QEMU 9.0's: RAM at fixed offsets of a file: (or fd: file) stream, mapped on restore.
      "mapped-ram"};
  return names;
}

namespace {

// -sandbox on forbids making sockets and starting processes: only a descriptor the worker already
// has (fd:) can carry the stream.
Status allowedUnderSandbox(const MigrationUri& uri) {
  if (!sandbox::active() || uri.kind == MigrationUri::Kind::Fd) return {};
  const char* needs = uri.kind == MigrationUri::Kind::Exec   ? "exec: needs fork and execve"
                      : uri.kind == MigrationUri::Kind::File ? "file: needs open and rename"
                                                             : "unix: and tcp: need socket, connect, bind and listen";
  return Error(std::string("Migration over this URI is not possible with -sandbox on (") + needs +
               ", which the sandbox forbids): pass an open descriptor and use fd:NAME (QMP getfd) or an inherited fd:N");
}

}  // namespace

MigrationManager::~MigrationManager() { shutdown(); }

void MigrationManager::shutdown() {
  cancel_ = true;
  if (thread_.joinable()) thread_.join();
}

void MigrationManager::joinFinished() {
  if (thread_.joinable()) thread_.join();
}

void MigrationManager::begin(bool outgoing) {
  cancel_ = false;
  {
    std::lock_guard lock(mutex_);
    info_ = {};
    info_.outgoing = outgoing;
    started_ = std::chrono::steady_clock::now();
  }
  setStatus(MigrationStatus::Setup);
}

bool MigrationManager::active() const {
  std::lock_guard lock(mutex_);
  return !isFinished(info_.status);
}

Status MigrationManager::startOutgoing(const std::string& uri) {
  if (active()) return Error("There's a migration process in progress");
  auto parsed = parseMigrationUri(uri);
  if (!parsed) return parsed.error();
  if (auto st = allowedUnderSandbox(*parsed); !st) return st;
  if (capability("mapped-ram") && parsed->kind != MigrationUri::Kind::File && parsed->kind != MigrationUri::Kind::Fd) {
    return Error("Migration capability 'mapped-ram' needs a file: URI (or fd: naming a regular file)");
  }
  joinFinished();
  wire_bytes_ = 0;
  limiter_.setLimit(max_bandwidth_.load());
  begin(/*outgoing=*/true);
  thread_ = std::thread(runOutgoing, std::ref(*this), std::move(*parsed));
  return {};
}

Status MigrationManager::startIncoming(const std::string& uri) {
  if (incoming_started_) return Error("The incoming migration has already been started");
  auto parsed = parseMigrationUri(uri);
  if (!parsed) return parsed.error();
  if (auto st = allowedUnderSandbox(*parsed); !st) return st;
  auto endpoint = openIncoming(*parsed, [this](const std::string& name) { return takeFd(name); });
  if (!endpoint) return endpoint.error();
  incoming_started_ = true;
  begin(/*outgoing=*/false);
  thread_ = std::thread(runIncoming, std::ref(*this), std::move(*endpoint));
  return {};
}

void MigrationManager::cancel() {
  {
    std::lock_guard lock(mutex_);
    // QEMU's migrate_cancel acts on an outgoing migration only, and is a no-op when none runs.
    if (isFinished(info_.status) || !info_.outgoing || info_.status == MigrationStatus::Cancelling) return;
  }
  cancel_ = true;
  setStatus(MigrationStatus::Cancelling);
}

void MigrationManager::setStatus(MigrationStatus status, const std::string& error) {
  {
    std::lock_guard lock(mutex_);
    // A late report of the thread never overrides a cancel the user asked for.
    if (info_.status == MigrationStatus::Cancelling && status != MigrationStatus::Cancelled && status != MigrationStatus::Failed &&
        status != MigrationStatus::Completed) {
      return;
    }
    info_.status = status;
    if (!error.empty()) info_.error = error;
    if (isFinished(status)) {
      info_.total_ms = static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_).count());
      info_.expected_downtime_ms = 0;
    }
  }
  host_.runOnLoop([this, status] {
    if (!capability("events")) return;
    qmp::Json data = qmp::jsonObject();
    data.AddMember("status", rapidjson::StringRef(statusName(status)), data.GetAllocator());
    host_.migrationEvent("MIGRATION", data);
  });
}

MigrationInfo MigrationManager::info() const {
  std::lock_guard lock(mutex_);
  MigrationInfo copy = info_;
  if (copy.outgoing) copy.ram.transferred = std::max(copy.ram.transferred, wire_bytes_.load());
  if (!isFinished(copy.status)) {
    copy.total_ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_).count());
  }
  return copy;
}

bool MigrationManager::capability(const std::string& name) const {
  auto it = capabilities_.find(name);
  return it != capabilities_.end() && it->second;
}

Status MigrationManager::checkCapability(const std::string& name, bool on) const {
  const auto& names = capabilityNames();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    return Error("Parameter 'capability' does not accept value '" + name + "'");
  }
  if (active()) return Error("There's a migration process in progress");
  if (on && name != "events" && name != "mapped-ram") return Error("Migration capability '" + name + "' is not supported by vmm");
  return {};
}

Status MigrationManager::setCapability(const std::string& name, bool on) {
  if (auto st = checkCapability(name, on); !st) return st;
  capabilities_[name] = on;
  return {};
}

Parameters MigrationManager::parameters() const { return {downtime_limit_ms_.load(), max_bandwidth_.load()}; }

Status MigrationManager::setDowntimeLimit(uint64_t ms) {
  if (ms > 2000 * 1000) return Error("Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms");
  downtime_limit_ms_ = ms;
  return {};
}

Status MigrationManager::setMaxBandwidth(uint64_t bytes_per_second) {
  max_bandwidth_ = bytes_per_second;
  limiter_.setLimit(bytes_per_second);  // a running migration follows at once, as QEMU's
  return {};
}

void MigrationManager::addFd(const std::string& name, UniqueFd fd) {
  std::lock_guard lock(mutex_);
  fds_[name] = std::move(fd);
}

bool MigrationManager::closeFd(const std::string& name) {
  std::lock_guard lock(mutex_);
  return fds_.erase(name) > 0;
}

std::optional<UniqueFd> MigrationManager::takeFd(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto it = fds_.find(name);
  if (it == fds_.end()) return std::nullopt;
  UniqueFd fd = std::move(it->second);
  fds_.erase(it);
  return fd;
}

}  // namespace vmmd::migration
