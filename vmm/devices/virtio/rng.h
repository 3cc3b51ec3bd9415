// virtio-rng (entropy device, virtio 1.x section 5.4): fills every buffer the driver offers with
// bytes from the host's /dev/urandom.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace vmmd::virtio {

class VirtioRng : public VirtioDevice {
 public:
  static Result<std::unique_ptr<VirtioRng>> create(const std::string& source = "/dev/urandom");
  explicit VirtioRng(UniqueFd source) : source_(std::move(source)) {}

  uint16_t deviceType() const override { return 4; }
  uint32_t pciClass() const override { return 0x00FF00; }
  Names names() const override { return {"virtio-rng-pci", "virtio-rng-device"}; }
  uint64_t deviceFeatures() const override { return 0; }
  uint16_t queueCount() const override { return 1; }
  void activate() override { active_ = true; }
  void kick(uint16_t queue) override;
  void reset() override { active_ = false; }
  // The entropy device has no state of its own beyond the transport's: an empty version-1 state.
  Result<DeviceState> saveState() const override;
  Status loadState(const DeviceState& state) override;

 private:
  UniqueFd source_;
};

}  // namespace vmmd::virtio
