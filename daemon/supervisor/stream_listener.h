// The destination side of a migration between vmmd instances: a socket (mode 0600, vmmd's own)
// in the arriving VM's run directory that accepts one connection, the migration stream, which
// vmmd then hands to its worker (getfd + migrate-incoming), since the confined worker cannot
// accept or open anything itself.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "base/uv_handle.h"

namespace vmmd::daemon {

class StreamListener {
 public:
  // Binds and listens at `path` (a stale socket there is replaced).
  static Result<std::unique_ptr<StreamListener>> listen(uv_loop_t* loop, const std::string& path);
  ~StreamListener();
  StreamListener(const StreamListener&) = delete;
  StreamListener& operator=(const StreamListener&) = delete;

  // `accepted` gets the first connection; the socket is then closed and removed.
  void onAccept(std::function<void(UniqueFd stream)> accepted);
  const std::string& path() const { return path_; }

 private:
  StreamListener(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  void acceptOne();
  void stop();

  std::string path_;
  UniqueFd fd_;
  UvHandle<uv_poll_t> poll_;
  std::function<void(UniqueFd)> accepted_;
};

}  // namespace vmmd::daemon
