#include "vmm/backends/io_executor.h"

#include <utility>

#include "base/uv_work.h"

namespace vmmd {

virtio::VirtioBlk::Executor uvIoExecutor(uv_loop_t* loop) {
  return [loop](std::function<void()> work, std::function<void()> done) {
    // Only a closing loop refuses work; the worker is exiting then and no one waits for `done`.
    (void)queueWork(loop, std::move(work), [done = std::move(done)](bool) { done(); });
  };
}

}  // namespace vmmd
