// virtio-net (virtio 1.x section 5.1) on a tap device: checksum and TSO offloads pass through
// the vnet header both ways, mergeable receive buffers, link status (QMP set_link). Frames go
// from guest memory to the tap with one writev; the tap is only read while the guest has posted
// receive buffers, so a guest that stops receiving pushes back on the host, not on our memory.
#pragma once

#include <sys/uio.h>

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace vmmd::virtio {

// The host end (a tap), driven from the main loop.
class NetBackend {
 public:
  virtual ~NetBackend() = default;
  virtual int fd() const = 0;
  virtual Status setOffloads(bool csum, bool tso4, bool tso6, bool ecn) = 0;
  virtual void waitReadable(bool wanted) = 0;
  virtual void waitWritable(bool wanted) = 0;
  std::function<void()> on_readable;
  std::function<void()> on_writable;
};

class VirtioNet : public VirtioDevice {
 public:
  VirtioNet(std::unique_ptr<NetBackend> backend, std::array<uint8_t, 6> mac);
  ~VirtioNet() override;

  uint16_t deviceType() const override { return 1; }
  uint32_t pciClass() const override { return 0x020000; }  // Ethernet controller
  Names names() const override { return {"virtio-net-pci", "virtio-net-device"}; }
  uint64_t deviceFeatures() const override;
  uint16_t queueCount() const override { return 2; }
  void readConfig(uint64_t offset, std::span<uint8_t> data) override;
  void activate() override;
  void kick(uint16_t queue) override;
  void reset() override;

  // Version 1: the MAC (checked: a state is for the NIC with the same address) and the link
  // status. Frames in flight are not state: the tap and the guest's queues hold them.
  Result<DeviceState> saveState() const override;
  Status loadState(const DeviceState& state) override;
  static constexpr uint32_t kStateVersion = 1;

  void setLink(bool up);
  bool linkUp() const { return link_up_; }

 private:
  void transmit();
  void receive();
  void hostInputStopped() override { backend_->waitReadable(false); }
  void hostInputResumed() override { receive(); }
  // The driver's input is broken: stop, then tell the transport (DEVICE_NEEDS_RESET).
  void fail(const std::string& why);

  std::unique_ptr<NetBackend> backend_;
  std::array<uint8_t, 6> mac_;
  bool link_up_ = true;
  bool mergeable_ = false;
  std::vector<uint8_t> frame_;      // a received frame (vnet header first) waiting for buffers
  size_t frame_length_ = 0;
  bool waiting_writable_ = false;
  // Reused by every frame: no allocation per frame.
  DescriptorChain tx_chain_, rx_chain_;
  std::vector<iovec> tx_iov_;
  std::vector<std::pair<uint16_t, uint32_t>> rx_completions_;  // (head, bytes) of one frame's chains
};

}  // namespace vmmd::virtio
