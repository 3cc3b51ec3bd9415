#include "daemon/supervisor/process_worker_host.h"

#include "daemon/supervisor/worker_process.h"
#include "qmp/uv_client.h"

namespace vmmd::daemon {
namespace {

static_assert(WorkerProcess::kFirstPassedFd == WorkerHost::kFirstPassedFd);

// A Result of the concrete process, as the interface's Result.
Result<std::unique_ptr<Worker>> asWorker(Result<std::unique_ptr<WorkerProcess>>&& process) {
  if (!process) return process.error();
  return std::unique_ptr<Worker>(std::move(*process));
}

class QmpWorkerLink : public WorkerLink {
 public:
  explicit QmpWorkerLink(uv_loop_t* loop) : client_(loop) {
    client_.onEvent = [this](const qmp::Json& event) {
      if (onEvent) onEvent(event);
    };
    client_.onDisconnect = [this](const Error& why) {
      if (onDisconnect) onDisconnect(why);
    };
  }
  void connect(const std::string& socket_path, std::function<void(Status)> done) override {
    client_.connect(socket_path, std::move(done));
  }
  void execute(std::string_view command, const qmp::JsonValue* args, ReplyCallback callback) override {
    client_.execute(command, args, std::move(callback));
  }
  void close() override { client_.close(); }

 private:
  qmp::UvClient client_;
};

}  // namespace

Result<std::unique_ptr<Worker>> ProcessWorkerHost::spawn(const std::string& exe, const std::vector<std::string>& args,
                                                         const std::string& log_path, Worker::ExitCallback on_exit,
                                                         const std::vector<int>& pass_fds) {
  return asWorker(WorkerProcess::spawn(loop_, exe, args, log_path, std::move(on_exit), pass_fds));
}

Result<std::unique_ptr<Worker>> ProcessWorkerHost::adopt(pid_t pid, uint64_t start_time, Worker::ExitCallback on_exit) {
  return asWorker(WorkerProcess::adopt(loop_, pid, start_time, std::move(on_exit)));
}

std::unique_ptr<WorkerLink> ProcessWorkerHost::link() { return std::make_unique<QmpWorkerLink>(loop_); }

}  // namespace vmmd::daemon
