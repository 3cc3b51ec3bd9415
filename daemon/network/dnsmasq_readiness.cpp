#include "daemon/network/dnsmasq_readiness.h"

#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/unique_fd.h"
#include "daemon/process/process_identity.h"

namespace vmmd::daemon {

std::optional<pid_t> readPidFile(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

bool pidFileNames(const std::string& path, pid_t pid) { return readPidFile(path) == pid; }

bool catchesSignal(pid_t pid, int sig) {
  auto status = readProcFile("/proc/" + std::to_string(pid) + "/status");
  if (!status) return false;
  size_t at = status->find("\nSigCgt:");
  if (at == std::string::npos) return false;
  uint64_t mask = 0;
  std::istringstream(status->substr(at + 8)) >> std::hex >> mask;
  return sig >= 1 && sig <= 64 && ((mask >> (sig - 1)) & 1) != 0;
}

bool dnsmasqTakesSighup(const std::string& pid_path, pid_t pid) {
  return pidFileNames(pid_path, pid) || catchesSignal(pid, SIGHUP);
}

Result<DnsmasqStartup> waitForDnsmasqReady(const std::string& pid_path, pid_t pid, int timeout_ms) {
  UniqueFd events(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!events) return Error::fromErrno("inotify_init1");
  // dnsmasq creates the file anew (unlink, open O_EXCL, write, close): its close is the event.
  std::string dir = std::filesystem::path(pid_path).parent_path().string();
  if (::inotify_add_watch(events.get(), dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
    return Error::fromErrno("watch " + dir);
  }
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0 && errno == ESRCH) return DnsmasqStartup::kExited;
  if (fd < 0) return Error::fromErrno("pidfd_open");
  UniqueFd pidfd(static_cast<int>(fd));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    // Checked after the watch is in place, so a write in between is never missed.
    if (pidFileNames(pid_path, pid)) return DnsmasqStartup::kReady;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return DnsmasqStartup::kTimedOut;
    pollfd fds[2] = {{events.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) return Error::fromErrno("poll");
    if (n > 0 && fds[1].revents) return pidFileNames(pid_path, pid) ? DnsmasqStartup::kReady : DnsmasqStartup::kExited;
    char drain[4096];
    while (::read(events.get(), drain, sizeof drain) > 0) {
    }
  }
}

}  // namespace vmmd::daemon
