// A tap device as a virtio-net backend on the worker's libuv loop (readiness through uv_poll).
#pragma once

#include <uv.h>

#include <atomic>
#include <memory>

#include "base/uv_handle.h"
#include "base/uv_loop_trigger.h"
#include "net/tap.h"
#include "vmm/devices/virtio/net.h"

namespace vmmd {

class TapBackend : public virtio::NetBackend {
 public:
  static Result<std::unique_ptr<TapBackend>> create(uv_loop_t* loop, net::Tap tap);
  explicit TapBackend(net::Tap tap) : tap_(std::move(tap)) {}

  int fd() const override { return tap_.fd(); }
  Status setOffloads(bool csum, bool tso4, bool tso6, bool ecn) override { return tap_.setOffloads(csum, tso4, tso6, ecn); }
  void waitReadable(bool wanted) override;
  void waitWritable(bool wanted) override;

 private:
  void update();
  net::Tap tap_;
  UvHandle<uv_poll_t> poll_;
  // Set by virtio-net on any thread (a vCPU thread on driver activation and reset); the poll
  // itself is only touched on the loop's thread, through update_.
  std::atomic<bool> read_{false}, write_{false};
  std::unique_ptr<UvLoopTrigger> update_;
};

}  // namespace vmmd
