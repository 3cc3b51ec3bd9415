// A WorkerLink that puts a deadline on every request: a worker that takes a command and never
// answers (wedged, or its QMP output backed up) fails that command with ETIMEDOUT after
// `timeout_ms` instead of leaving its caller waiting for ever. A reply that comes after the
// deadline is dropped. Everything else passes through to the wrapped link.
#pragma once

#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>

#include "base/uv_handle.h"
#include "daemon/supervisor/worker.h"

namespace vmmd::daemon {

class DeadlineLink : public WorkerLink {
 public:
  DeadlineLink(uv_loop_t* loop, std::unique_ptr<WorkerLink> inner, uint32_t timeout_ms);
  ~DeadlineLink() override;

  void connect(const std::string& socket_path, std::function<void(Status)> done) override;
  void execute(std::string_view command, const qmp::JsonValue* args, ReplyCallback callback) override;
  void executeWithFd(std::string_view command, const qmp::JsonValue* args, int fd, ReplyCallback callback) override;
  void close() override;

 private:
  // Arms the deadline for `command`, then hands the inner link's request `send` its callback.
  void track(std::string_view command, ReplyCallback callback, const std::function<void(ReplyCallback)>& send);
  struct Pending {
    std::string command;
    ReplyCallback callback;
    UvHandle<uv_timer_t> timer;
    DeadlineLink* owner = nullptr;
    uint64_t id = 0;
  };
  void expire(uint64_t id);

  uv_loop_t* loop_;
  std::unique_ptr<WorkerLink> inner_;
  uint32_t timeout_ms_;
  std::map<uint64_t, std::unique_ptr<Pending>> pending_;
  uint64_t next_id_ = 1;
  // Expires with the link: a reply the inner link delivers later checks it first.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace vmmd::daemon
