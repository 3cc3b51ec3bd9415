#include "vmm/backends/io_executor.h"

#include <memory>

namespace vmmd {

virtio::VirtioBlk::Executor uvIoExecutor(uv_loop_t* loop) {
  return [loop](std::function<void()> work, std::function<void()> done) {
    struct Job {
      uv_work_t request;
      std::function<void()> work;
      std::function<void()> done;
    };
    auto job = std::make_unique<Job>();
    job->work = std::move(work);
    job->done = std::move(done);
    job->request.data = job.get();
    int rc = uv_queue_work(
        loop, &job->request, [](uv_work_t* r) { static_cast<Job*>(r->data)->work(); },
        [](uv_work_t* r, int) {
          std::unique_ptr<Job> finished(static_cast<Job*>(r->data));
          finished->done();
        });
    if (rc == 0) job.release();  // owned by the loop until its completion callback
  };
}

}  // namespace vmmd
