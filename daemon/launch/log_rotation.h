// worker.log capped in size. The worker holds the file open (O_APPEND) for its whole life and
// outlives vmmd, so it cannot be renamed away from under it: vmmd copies it to worker.log.1 and
// truncates it in place (logrotate's copytruncate). O_APPEND makes the worker's next write land at
// the new end. A line written between the copy and the truncation is lost; the cap holds.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"

namespace vmmd::daemon {

inline constexpr uint64_t kWorkerLogLimit = 1024 * 1024;

// When `path` is larger than `limit` bytes: its content replaces `path`.1 and `path` is emptied.
// Returns whether it rotated.
Result<bool> rotateLogIfOver(const std::string& path, uint64_t limit);

}  // namespace vmmd::daemon
