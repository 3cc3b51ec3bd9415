// The one dnsmasq of one active network: started by vmmd (its child, in its own session, so it
// outlives a vmmd restart), restarted when it dies (at most max_restarts in restart_window_s,
// each logged; then the network goes without DHCP/DNS until the next net-start), re-adopted by a
// restarted vmmd. Re-adoption trusts a process only when it is dnsmasq (/proc/PID/exe) running
// with this network's --conf-file (/proc/PID/cmdline): the recorded pid first, then the pidfile,
// then any such process at all, so there is never a second dnsmasq for a network.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "daemon/network/dnsmasq_config.h"
#include "daemon/supervisor/worker_process.h"

namespace vmmd::daemon {

struct DnsmasqPolicy {
  std::string program;  // absolute path of dnsmasq
  int max_restarts = 5;
  int restart_window_s = 60;
};

// Every process running `program` with `conf_arg` among its arguments (scans /proc).
std::vector<pid_t> findDnsmasqProcesses(const std::string& program, const std::string& conf_arg);
// Whether `pid` runs `program` with `conf_arg` among its arguments.
bool isOurDnsmasq(pid_t pid, const std::string& program, const std::string& conf_arg);

class DnsmasqSupervisor {
 public:
  // Called with the pid and start time each time a dnsmasq starts or is adopted (nullopt: none
  // runs any more), for the store.
  using OnChange = std::function<void(std::optional<pid_t> pid, std::optional<uint64_t> start_time)>;

  DnsmasqSupervisor(uv_loop_t* loop, std::string network, DnsmasqFiles files, DnsmasqPolicy policy, OnChange on_change);
  ~DnsmasqSupervisor();

  // Adopts this network's running dnsmasq when there is one (killing extra ones), else starts one
  // and waits (up to 5 s) until it is up: its pid file written, its signal handlers in place.
  Status startOrAdopt(std::optional<pid_t> recorded_pid, std::optional<uint64_t> recorded_start_time);
  // SIGHUP: dnsmasq re-reads its hosts file (the static leases). None to a dnsmasq that is not up
  // yet (its pid file not written): it would end it, and that dnsmasq reads the file as it comes up.
  Status reload();
  // SIGTERM, waits up to 3 s for it to end, then SIGKILL. No restart follows.
  void stop();

  std::optional<pid_t> pid() const;
  int restarts() const { return total_restarts_; }
  bool gaveUp() const { return gave_up_; }

 private:
  Status spawn();
  Status adopt(pid_t pid);
  // The watcher of the next process; the last one, if any, waits in finished_ for its exit.
  WorkerProcess::ExitCallback nextExitCallback();
  void onExit(uint64_t generation, const WorkerExit& exit);

  uv_loop_t* loop_;
  std::string network_;
  DnsmasqFiles files_;
  DnsmasqPolicy policy_;
  OnChange on_change_;
  std::unique_ptr<WorkerProcess> process_;
  // Which process process_ is: the exit of an older one (stopped, replaced) changes nothing.
  uint64_t generation_ = 0;
  // Exited processes' watchers, dropped outside their own callback.
  std::vector<std::unique_ptr<WorkerProcess>> finished_;
  std::deque<uint64_t> restart_times_ms_;
  int total_restarts_ = 0;
  bool gave_up_ = false;
  // process_ has written its pid file, so it takes SIGHUP as "reload" (dnsmasq_readiness.h).
  bool ready_ = false;
  bool stopping_ = false;
};

}  // namespace vmmd::daemon
