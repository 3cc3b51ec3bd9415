// A Unix-socket server (QEMU's "-chardev socket,server=on") as the host end of a virtio-serial
// port: one client at a time, non-blocking reads and writes pulled by the device, readiness
// through uv_poll. Further clients wait in the listen backlog until the current one leaves.
#pragma once

#include <uv.h>

#include <atomic>
#include <memory>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "base/uv_handle.h"
#include "base/uv_loop_trigger.h"
#include "vmm/config/machine_config.h"
#include "vmm/devices/virtio/console.h"

namespace vmmd {

class SocketPort : public virtio::PortBackend {
 public:
  static Result<std::unique_ptr<SocketPort>> listen(uv_loop_t* loop, const config::ChardevConfig& config);
  explicit SocketPort(uv_loop_t* loop) : loop_(loop) {}
  ~SocketPort() override;

  size_t tryWrite(std::span<const uint8_t> bytes) override;
  size_t available() const override;
  size_t tryRead(std::span<uint8_t> out) override;
  void waitWritable() override;
  void waitReadable(bool wanted) override;
  bool connected() const override { return client_.valid(); }
  const std::string& path() const { return path_; }

 private:
  void accept();
  void disconnect();
  void updatePoll();

  uv_loop_t* loop_;
  std::string path_;
  bool owns_path_ = false;  // bound by us (path=), so removed when we close
  UniqueFd listener_;
  UniqueFd client_;
  UvHandle<uv_poll_t> listen_poll_;
  UvHandle<uv_poll_t> client_poll_;
  // Set by the device on any thread (a vCPU thread on driver reset); the poll itself is only
  // touched on the loop's thread, through update_.
  std::atomic<bool> want_read_{false};
  std::atomic<bool> want_write_{false};
  std::unique_ptr<UvLoopTrigger> update_;
};

}  // namespace vmmd
