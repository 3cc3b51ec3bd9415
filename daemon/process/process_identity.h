// A pid alone does not identify a process across a daemon restart: the worker may have died and
// its pid been reused. The pair (pid, start time) does: the kernel's start time (field 22 of
// /proc/PID/stat, in clock ticks since boot) never repeats for a pid within one boot.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vmmd::daemon {

// Field 22 (starttime) of /proc/PID/stat. ENOENT in the error code when the process is gone.
Result<uint64_t> processStartTime(pid_t pid);

// Field 22 from the text of a /proc/PID/stat file. The command name (field 2) is in parentheses
// and may itself contain spaces and ')', so fields are counted after the last ')'.
Result<uint64_t> parseStartTime(std::string_view stat_text);

// True when `pid` is alive and started at `start_time`, i.e. it is still the process we recorded.
bool isSameProcess(pid_t pid, uint64_t start_time);

// True when /proc/PID/stat says the process is a zombie (dead, not yet reaped: a worker whose
// parent — a vmmd that was killed — left it to an init that does not reap). False when unreadable.
bool isZombie(pid_t pid);

// The whole text of a /proc file; ENOENT in the error code when the process is gone.
Result<std::string> readProcFile(const std::string& path);

// /proc/sys/kernel/random/boot_id, without its newline: (pid, start time) repeat across boots.
Result<std::string> bootId();
// /proc/PID/exe's target; ends in " (deleted)" once the binary was replaced on disk.
Result<std::string> processExe(pid_t pid);
// /proc/PID/cmdline, split at its NULs.
Result<std::vector<std::string>> processArgv(pid_t pid);
// The real uid on /proc/PID/status's "Uid:" line: the worker uid a re-attached worker runs as.
Result<uid_t> processUid(pid_t pid);

// The process holding a flock(2) lock on `path` (a worker's -pidfile), from /proc/locks; nullopt
// when nobody holds one.
std::optional<pid_t> flockHolder(const std::string& path);
// The FLOCK holder of the file (device major:minor, inode) in the text of /proc/locks.
std::optional<pid_t> parseFlockHolder(std::string_view locks, uint64_t dev_major, uint64_t dev_minor, uint64_t inode);

}  // namespace vmmd::daemon
