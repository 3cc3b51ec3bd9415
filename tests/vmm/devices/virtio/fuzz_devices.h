// The devices and input reader both virtio transport fuzzers use (virtio_pci_fuzz,
// virtio_mmio_fuzz): each device model on a back-end that needs no files, sockets or taps.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "storage/block_device.h"
#include "vmm/devices/virtio/blk.h"
#include "vmm/devices/virtio/console.h"
#include "vmm/devices/virtio/net.h"
#include "vmm/devices/virtio/rng.h"
#include "vmm/devices/virtio/transport_common.h"
#include "vmm/platform/guest_memory.h"

namespace vmmd::virtio::fuzzing {

// A 1 MiB disk in memory: the I/O path without files.
class RamDisk : public storage::BlockDevice {
 public:
  Result<void> read(uint64_t offset, std::span<uint8_t> buf) override {
    if (offset > bytes_.size() || buf.size() > bytes_.size() - offset) return Error("out of range");
    std::memcpy(buf.data(), bytes_.data() + offset, buf.size());
    return {};
  }
  Result<void> write(uint64_t offset, std::span<const uint8_t> buf) override {
    if (offset > bytes_.size() || buf.size() > bytes_.size() - offset) return Error("out of range");
    std::memcpy(bytes_.data() + offset, buf.data(), buf.size());
    return {};
  }
  Result<void> writeZeroes(uint64_t offset, uint64_t length) override {
    if (offset > bytes_.size() || length > bytes_.size() - offset) return Error("out of range");
    std::memset(bytes_.data() + offset, 0, length);
    return {};
  }
  Result<void> discard(uint64_t offset, uint64_t length) override { return writeZeroes(offset, length); }
  Result<void> flush() override { return {}; }
  Result<void> resize(uint64_t) override { return Error("fixed size"); }
  uint64_t size() const override { return bytes_.size(); }
  bool readOnly() const override { return false; }
  storage::ImageFormat format() const override { return storage::ImageFormat::Raw; }
  const std::string& path() const override { return path_; }
  Result<storage::Extent> blockStatus(uint64_t offset, uint64_t max_length) override {
    (void)offset;
    return storage::Extent{storage::ExtentKind::Data, max_length};
  }

 private:
  std::vector<uint8_t> bytes_ = std::vector<uint8_t>(1 << 20);
  std::string path_ = "ram";
};

// A connected port host end that takes every byte and has a few to give.
class SinkPort : public PortBackend {
 public:
  size_t tryWrite(std::span<const uint8_t> bytes) override { return bytes.size(); }
  size_t available() const override { return left_; }
  size_t tryRead(std::span<uint8_t> out) override {
    size_t n = std::min(out.size(), left_);
    std::memset(out.data(), 'x', n);
    left_ -= n;
    return n;
  }
  void waitWritable() override {}
  void waitReadable(bool) override {}
  bool connected() const override { return true; }

 private:
  size_t left_ = 4096;
};

class DropNet : public NetBackend {
 public:
  int fd() const override { return -1; }  // every frame dropped (EBADF), as a NIC drops bad ones
  Status setOffloads(bool, bool, bool, bool) override { return {}; }
  void waitReadable(bool) override {}
  void waitWritable(bool) override {}
};

std::unique_ptr<VirtioDevice> makeDevice(uint8_t which) {
  switch (which % 4) {
    case 0: {
      auto rng = VirtioRng::create("/dev/zero");
      return rng ? std::move(*rng) : nullptr;
    }
    case 1:
      // Requests are served at once, on this thread: the executor runs the work and its completion.
      return std::make_unique<VirtioBlk>(
          std::make_shared<RamDisk>(), "fuzz", false, [](std::function<void()> work, std::function<void()> done) {
            work();
            done();
          },
          nullptr);
    case 2: {
      std::vector<PortSpec> ports;
      ports.push_back({"port1", "org.fuzz.0", false, 1, std::make_unique<SinkPort>()});
      return std::make_unique<VirtioConsole>(2, std::move(ports), [](const std::string&, bool) {});
    }
    default:
      return std::make_unique<VirtioNet>(std::make_unique<DropNet>(), std::array<uint8_t, 6>{0x52, 0x54, 0, 1, 2, 3});
  }
}

struct Input {
  const uint8_t* data;
  size_t size;
  bool empty() const { return size == 0; }
  uint64_t take(size_t bytes) {
    uint64_t value = 0;
    size_t n = std::min(bytes, size);
    std::memcpy(&value, data, n);
    data += n;
    size -= n;
    return value;
  }
};

// The main loop's side of a transport: each queue's notify callback, run as the loop would,
// with the bound every kick must keep (a device yields after a queue's worth of chains).
class Loop {
 public:
  FdWatcher watcher() {
    return [this](int, std::function<void()> on_readable) { notify_.push_back(std::move(on_readable)); };
  }
  void kick(size_t queue) {
    if (notify_.empty()) return;
    auto started = std::chrono::steady_clock::now();
    notify_[queue % notify_.size()]();
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(2)) {
      std::fprintf(stderr, "one kick ran longer than 2 s\n");
      std::abort();
    }
  }
  // The passes a device asked for (kickAgain wrote its eventfd): the loop's next turns.
  void kickAll() {
    for (size_t q = 0; q < notify_.size(); ++q) kick(q);
  }

 private:
  std::vector<std::function<void()>> notify_;
};

// Guest RAM the driver writes (rings, descriptors, indirect tables, buffers): mostly the first
// 64 KiB, where the rings point at random, or with `wide` anywhere in `ram` bytes.
inline void writeGuestRam(GuestMemory& memory, uint64_t ram, Input& in, bool wide) {
  uint64_t address = wide ? in.take(3) % ram : in.take(2);
  uint64_t value = in.take(8);
  size_t n = std::min<uint64_t>(8, ram - address);
  std::memcpy(memory.hostAddress(address, n), &value, n);
}

}  // namespace vmmd::virtio::fuzzing
