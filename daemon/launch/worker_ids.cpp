#include "daemon/launch/worker_ids.h"

#include <grp.h>
#include <pwd.h>

#include <string>

#include "base/parse.h"

namespace vmmd::daemon {

Result<WorkerIdRange> parseWorkerIdRange(std::string_view text) {
  auto colon = text.find(':');
  auto bad = [&](const std::string& why) { return Error("--worker-ids: '" + std::string(text) + "': " + why); };
  if (colon == std::string_view::npos) return bad("expected BASE:COUNT");
  auto base = parseUnsigned(text.substr(0, colon));
  auto count = parseUnsigned(text.substr(colon + 1));
  if (!base || !count) return bad("BASE and COUNT must be numbers");
  if (*base == 0) return bad("uid 0 is root, not an unprivileged id");
  if (*count == 0) return bad("COUNT must be at least 1");
  if (*base + *count > (1ull << 31)) return bad("the range must end below 2^31");
  return WorkerIdRange{static_cast<uint32_t>(*base), static_cast<uint32_t>(*count)};
}

void WorkerIdLease::release() {
  if (owner_) std::exchange(owner_, nullptr)->give_back(id_);
}

WorkerIdAllocator::WorkerIdAllocator(WorkerIdRange range, InUseByHost in_use_by_host)
    : range_(range), in_use_by_host_(std::move(in_use_by_host)) {}

bool WorkerIdAllocator::hostHasId(uint32_t id) {
  return ::getpwuid(static_cast<uid_t>(id)) != nullptr || ::getgrgid(static_cast<gid_t>(id)) != nullptr;
}

Result<WorkerIdLease> WorkerIdAllocator::acquire() {
  for (uint64_t id = range_.base; id < uint64_t{range_.base} + range_.count; ++id) {
    auto candidate = static_cast<uint32_t>(id);
    if (taken_.contains(candidate) || in_use_by_host_(candidate)) continue;
    taken_.insert(candidate);
    return WorkerIdLease(this, candidate);
  }
  return Error("no free worker uid in " + std::to_string(range_.base) + ":" + std::to_string(range_.count) +
               " (--worker-ids): " + std::to_string(taken_.size()) + " workers hold one");
}

Result<WorkerIdLease> WorkerIdAllocator::reserve(uint32_t id) {
  if (!taken_.insert(id).second) return Error("worker uid " + std::to_string(id) + " is held by another VM's worker");
  return WorkerIdLease(this, id);
}

}  // namespace vmmd::daemon
