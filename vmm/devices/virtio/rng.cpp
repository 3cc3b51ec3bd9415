#include "vmm/devices/virtio/rng.h"

#include <fcntl.h>
#include <unistd.h>

namespace vmmd::virtio {

Result<std::unique_ptr<VirtioRng>> VirtioRng::create(const std::string& source) {
  UniqueFd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::fromErrno("virtio-rng: " + source);
  return std::make_unique<VirtioRng>(std::move(fd));
}

Result<DeviceState> VirtioRng::saveState() const { return DeviceState{name(), 1, {}}; }

Status VirtioRng::loadState(const DeviceState& state) {
  if (auto st = checkState(state, name(), 1); !st) return st;
  return StateReader(state.bytes).finish(name());
}

void VirtioRng::kick(uint16_t queue_index) {
  if (!active_ || queue_index != 0) return;
  Virtqueue& queue = transport_->queue(0);
  for (uint32_t served = 0;; ++served) {
    if (served == kickBudget(queue)) {
      transport_->kickAgain(0);
      break;
    }
    auto chain = queue.pop();
    if (!chain) {
      transport_->fail(chain.error().message());
      return;
    }
    if (!chain->has_value()) {
      if (queue.enableNotifications()) continue;  // more arrived while we looked
      break;
    }
    uint32_t written = 0;
    for (const Buffer& buffer : (*chain)->writable) {
      ssize_t n = buffer.length ? ::read(source_.get(), buffer.data, buffer.length) : 0;
      if (n < 0) break;  // a short answer is fine: the driver asks again
      written += static_cast<uint32_t>(n);
      if (static_cast<uint32_t>(n) < buffer.length) break;
    }
    if (auto st = queue.push((*chain)->head, written); !st) {
      transport_->fail(st.error().message());
      return;
    }
  }
  transport_->signalUsed(0);
}

}  // namespace vmmd::virtio
