#include "daemon/network/dnsmasq_supervisor.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>

#include <algorithm>

#include "base/log.h"
#include "daemon/network/dnsmasq_readiness.h"
#include "daemon/process/process_identity.h"

namespace vmmd::daemon {

bool isOurDnsmasq(pid_t pid, const std::string& program, const std::string& conf_arg) {
  auto exe = processExe(pid);
  if (!exe || *exe != program) return false;
  auto argv = processArgv(pid);
  return argv && std::find(argv->begin(), argv->end(), conf_arg) != argv->end();
}

std::vector<pid_t> findDnsmasqProcesses(const std::string& program, const std::string& conf_arg) {
  std::vector<pid_t> found;
  std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
  if (!proc) return found;
  while (dirent* entry = ::readdir(proc.get())) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    if (!isZombie(static_cast<pid_t>(pid)) && isOurDnsmasq(static_cast<pid_t>(pid), program, conf_arg)) {
      found.push_back(static_cast<pid_t>(pid));
    }
  }
  return found;
}

namespace {

// How long a start waits for dnsmasq to come up; it takes milliseconds, more on a loaded host.
constexpr int kReadyTimeoutMs = 5000;

uint64_t nowMs(uv_loop_t* loop) {
  uv_update_time(loop);
  return uv_now(loop);
}

// Waits for `pid` to end, up to `timeout_ms`; true when it did.
bool waitForExit(pid_t pid, int timeout_ms) {
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return errno == ESRCH;
  UniqueFd pidfd(static_cast<int>(fd));
  pollfd p{pidfd.get(), POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1 || isZombie(pid);
}

}  // namespace

DnsmasqSupervisor::DnsmasqSupervisor(uv_loop_t* loop, std::string network, DnsmasqFiles files, DnsmasqPolicy policy,
                                     OnChange on_change)
    : loop_(loop), network_(std::move(network)), files_(std::move(files)), policy_(std::move(policy)),
      on_change_(std::move(on_change)) {}

DnsmasqSupervisor::~DnsmasqSupervisor() = default;

std::optional<pid_t> DnsmasqSupervisor::pid() const {
  if (!process_ || process_->exited()) return std::nullopt;
  return process_->pid();
}

WorkerProcess::ExitCallback DnsmasqSupervisor::nextExitCallback() {
  if (process_) finished_.push_back(std::move(process_));
  uint64_t generation = ++generation_;
  return [this, generation](const WorkerExit& exit) { onExit(generation, exit); };
}

Status DnsmasqSupervisor::startOrAdopt(std::optional<pid_t> recorded_pid, std::optional<uint64_t> recorded_start_time) {
  // Not called from a watcher's callback: the watchers of processes that ended can go.
  std::erase_if(finished_, [](const std::unique_ptr<WorkerProcess>& p) { return p->exited(); });
  stopping_ = false;
  gave_up_ = false;
  restart_times_ms_.clear();  // a new start gets the whole restart budget again
  std::string conf_arg = dnsmasqConfArg(files_);
  std::vector<pid_t> candidates;
  if (recorded_pid && recorded_start_time && isSameProcess(*recorded_pid, *recorded_start_time)) {
    candidates.push_back(*recorded_pid);
  }
  if (auto from_file = readPidFile(files_.pid)) candidates.push_back(*from_file);
  for (pid_t pid : findDnsmasqProcesses(policy_.program, conf_arg)) candidates.push_back(pid);
  std::optional<pid_t> adopted;
  for (pid_t pid : candidates) {
    if (adopted == pid || isZombie(pid) || !isOurDnsmasq(pid, policy_.program, conf_arg)) continue;
    if (!adopted && adopt(pid)) {
      adopted = pid;
      log::info("network '" + network_ + "': re-adopted its dnsmasq (pid " + std::to_string(pid) + ")");
      continue;
    }
    // A second one (a start that raced a crash of vmmd): one dnsmasq per network, never two.
    log::warning("network '" + network_ + "': stopping a duplicate dnsmasq (pid " + std::to_string(pid) + ")");
    ::kill(pid, SIGTERM);
    if (!waitForExit(pid, 3000)) ::kill(pid, SIGKILL);
  }
  if (adopted) return {};
  return spawn();
}

Status DnsmasqSupervisor::adopt(pid_t pid) {
  auto start_time = processStartTime(pid);
  if (!start_time) return start_time.error();
  auto process = WorkerProcess::adopt(loop_, pid, *start_time, nextExitCallback());
  if (!process) return process.error();
  process_ = std::move(*process);
  // Started by an earlier vmmd, up long since as a rule; if that vmmd died within the milliseconds
  // of its startup, reload() asks again.
  ready_ = dnsmasqTakesSighup(files_.pid, pid);
  on_change_(pid, *start_time);
  return {};
}

Status DnsmasqSupervisor::spawn() {
  // A stale pidfile would mislead the next re-adoption; dnsmasq writes its own.
  ::unlink(files_.pid.c_str());
  auto process = WorkerProcess::spawn(loop_, policy_.program, dnsmasqArgs(files_), files_.log, nextExitCallback());
  if (!process) return process.error().withContext("network '" + network_ + "': start dnsmasq");
  process_ = std::move(*process);
  pid_t pid = process_->pid();
  on_change_(pid, process_->startTime());
  // Started means up: until it has written its pid file a SIGHUP (a NIC attached right after
  // net-start) would end it instead of reloading it (dnsmasq_readiness.h).
  auto startup = waitForDnsmasqReady(files_.pid, pid, kReadyTimeoutMs);
  ready_ = startup && *startup == DnsmasqStartup::kReady;
  if (!startup) {
    log::warning("network '" + network_ + "': dnsmasq (pid " + std::to_string(pid) + ") started; cannot wait for it: " +
                 startup.error().message());
  } else if (*startup == DnsmasqStartup::kTimedOut) {
    log::warning("network '" + network_ + "': dnsmasq (pid " + std::to_string(pid) + ") started but not up after " +
                 std::to_string(kReadyTimeoutMs / 1000) + " s");
  } else if (*startup == DnsmasqStartup::kReady) {
    log::info("network '" + network_ + "': dnsmasq started (pid " + std::to_string(pid) + ")");
  }
  // kExited: its exit callback reports it and restarts it.
  return {};
}

void DnsmasqSupervisor::onExit(uint64_t generation, const WorkerExit& exit) {
  if (generation != generation_ || stopping_) return;
  on_change_(std::nullopt, std::nullopt);
  uint64_t now = nowMs(loop_);
  uint64_t window = uint64_t(policy_.restart_window_s) * 1000;
  while (!restart_times_ms_.empty() && now - restart_times_ms_.front() > window) restart_times_ms_.pop_front();
  if (restart_times_ms_.size() >= size_t(policy_.max_restarts)) {
    gave_up_ = true;
    log::error("network '" + network_ + "': dnsmasq " + exit.describe() + "; it died " + std::to_string(policy_.max_restarts) +
               " times within " + std::to_string(policy_.restart_window_s) + " s, not restarting it (see " + files_.log +
               "; net-stop and net-start the network to try again)");
    return;
  }
  restart_times_ms_.push_back(now);
  ++total_restarts_;
  log::warning("network '" + network_ + "': dnsmasq " + exit.describe() + "; restarting it");
  if (auto st = spawn(); !st) log::error(st.error().message());
}

Status DnsmasqSupervisor::reload() {
  if (!process_ || process_->exited()) return Error("network '" + network_ + "': dnsmasq is not running");
  if (!ready_) ready_ = dnsmasqTakesSighup(files_.pid, process_->pid());
  // Not up yet: a SIGHUP could end it, and its first loop pass reads the hosts file anyway.
  if (!ready_) return {};
  return process_->signal(SIGHUP);
}

void DnsmasqSupervisor::stop() {
  stopping_ = true;
  if (!process_ || process_->exited()) return;
  pid_t pid = process_->pid();
  (void)process_->signal(SIGTERM);
  if (!waitForExit(pid, 3000)) {
    log::warning("network '" + network_ + "': dnsmasq (pid " + std::to_string(pid) + ") ignored SIGTERM; killing it");
    (void)process_->signal(SIGKILL);
    waitForExit(pid, 3000);
  }
  on_change_(std::nullopt, std::nullopt);
}

}  // namespace vmmd::daemon
