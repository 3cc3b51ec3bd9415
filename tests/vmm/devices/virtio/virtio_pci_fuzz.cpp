// libFuzzer: a hostile driver of a whole virtio-pci function. The input picks a device (rng,
// blk on a RAM disk, console with one port, net on a backend that drops every frame) and then a
// sequence of operations: BAR0 writes and reads (common configuration, device configuration,
// notify, MSI-X), PCI configuration writes (BAR moves, command, MSI-X control), guest RAM
// writes (rings, descriptors, indirect tables, buffers), kicks and the extra passes the device
// asks for. ASan and UBSan check memory and arithmetic; the fuzzer checks that no kick, however
// the rings are set up, runs longer than a bound (the device yields after a queue's worth).
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
#include "vmm/devices/virtio/virtio_pci.h"

namespace {

using namespace vmmd;
using namespace vmmd::virtio;

constexpr uint64_t kRam = 2 << 20;
constexpr uint64_t kBarAddress = 0xC0000000;

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto memory = GuestMemory::create(kRam);
  IrqRouting routing;  // per input: each transport takes GSIs for its vectors
  if (!memory.ok() || size < 2) return 0;
  Input in{data, size};
  std::memset(memory->hostAddress(0, kRam), 0, kRam);
  auto pci = VirtioPci::create(makeDevice(static_cast<uint8_t>(in.take(1))), *memory, routing, kBarAddress);
  if (!pci) return 0;
  std::vector<std::function<void()>> notify;  // each queue's eventfd callback, as the loop calls it
  (*pci)->watchNotifications([&](int, std::function<void()> on_readable) { notify.push_back(std::move(on_readable)); });
  auto kick = [&](size_t queue) {
    auto started = std::chrono::steady_clock::now();
    notify[queue % notify.size()]();
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(2)) {
      std::fprintf(stderr, "one kick ran longer than 2 s\n");
      std::abort();
    }
  };
  // Guest-controlled regions: everything the fuzzer writes lands in the first 64 KiB of RAM
  // (rings, tables and buffers all point there at random) or, with a wide stride, anywhere.
  for (int op = 0; op < 256 && !in.empty(); ++op) {
    uint8_t code = static_cast<uint8_t>(in.take(1));
    switch (code % 8) {
      case 0:
      case 1: {  // BAR0 write: mostly the common configuration and notify areas
        uint64_t offset = in.take(2) % VirtioPci::kBarSize;
        if (code & 0x80) offset %= 0x40;
        unsigned width = 1u << (in.take(1) % 4);
        uint64_t value = in.take(width);
        (*pci)->barWrite(0, offset, {reinterpret_cast<const uint8_t*>(&value), width});
        break;
      }
      case 2: {  // BAR0 read (the ISR is read-to-clear)
        uint64_t offset = in.take(2) % VirtioPci::kBarSize;
        uint8_t out[8];
        (*pci)->barRead(0, offset, {out, 1u << (in.take(1) % 4)});
        break;
      }
      case 3: {  // PCI configuration write: BAR moves, command register, MSI-X enable/mask
        auto offset = static_cast<uint16_t>(in.take(1) * 4 % 256);
        unsigned width = 1u << (in.take(1) % 3);
        (*pci)->configWrite(static_cast<uint16_t>(offset & ~(width - 1)), width, static_cast<uint32_t>(in.take(4)));
        break;
      }
      case 4:
      case 5: {  // guest RAM
        uint64_t address = (code & 0x80) ? in.take(3) % kRam : in.take(2);
        uint64_t value = in.take(8);
        size_t n = std::min<uint64_t>(8, kRam - address);
        std::memcpy(memory->hostAddress(address, n), &value, n);
        break;
      }
      case 6:
        kick(in.take(1));
        break;
      default:  // the passes a device asked for (kickAgain wrote its eventfd): the loop's next turns
        for (size_t q = 0; q < notify.size(); ++q) kick(q);
        break;
    }
  }
  (*pci)->resetDevice();
  return 0;
}
