// libFuzzer: a hostile driver of a whole virtio-mmio transport (microvm). The input picks a
// device (rng, blk on a RAM disk, console with one port, net on a backend that drops every frame)
// and then a sequence of operations: register writes of any width and offset (mostly the 32-bit
// control registers: selectors, sizes, ring addresses, ready, status, interrupt acknowledge,
// QueueNotify with any value), reads, device configuration writes, guest RAM writes, kicks and
// the extra passes the device asks for. ASan and UBSan check memory and arithmetic; the fuzzer
// checks that no kick runs longer than a bound and that the interrupt line always follows
// InterruptStatus (high exactly when a cause is pending).
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tests/vmm/devices/virtio/fuzz_devices.h"
#include "vmm/devices/virtio/virtio_mmio.h"

namespace {

using namespace vmmd;
using namespace vmmd::virtio;

constexpr uint64_t kRam = 2 << 20;
constexpr uint64_t kBase = 0xFEB00000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto memory = GuestMemory::create(kRam);
  if (!memory.ok() || size < 2) return 0;
  fuzzing::Input in{data, size};
  std::memset(memory->hostAddress(0, kRam), 0, kRam);
  bool line = false;
  auto mmio = VirtioMmio::create(fuzzing::makeDevice(static_cast<uint8_t>(in.take(1))), *memory, kBase,
                                 InterruptLine(16, [&line](uint32_t, bool level) { line = level; }));
  if (!mmio) return 0;
  fuzzing::Loop loop;
  (*mmio)->watchNotifications(loop.watcher());
  auto readStatus = [&] {
    uint32_t value = 0;
    (*mmio)->read(VirtioMmio::kInterruptStatus, {reinterpret_cast<uint8_t*>(&value), 4});
    return value;
  };
  for (int op = 0; op < 256 && !in.empty(); ++op) {
    uint8_t code = static_cast<uint8_t>(in.take(1));
    switch (code % 8) {
      case 0:
      case 1: {  // a control register, 32 bits (what a driver does), or anything anywhere
        uint64_t offset = in.take(2) % VirtioMmio::kWindowSize;
        unsigned width = 4;
        if (code & 0x80) {
          width = 1u << (in.take(1) % 4);
        } else {
          offset = offset % VirtioMmio::kConfigOffset & ~3ull;
        }
        uint64_t value = in.take(width);
        (*mmio)->write(offset, {reinterpret_cast<const uint8_t*>(&value), width});
        break;
      }
      case 2: {
        uint64_t offset = in.take(2) % VirtioMmio::kWindowSize;
        uint8_t out[8];
        (*mmio)->read(offset, {out, 1u << (in.take(1) % 4)});
        break;
      }
      case 3:
      case 4:
        fuzzing::writeGuestRam(*memory, kRam, in, code & 0x80);
        break;
      case 5:
        loop.kick(in.take(1));
        break;
      case 6:
        loop.kickAll();
        break;
      default:
        (*mmio)->resetDevice();
        break;
    }
    if (line != (readStatus() != 0)) {
      std::fprintf(stderr, "interrupt line %d with InterruptStatus %#x\n", line, readStatus());
      std::abort();
    }
  }
  (*mmio)->resetDevice();
  return 0;
}
