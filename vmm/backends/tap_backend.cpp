#include "vmm/backends/tap_backend.h"

namespace vmmd {

Result<std::unique_ptr<TapBackend>> TapBackend::create(uv_loop_t* loop, net::Tap tap) {
  auto backend = std::make_unique<TapBackend>(std::move(tap));
  auto poll = std::make_unique<uv_poll_t>();
  if (uv_poll_init(loop, poll.get(), backend->fd()) != 0) return Error("tap " + backend->tap_.name() + ": uv_poll_init");
  backend->poll_.reset(poll.release());
  backend->poll_->data = backend.get();
  auto update = UvLoopTrigger::create(loop, [raw = backend.get()] { raw->update(); });
  if (!update) return update.error().withContext("tap " + backend->tap_.name());
  backend->update_ = std::move(*update);
  return backend;
}

void TapBackend::waitReadable(bool wanted) {
  if (read_.exchange(wanted) == wanted) return;
  update_->request();
}

void TapBackend::waitWritable(bool wanted) {
  if (write_.exchange(wanted) == wanted) return;
  update_->request();
}

void TapBackend::update() {
  int events = (read_ ? UV_READABLE : 0) | (write_ ? UV_WRITABLE : 0);
  if (!events) {
    uv_poll_stop(poll_.get());
    return;
  }
  uv_poll_start(poll_.get(), events, [](uv_poll_t* handle, int status, int ready) {
    auto* self = static_cast<TapBackend*>(handle->data);
    if (status < 0) return;
    if ((ready & UV_WRITABLE) && self->write_ && self->on_writable) self->on_writable();
    if ((ready & UV_READABLE) && self->read_ && self->on_readable) self->on_readable();
  });
}

}  // namespace vmmd
