// The real workers: processes (WorkerProcess) and their QMP sockets (qmp::UvClient).
#pragma once

#include <uv.h>

#include "daemon/supervisor/worker.h"

namespace vmmd::daemon {

class ProcessWorkerHost : public WorkerHost {
 public:
  explicit ProcessWorkerHost(uv_loop_t* loop) : loop_(loop) {}

  Result<std::unique_ptr<Worker>> spawn(const std::string& exe, const std::vector<std::string>& args,
                                        const std::string& log_path, Worker::ExitCallback on_exit,
                                        const std::vector<int>& pass_fds, std::optional<WorkerIdentity> identity) override;
  Result<std::unique_ptr<Worker>> adopt(pid_t pid, uint64_t start_time, Worker::ExitCallback on_exit) override;
  std::unique_ptr<WorkerLink> link() override;
  std::string bootId() override;
  Result<ProcessFacts> inspect(pid_t pid) override;
  std::optional<pid_t> pidfileHolder(const std::string& pidfile) override;
  std::optional<pid_t> processWithUuid(const std::string& uuid) override;
  Status killProcess(pid_t pid, uint64_t start_time) override;

 private:
  uv_loop_t* loop_;
};

}  // namespace vmmd::daemon
