#include "daemon/supervisor/deadline_link.h"

#include <cerrno>

namespace vmmd::daemon {

DeadlineLink::DeadlineLink(uv_loop_t* loop, std::unique_ptr<WorkerLink> inner, uint32_t timeout_ms)
    : loop_(loop), inner_(std::move(inner)), timeout_ms_(timeout_ms) {
  inner_->onEvent = [this](const qmp::Json& event) {
    if (onEvent) onEvent(event);
  };
  inner_->onDisconnect = [this](const Error& why) {
    if (onDisconnect) onDisconnect(why);
  };
}

DeadlineLink::~DeadlineLink() = default;

void DeadlineLink::connect(const std::string& socket_path, std::function<void(Status)> done) {
  inner_->connect(socket_path, std::move(done));
}

void DeadlineLink::execute(std::string_view command, const qmp::JsonValue* args, ReplyCallback callback) {
  track(command, std::move(callback), [&](ReplyCallback reply) { inner_->execute(command, args, std::move(reply)); });
}

void DeadlineLink::executeWithFd(std::string_view command, const qmp::JsonValue* args, int fd, ReplyCallback callback) {
  track(command, std::move(callback), [&](ReplyCallback reply) { inner_->executeWithFd(command, args, fd, std::move(reply)); });
}

void DeadlineLink::track(std::string_view command, ReplyCallback callback, const std::function<void(ReplyCallback)>& send) {
  uint64_t id = next_id_++;
  auto pending = std::make_unique<Pending>();
  pending->command = std::string(command);
  pending->callback = std::move(callback);
  pending->owner = this;
  pending->id = id;
  pending->timer = makeUvHandle<uv_timer_t>();
  uv_timer_init(loop_, pending->timer.get());
  pending->timer->data = pending.get();
  uv_timer_start(pending->timer.get(), [](uv_timer_t* t) {
    auto* p = static_cast<Pending*>(t->data);
    p->owner->expire(p->id);
  }, timeout_ms_, 0);
  pending_.emplace(id, std::move(pending));
  send([this, alive = std::weak_ptr<int>(alive_), id](Result<qmp::CommandResult>&& reply) {
    if (alive.expired()) return;
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // answered after its deadline: the caller has its error already
    ReplyCallback done = std::move(it->second->callback);
    pending_.erase(it);
    done(std::move(reply));
  });
}

void DeadlineLink::expire(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  std::string command = it->second->command;
  ReplyCallback done = std::move(it->second->callback);
  pending_.erase(it);
  done(Error("no answer to '" + command + "' within " + std::to_string(timeout_ms_) + " ms", ETIMEDOUT));
}

void DeadlineLink::close() {
  // The inner link drops (never calls) what is pending, as a closed QMP client does.
  pending_.clear();
  inner_->close();
}

}  // namespace vmmd::daemon
