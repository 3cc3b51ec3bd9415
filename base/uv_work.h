// Work on libuv's thread pool: `work` runs on a pool thread, then `done` on the loop's thread
// (with cancelled = true when the loop cancelled it before it ran). The one wrapper of
// uv_queue_work: the request is owned by the loop from queueing until `done` has run.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "base/result.h"

namespace vmmd {

inline Status queueWork(uv_loop_t* loop, std::function<void()> work, std::function<void(bool cancelled)> done) {
  struct Job {
    uv_work_t request{};
    std::function<void()> work;
    std::function<void(bool)> done;
  };
  auto job = std::make_unique<Job>();
  job->work = std::move(work);
  job->done = std::move(done);
  job->request.data = job.get();
  int rc = uv_queue_work(
      loop, &job->request, [](uv_work_t* request) { static_cast<Job*>(request->data)->work(); },
      [](uv_work_t* request, int status) {
        std::unique_ptr<Job> finished(static_cast<Job*>(request->data));
        finished->done(status == UV_ECANCELED);
      });
  if (rc != 0) return Error(std::string("cannot queue work on libuv's thread pool: ") + uv_strerror(rc));
  (void)job.release();  // the after-work callback takes it back
  return {};
}

}  // namespace vmmd
