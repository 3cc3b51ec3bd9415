// The taps a running worker holds, found again from /proc after a vmmd restart: its argv says which
// fd each NIC's tap is (`-netdev tap,id=netI,fd=N`, launch/worker_argv.h) and the kernel's fdinfo of
// a tun fd names its interface ("iff:\tvmmdt3"). vmmd makes network taps non-persistent, so they
// live with the worker; knowing their names lets a re-attached VM show them and give them back.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmmd::daemon {

// NIC index -> the fd number its tap has in the worker, from the worker's argv (only NICs passed
// as fd=N; malformed or foreign arguments are skipped).
std::map<size_t, int> tapFdsInArgv(const std::vector<std::string>& argv);

// The interface name in the text of /proc/PID/fdinfo/FD ("iff:" line of a tun fd), if any.
std::optional<std::string> tapNameInFdinfo(std::string_view fdinfo);

// NIC index -> tap name for the process `pid` started with `argv` (what it still holds).
std::map<size_t, std::string> workerTaps(pid_t pid, const std::vector<std::string>& argv);

}  // namespace vmmd::daemon
