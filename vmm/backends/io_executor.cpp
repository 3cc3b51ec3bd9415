#include "vmm/backends/io_executor.h"

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "base/log.h"
#include "base/uv_work.h"
#include "vmm/sandbox/sandbox.h"

namespace vmmd {
namespace {

// libuv's own reading of UV_THREADPOOL_SIZE (1.44): default 4, at least 1, at most 1024.
size_t poolSize() {
  const char* text = std::getenv("UV_THREADPOOL_SIZE");
  if (!text) return 4;
  long size = std::atol(text);
  return size < 1 ? 1 : size > 1024 ? 1024 : static_cast<size_t>(size);
}

constexpr auto kPatience = std::chrono::seconds(10);

// A pool thread narrows itself to the I/O role before its first request (-sandbox on).
void confinePoolThread() {
  thread_local bool confined = false;
  if (confined) return;
  confined = true;
  if (auto st = sandbox::confineThread(sandbox::Role::Io); !st) log::error(st.error().message());
}

}  // namespace

virtio::VirtioBlk::Executor uvIoExecutor(uv_loop_t* loop) {
  return [loop](std::function<void()> work, std::function<void()> done) {
    // Only a closing loop refuses work; the worker is exiting then and no one waits for `done`.
    (void)queueWork(
        loop,
        [work = std::move(work)] {
          confinePoolThread();
          work();
        },
        [done = std::move(done)](bool) { done(); });
  };
}

Status startConfinedIoPool(uv_loop_t* loop) {
  const size_t threads = poolSize();
  // Written back normalised, so that libuv starts exactly the number counted here.
  ::setenv("UV_THREADPOOL_SIZE", std::to_string(threads).c_str(), 1);
  struct Gate {
    std::mutex mutex;
    std::condition_variable changed;
    size_t confined = 0;
  };
  auto gate = std::make_shared<Gate>();
  for (size_t i = 0; i < threads; ++i) {
    // Each job holds its thread until every job has started: one job per pool thread.
    auto st = queueWork(
        loop,
        [gate, threads] {
          confinePoolThread();
          std::unique_lock lock(gate->mutex);
          ++gate->confined;
          gate->changed.notify_all();
          gate->changed.wait_for(lock, kPatience, [&] { return gate->confined >= threads; });
        },
        [](bool) {});
    if (!st) return st.error().withContext("starting the I/O pool");
  }
  std::unique_lock lock(gate->mutex);
  if (!gate->changed.wait_for(lock, kPatience, [&] { return gate->confined >= threads; })) {
    return Error("the I/O pool started " + std::to_string(gate->confined) + " of " + std::to_string(threads) + " threads");
  }
  return {};
}

}  // namespace vmmd
