// A Unix-socket server chardev (server=on): one client at a time, as QEMU's. Output written while
// no client is attached is dropped (QEMU does the same with wait=off); output to a slow client is
// queued up to kMaxBacklog bytes and then dropped, so a stuck client never stalls the guest.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "base/uv_handle.h"
#include "vmm/backends/chardev.h"

namespace vmmd {

class SocketChardev : public Chardev {
 public:
  static constexpr size_t kMaxBacklog = 1 << 20;

  static Result<std::unique_ptr<SocketChardev>> listen(uv_loop_t* loop, const config::ChardevConfig& config);
  SocketChardev(std::string id, std::string path, uv_loop_t* loop);
  ~SocketChardev() override;

  void write(std::span<const uint8_t> bytes) override;
  std::string filename() const override { return "unix:" + path_ + ",server=on"; }
  bool connected() const override;
  uint64_t droppedBytes() const;

 private:
  void onConnection();
  void onClientData(ssize_t nread, const uv_buf_t* buf);
  void dropClient();
  void flushLocked();  // mutex_ held

  std::string path_;
  bool owns_path_ = false;  // bound by us (path=), so removed when we close
  uv_loop_t* loop_;
  UvHandle<uv_pipe_t> server_;
  UvHandle<uv_pipe_t> client_;
  UvHandle<uv_async_t> flush_async_;
  UvHandle<uv_poll_t> writable_poll_;

  mutable std::mutex mutex_;  // guards the writer side below, used by vCPU threads
  UniqueFd writer_;           // dup of the client socket, non-blocking
  std::vector<uint8_t> backlog_;
  uint64_t dropped_ = 0;
};

}  // namespace vmmd
