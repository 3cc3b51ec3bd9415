// libFuzzer: a hostile driver of a whole virtio-pci function. The input picks a device (rng,
// blk on a RAM disk, console with one port, net on a backend that drops every frame) and then a
// sequence of operations: BAR0 writes and reads (common configuration, device configuration,
// notify, MSI-X), PCI configuration writes (BAR moves, command, MSI-X control), guest RAM
// writes (rings, descriptors, indirect tables, buffers), kicks and the extra passes the device
// asks for. ASan and UBSan check memory and arithmetic; the fuzzer checks that no kick, however
// the rings are set up, runs longer than a bound (the device yields after a queue's worth).
#include <cstring>

#include "tests/vmm/devices/virtio/fuzz_devices.h"
#include "vmm/devices/virtio/virtio_pci.h"

namespace {

using namespace vmmd;
using namespace vmmd::virtio;

constexpr uint64_t kRam = 2 << 20;
constexpr uint64_t kBarAddress = 0xC0000000;

using fuzzing::Input;
using fuzzing::makeDevice;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto memory = GuestMemory::create(kRam);
  IrqRouting routing;  // per input: each transport takes GSIs for its vectors
  if (!memory.ok() || size < 2) return 0;
  Input in{data, size};
  std::memset(memory->hostAddress(0, kRam), 0, kRam);
  auto pci = VirtioPci::create(makeDevice(static_cast<uint8_t>(in.take(1))), *memory, routing, kBarAddress);
  if (!pci) return 0;
  fuzzing::Loop loop;
  (*pci)->watchNotifications(loop.watcher());
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
      case 5:
        fuzzing::writeGuestRam(*memory, kRam, in, code & 0x80);
        break;
      case 6:
        loop.kick(in.take(1));
        break;
      default:
        loop.kickAll();
        break;
    }
  }
  (*pci)->resetDevice();
  return 0;
}
