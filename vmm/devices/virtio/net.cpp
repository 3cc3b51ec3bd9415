#include "vmm/devices/virtio/net.h"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vmmd::virtio {
namespace {

constexpr uint64_t kCsum = 1ull << 0, kGuestCsum = 1ull << 1, kMac = 1ull << 5, kGuestTso4 = 1ull << 7,
                   kGuestTso6 = 1ull << 8, kGuestEcn = 1ull << 9, kHostTso4 = 1ull << 11, kHostTso6 = 1ull << 12,
                   kHostEcn = 1ull << 13, kMrgRxbuf = 1ull << 15, kStatus = 1ull << 16;
constexpr uint16_t kRxQueue = 0, kTxQueue = 1;
constexpr size_t kHeaderSize = 12;  // virtio_net_hdr_v1
constexpr size_t kNumBuffersOffset = 10;  // its last field, little endian
constexpr size_t kMaxFrame = kHeaderSize + 65536 + 14 + 4;
constexpr uint16_t kLinkUp = 1;

}  // namespace

VirtioNet::VirtioNet(std::unique_ptr<NetBackend> backend, std::array<uint8_t, 6> mac)
    : backend_(std::move(backend)), mac_(mac), frame_(kMaxFrame) {
  backend_->on_readable = [this] {
    auto guard = lock();
    receive();
  };
  backend_->on_writable = [this] {
    auto guard = lock();
    waiting_writable_ = false;
    backend_->waitWritable(false);
    transmit();
  };
}

VirtioNet::~VirtioNet() {
  backend_->on_readable = nullptr;
  backend_->on_writable = nullptr;
}

uint64_t VirtioNet::deviceFeatures() const {
  return kCsum | kGuestCsum | kMac | kGuestTso4 | kGuestTso6 | kGuestEcn | kHostTso4 | kHostTso6 | kHostEcn | kMrgRxbuf |
         kStatus;
}

void VirtioNet::readConfig(uint64_t offset, std::span<uint8_t> data) {
  uint8_t config[10] = {};
  std::memcpy(config, mac_.data(), 6);
  uint16_t status = link_up_ ? kLinkUp : 0, pairs = 1;
  std::memcpy(config + 6, &status, 2);
  std::memcpy(config + 8, &pairs, 2);
  std::fill(data.begin(), data.end(), 0);
  if (offset < sizeof config) std::memcpy(data.data(), config + offset, std::min<size_t>(data.size(), sizeof config - offset));
}

void VirtioNet::activate() {
  active_ = true;
  uint64_t features = transport_->negotiatedFeatures();
  mergeable_ = features & kMrgRxbuf;
  // The tap may hand us only what the guest said it can take.
  (void)backend_->setOffloads(features & kGuestCsum, features & kGuestTso4, features & kGuestTso6, features & kGuestEcn);
  frame_length_ = 0;
  backend_->waitReadable(true);
}

void VirtioNet::reset() {
  active_ = false;
  frame_length_ = 0;
  waiting_writable_ = false;
  backend_->waitReadable(false);
  backend_->waitWritable(false);
  (void)backend_->setOffloads(false, false, false, false);
}

void VirtioNet::fail(const std::string& why) {
  // Broken means stopped: no tap event may move frames through these queues until a reset.
  bool was_active = active_;
  reset();
  if (was_active) transport_->fail(why);
}

Result<DeviceState> VirtioNet::saveState() const {
  StateWriter out;
  out.bytes(mac_);
  out.boolean(link_up_);
  return DeviceState{name(), kStateVersion, out.take()};
}

Status VirtioNet::loadState(const DeviceState& state) {
  if (auto st = checkState(state, name(), kStateVersion); !st) return st;
  StateReader in(state.bytes);
  auto mac = in.bytes();
  bool link_up = in.boolean();
  if (auto st = in.finish(name()); !st) return st;
  if (!std::equal(mac.begin(), mac.end(), mac_.begin(), mac_.end())) return Error(std::string(name()) + ": the state is for another MAC address");
  link_up_ = link_up;
  return {};
}

void VirtioNet::setLink(bool up) {
  if (up == link_up_) return;
  link_up_ = up;
  if (transport_) transport_->configChanged();
}

void VirtioNet::kick(uint16_t queue) {
  if (!active_) return;
  if (queue == kTxQueue) transmit();
  if (queue == kRxQueue) receive();
}

void VirtioNet::transmit() {
  if (!active_ || waiting_writable_ || ioStopped()) return;
  Virtqueue& queue = transport_->queue(kTxQueue);
  bool pushed = false;
  for (uint32_t served = 0;; ++served) {
    if (served == kickBudget(queue)) {
      transport_->kickAgain(kTxQueue);
      break;
    }
    auto got = queue.pop(tx_chain_);
    if (!got) return fail(got.error().message());
    if (!*got) {
      if (queue.enableNotifications()) continue;
      break;
    }
    const DescriptorChain& c = tx_chain_;
    if (link_up_) {
      std::vector<iovec>& iov = tx_iov_;
      iov.clear();
      for (const Buffer& b : c.readable) iov.push_back({b.data, b.length});
      ssize_t n = ::writev(backend_->fd(), iov.data(), static_cast<int>(iov.size()));
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        // The tap is full: try this frame again once it drains.
        queue.unpop(1);
        waiting_writable_ = true;
        backend_->waitWritable(true);
        break;
      }
      // Other errors (a malformed frame the kernel refused): the frame is dropped, as a NIC would.
    }
    (void)queue.push(c.head, 0);
    pushed = true;
  }
  if (pushed) transport_->signalUsed(kTxQueue);
}

void VirtioNet::receive() {
  if (!active_ || ioStopped()) return;
  Virtqueue& queue = transport_->queue(kRxQueue);
  bool pushed = false;
  for (;;) {
    if (frame_length_ == 0) {
      ssize_t n = ::read(backend_->fd(), frame_.data(), frame_.size());
      if (n <= 0) break;  // EAGAIN: nothing more now
      if (!link_up_ || static_cast<size_t>(n) < kHeaderSize) continue;  // link down: the frame is lost
      frame_length_ = static_cast<size_t>(n);
    }
    // Spread the frame over as many receive chains as it needs (one without MRG_RXBUF).
    size_t done = 0;
    uint16_t used = 0;
    std::vector<std::pair<uint16_t, uint32_t>>& completions = rx_completions_;
    completions.clear();
    // Where num_buffers' two bytes landed: the driver may spread the header over descriptors.
    uint8_t* num_buffers_at[2] = {nullptr, nullptr};
    while (done < frame_length_) {
      auto got = queue.pop(rx_chain_);
      if (!got) return fail(got.error().message());
      if (!*got) break;
      ++used;
      uint32_t written = 0;
      for (const Buffer& b : rx_chain_.writable) {
        size_t n = std::min<size_t>(b.length, frame_length_ - done);
        for (size_t k = 0; k < 2; ++k) {
          size_t offset = kNumBuffersOffset + k;
          if (offset >= done && offset < done + n) num_buffers_at[k] = b.data + (offset - done);
        }
        std::memcpy(b.data, frame_.data() + done, n);
        done += n;
        written += static_cast<uint32_t>(n);
        if (done == frame_length_) break;
      }
      completions.emplace_back(rx_chain_.head, written);
      if (!mergeable_) break;
    }
    if (done < frame_length_ && mergeable_) {
      // Not enough buffers for the whole frame: give the chains back, wait for the guest to post.
      // Notifications are asked for before the chains go back, so that only buffers beyond those
      // already seen count as new; asked after, the given-back chains would look new and this
      // loop would spin forever on the main thread.
      bool more = queue.enableNotifications();
      queue.unpop(used);
      if (more) continue;
      backend_->waitReadable(false);
      if (pushed) transport_->signalUsed(kRxQueue);
      return;
    }
    if (completions.empty()) {
      if (queue.enableNotifications()) continue;
      backend_->waitReadable(false);  // resumes on the guest's rx kick
      if (pushed) transport_->signalUsed(kRxQueue);
      return;
    }
    uint16_t buffers = static_cast<uint16_t>(completions.size());
    if (num_buffers_at[0]) *num_buffers_at[0] = static_cast<uint8_t>(buffers);
    if (num_buffers_at[1]) *num_buffers_at[1] = static_cast<uint8_t>(buffers >> 8);
    for (const auto& [head, written] : completions) (void)queue.push(head, written);
    pushed = true;
    frame_length_ = 0;
  }
  if (pushed) transport_->signalUsed(kRxQueue);
  backend_->waitReadable(true);
}

}  // namespace vmmd::virtio
