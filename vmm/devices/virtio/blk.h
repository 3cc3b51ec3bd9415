// virtio-blk (virtio 1.x section 5.2) on the storage layer: read, write, flush, discard,
// write-zeroes and get-id. The main loop parses each request and hands the I/O to a thread pool;
// completions come back to the main loop, which returns the buffers to the guest.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/block_device.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace vmmd::virtio {

class VirtioBlk : public VirtioDevice {
 public:
  // Runs `work` on an I/O thread, then `done` on the main loop thread.
  using Executor = std::function<void(std::function<void()> work, std::function<void()> done)>;
  // A request failed in the host: operation "read"/"write"/"flush"..., and why.
  using IoErrorHandler = std::function<void(const std::string& operation, const std::string& reason)>;

  VirtioBlk(std::shared_ptr<storage::BlockDevice> disk, std::string serial, bool no_flush, Executor executor,
            IoErrorHandler on_error);
  ~VirtioBlk() override;

  uint16_t deviceType() const override { return 2; }
  uint32_t pciClass() const override { return 0x010000; }  // mass storage, as QEMU's
  Names names() const override { return {"virtio-blk-pci", "virtio-blk-device"}; }
  uint64_t deviceFeatures() const override;
  uint16_t queueCount() const override { return 1; }
  void readConfig(uint64_t offset, std::span<uint8_t> data) override;
  void activate() override;
  void kick(uint16_t queue) override;
  void reset() override;
  void quiesce() override;
  // Requests taken from the queue whose completion has not reached the guest yet.
  size_t requestsInFlight() const override { return in_flight_.load(); }
  // Only the disk's size and read-only flag (a check that the destination has the same disk): the
  // queue positions are the transport's. Refused while a request is in flight (drain first).
  Result<DeviceState> saveState() const override;
  Status loadState(const DeviceState& state) override;
  static constexpr uint32_t kStateVersion = 1;

  const storage::BlockDevice& disk() const { return *disk_; }
  // Serves `disk` from now on: the same image reopened when a migration hands it over. Only with
  // no request in flight (the machine stopped and drained); it must have the same size and
  // read-only flag.
  Status replaceDisk(std::shared_ptr<storage::BlockDevice> disk);

 private:
  struct Request;
  // Checks a parsed request; false: it is finished (refused, or served without disk I/O).
  bool prepare(Request& request);
  static void serve(storage::BlockDevice& disk, Request& request);
  // Queues requests for the executor; their completions come back to the main loop.
  void dispatch(std::vector<std::shared_ptr<Request>> requests);
  void startWorkers();
  // On an I/O thread: serves pending requests, moving them to `served`.
  void serveBatch(std::vector<std::shared_ptr<Request>>& served);
  // Returns finished requests to the guest, with one interrupt.
  void complete(const std::vector<std::shared_ptr<Request>>& requests);

  std::shared_ptr<storage::BlockDevice> disk_;
  std::string serial_;
  bool no_flush_;
  Executor executor_;
  IoErrorHandler on_error_;
  uint64_t generation_ = 0;  // bumped by reset: completions of older requests are dropped

  // Completions run on the main loop, possibly after this device is gone (teardown): they hold
  // this token weakly and do nothing once it has expired.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  DescriptorChain chain_;  // the chain being parsed (reused: no allocation per request for it)
  std::mutex io_mutex_;  // guards pending_ and workers_
  std::deque<std::shared_ptr<Request>> pending_;  // waiting for a worker
  size_t workers_ = 0;                            // work items handed to the executor, not yet done
  std::condition_variable workers_done_;
  std::atomic<size_t> in_flight_{0};  // dispatched, not yet completed on the main loop
};

}  // namespace vmmd::virtio
