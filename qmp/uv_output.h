// Ordered output on a libuv stream, shared by UvServer's clients and UvClient: a message goes
// straight to the socket with uv_try_write when nothing is queued; what does not fit waits in
// one buffer behind a single in-flight uv_write. The owner must keep this object alive until the
// stream's close callback (libuv cancels the in-flight write before that).
#pragma once

#include <uv.h>

#include <functional>
#include <string>
#include <string_view>

namespace vmmd::qmp {

class UvOutput {
 public:
  // `written(status)` runs after each uv_write completes (status < 0: the stream failed).
  UvOutput(uv_stream_t* stream, std::function<void(int status)> written)
      : stream_(stream), written_(std::move(written)) {
    req_.data = this;
  }
  UvOutput(const UvOutput&) = delete;
  UvOutput& operator=(const UvOutput&) = delete;

  // Returns a libuv error (< 0) when the stream cannot take data any more.
  int send(std::string_view bytes) {
    if (stopped_) return UV_ECANCELED;
    if (!writing_ && queued_.empty()) {
      uv_buf_t buf = uv_buf_init(const_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size()));
      int n = uv_try_write(stream_, &buf, 1);
      if (n == static_cast<int>(bytes.size())) return 0;
      if (n < 0 && n != UV_EAGAIN) return n;
      if (n > 0) bytes.remove_prefix(static_cast<size_t>(n));
    }
    queued_.append(bytes);
    return startWrite();
  }

  size_t backlog() const { return inflight_.size() + queued_.size(); }
  // No more writes (the stream is closing); a cancelled in-flight write is then ignored.
  void stop() { stopped_ = true; }

 private:
  int startWrite() {
    if (writing_ || queued_.empty() || stopped_) return 0;
    inflight_.swap(queued_);
    queued_.clear();
    uv_buf_t buf = uv_buf_init(inflight_.data(), static_cast<unsigned>(inflight_.size()));
    int rc = uv_write(&req_, stream_, &buf, 1, &UvOutput::onWritten);
    if (rc == 0) writing_ = true;
    return rc;
  }

  static void onWritten(uv_write_t* req, int status) {
    auto* self = static_cast<UvOutput*>(req->data);
    self->writing_ = false;
    self->inflight_.clear();
    // Do not keep a burst's worth of memory per connection.
    if (self->inflight_.capacity() > (size_t{1} << 20)) std::string().swap(self->inflight_);
    if (self->stopped_) return;
    if (status >= 0) status = self->startWrite();
    self->written_(status);
  }

  uv_stream_t* stream_;
  std::function<void(int)> written_;
  uv_write_t req_{};
  std::string inflight_;
  std::string queued_;
  bool writing_ = false;
  bool stopped_ = false;
};

}  // namespace vmmd::qmp
