// Runs a libuv loop on its own thread for socket tests; run() executes a closure on that
// thread and waits for it, since UvServer and UvClient are loop-thread-only.
#pragma once

#include <uv.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace vmmd::qmp::testing {

class LoopThread {
 public:
  LoopThread() {
    uv_loop_init(&loop_);
    uv_async_init(&loop_, &async_, [](uv_async_t* a) { static_cast<LoopThread*>(a->data)->drain(); });
    async_.data = this;
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  ~LoopThread() {
    run([this] {
      stopping_ = true;
      uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    });
    thread_.join();
    uv_run(&loop_, UV_RUN_NOWAIT);
    uv_loop_close(&loop_);
  }

  uv_loop_t* loop() { return &loop_; }

  void run(std::function<void()> fn) {
    std::unique_lock lock(mu_);
    bool done = false;
    tasks_.push_back([&] {
      fn();
      std::lock_guard g(mu_);
      done = true;
      cv_.notify_all();
    });
    uv_async_send(&async_);
    cv_.wait(lock, [&] { return done; });
  }

 private:
  void drain() {
    std::deque<std::function<void()>> tasks;
    {
      std::lock_guard g(mu_);
      tasks.swap(tasks_);
    }
    for (auto& t : tasks) t();
  }

  uv_loop_t loop_{};
  uv_async_t async_{};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
};

}  // namespace vmmd::qmp::testing
