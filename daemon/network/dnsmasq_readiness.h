// When a dnsmasq that vmmd just started may be sent SIGHUP. From dnsmasq's source (dnsmasq.c,
// main()): its signal handler is installed at the top of main(), so a SIGHUP that comes before
// (while the child is still being exec'd and loaded) takes the default action and ends dnsmasq.
// It writes its pid file after that, and after binding its sockets, but before its first pass of
// the event loop; that first pass handles the EVENT_INIT it queued for itself, which re-reads the
// dhcp-hostsfile (clear_cache_and_reload). So once the pid file names the process, a SIGHUP is
// safe; until then none is needed either: whatever the hosts file says now is read by that pass.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "base/result.h"

namespace vmmd::daemon {

// The pid in a pid file ("1234\n"); nullopt when missing, empty or not a positive number.
std::optional<pid_t> readPidFile(const std::string& path);
// Whether the pid file at `path` names `pid`.
bool pidFileNames(const std::string& path, pid_t pid);
// Whether `pid`'s signal mask of caught signals (SigCgt in /proc/PID/status) has `sig`.
bool catchesSignal(pid_t pid, int sig);
// Whether dnsmasq `pid` takes SIGHUP as "reload": its pid file names it, or, for one whose pid
// file is gone (re-adopted after a vmmd restart), the kernel says it catches SIGHUP.
bool dnsmasqTakesSighup(const std::string& pid_path, pid_t pid);

enum class DnsmasqStartup { kReady, kExited, kTimedOut };
// Blocks until the pid file at `pid_path` names `pid` (its directory watched with inotify, so no
// polling), `pid` ends (a pidfd), or `timeout_ms` passes. Startup takes milliseconds.
Result<DnsmasqStartup> waitForDnsmasqReady(const std::string& pid_path, pid_t pid, int timeout_ms);

}  // namespace vmmd::daemon
