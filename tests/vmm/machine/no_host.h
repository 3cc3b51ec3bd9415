// A DeviceHost for tests of the device factory and the machine: it opens no port and no tap,
// runs block I/O inline, and drops events; a test overrides what it wants to see.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>

#include "vmm/devices/device_host.h"

namespace vmmd::testing {

// Opens no port and no tap; events are dropped.
struct NoHost : DeviceHost {
  void watchFd(int, std::function<void()>) override {}
  void runIo(std::function<void()> work, std::function<void()> done) override {
    work();
    done();
  }
  Result<std::unique_ptr<virtio::PortBackend>> openPort(const std::string& id) override {
    return Error("chardev '" + id + "' is not open in this test");
  }
  Result<std::unique_ptr<virtio::NetBackend>> openNetdev(const config::NetdevConfig& netdev) override {
    return Error("netdev '" + netdev.id + "' is not open in this test");
  }
  const FileOpener& files() const override { return plainFiles(); }
  void powerRequest(PowerRequest) override {}
  void vcpuFailed(const std::string&) override {}
  void serialOutput(std::span<const uint8_t>) override {}
  void blockIoError(const std::string&, const std::string&, const std::string&) override {}
  void portChanged(const std::string&, bool) override {}
};

}  // namespace vmmd::testing
