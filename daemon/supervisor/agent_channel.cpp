#include "daemon/supervisor/agent_channel.h"

#include <algorithm>
#include <cerrno>
#include <memory>
#include <utility>

#include "base/uv_work.h"

namespace vmmd::daemon {

struct Pending {
  qmp::Json request;
  AgentChannel::Duration timeout;
  AgentChannel::Done done;
};

// Loop-thread state, shared with the jobs in flight (which hold it weakly).
struct AgentChannel::Shared {
  uv_loop_t* loop;
  std::string path;
  std::optional<qmp::AgentClient> client;  // moved into the job while one runs
  std::deque<Pending> queue;
  bool busy = false;
  State state = State::kUnknown;
};

// One command on the thread pool (queueWork), shared by its work and its completion.
struct AgentChannel::Job {
  std::weak_ptr<Shared> owner;
  std::string path;
  std::optional<qmp::AgentClient> client;
  Pending pending;
  std::optional<Result<qmp::Json>> result;
  bool synced = false;

  // Thread pool: connect when needed, sync, run the command.
  void run() {
    auto start = std::chrono::steady_clock::now();
    if (!client) {
      auto c = qmp::AgentClient::connect(path, std::min(pending.timeout, kSyncTimeout));
      if (!c) {
        result.emplace(c.error());
        return;
      }
      client.emplace(std::move(*c));
    }
    if (Status s = client->sync(std::min(pending.timeout, kSyncTimeout)); !s) {
      client.reset();
      result.emplace(s.error());
      return;
    }
    synced = true;
    auto spent = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - start);
    Result<qmp::Json> reply = client->request(pending.request, std::max(pending.timeout - spent, Duration(1)));
    if (!reply) client.reset();  // the channel may be mid-message: start clean next time
    result.emplace(std::move(reply));
  }
};

AgentChannel::AgentChannel(uv_loop_t* loop, std::string socket_path) : shared_(std::make_shared<Shared>()) {
  shared_->loop = loop;
  shared_->path = std::move(socket_path);
}

AgentChannel::~AgentChannel() {
  for (Pending& p : std::exchange(shared_->queue, {})) {
    p.done(Error(std::string(qmp::kAgentNotConnected) + " (the VM's worker has exited)", ENOTCONN));
  }
}

void AgentChannel::submit(qmp::Json request, Duration timeout, Done done) {
  shared_->queue.push_back(Pending{std::move(request), timeout, std::move(done)});
  startNext(shared_);
}

AgentChannel::State AgentChannel::state() const { return shared_->state; }

void AgentChannel::setGuestOpen(bool open) { shared_->state = open ? State::kConnected : State::kDisconnected; }

void AgentChannel::startNext(const std::shared_ptr<Shared>& shared) {
  if (shared->busy || shared->queue.empty()) return;
  auto job = std::make_shared<Job>();
  job->owner = shared;
  job->path = shared->path;
  job->client = std::exchange(shared->client, std::nullopt);
  job->pending = std::move(shared->queue.front());
  shared->queue.pop_front();
  Status queued = queueWork(shared->loop, [job] { job->run(); }, [job](bool cancelled) {
    Result<qmp::Json> result = cancelled || !job->result ? Result<qmp::Json>(Error("guest agent command cancelled", ECANCELED))
                                                         : std::move(*job->result);
    std::shared_ptr<Shared> owner = job->owner.lock();
    if (owner) {
      owner->busy = false;
      owner->client = std::move(job->client);
      if (job->synced) owner->state = State::kConnected;
      else if (!result && result.error().code() == ENOTCONN) owner->state = State::kDisconnected;
    }
    job->pending.done(std::move(result));
    if (owner) startNext(owner);
  });
  if (!queued) {
    job->pending.done(Error("guest agent command: " + queued.error().message()));
    return;
  }
  shared->busy = true;
}

std::string_view toString(AgentChannel::State state) {
  switch (state) {
    case AgentChannel::State::kConnected: return "connected";
    case AgentChannel::State::kDisconnected: return "disconnected";
    case AgentChannel::State::kUnknown: break;
  }
  return "unknown";
}

}  // namespace vmmd::daemon
