// Runs one fixed action on a libuv loop's thread, when asked from any thread. libuv handles
// belong to their loop's thread: a uv_poll_start() from elsewhere races with the loop and, while
// the loop sleeps in epoll, does not even take effect. The virtio devices change what their
// backends wait for from vCPU threads too (driver activation and reset), so the backends apply
// such changes through this.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "base/result.h"
#include "base/uv_handle.h"

namespace vmmd {

class UvLoopTrigger {
 public:
  // Create it on the loop's thread (the one that runs uv_run); that is the thread it acts on.
  static Result<std::unique_ptr<UvLoopTrigger>> create(uv_loop_t* loop, std::function<void()> action) {
    auto trigger = std::make_unique<UvLoopTrigger>(std::move(action));
    auto async = std::make_unique<uv_async_t>();  // owned by the loop only once initialised
    if (int rc = uv_async_init(loop, async.get(), [](uv_async_t* handle) { static_cast<UvLoopTrigger*>(handle->data)->action_(); });
        rc != 0) {
      return Error(std::string("uv_async_init: ") + uv_strerror(rc));
    }
    async->data = trigger.get();
    trigger->async_.reset(async.release());
    return trigger;
  }

  explicit UvLoopTrigger(std::function<void()> action) : action_(std::move(action)) {}

  // On the loop's thread the action runs now; elsewhere it runs soon on the loop's thread
  // (several requests before it runs may run it once: the action must read the latest state).
  void request() {
    if (std::this_thread::get_id() == loop_thread_) {
      action_();
    } else {
      uv_async_send(async_.get());
    }
  }

 private:
  std::function<void()> action_;
  std::thread::id loop_thread_ = std::this_thread::get_id();
  UvHandle<uv_async_t> async_;
};

}  // namespace vmmd
