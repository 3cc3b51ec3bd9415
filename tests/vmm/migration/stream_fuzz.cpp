// The migration stream loader under hostile input. Half the inputs are loaded as raw bytes (the
// framing, lengths and checksums); the other half are sections the harness frames with correct
// checksums after a valid header and summary, so the fuzzer reaches the RAM and state parsers
// instead of stopping at the CRC. Under ASan/UBSan a write outside the RAM buffer is a crash.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "vmm/migration/stream_reader.h"
#include "vmm/migration/stream_writer.h"

namespace {

using namespace vmmd::migration;

constexpr uint64_t kRam = 16 * kPageSize;

MachineSummary localSummary() {
  MachineSummary s;
  s.machine_type = "pc";
  s.ram_bytes = kRam;
  s.vcpus = 1;
  s.devices = {{"virtio-rng-pci", "rng0"}};
  return s;
}

void putU32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// Header and summary from the writer, then each (type byte, 16-bit length, payload) of the
// input as a section with a correct CRC.
std::vector<uint8_t> framed(const uint8_t* data, size_t size) {
  MemorySink sink;
  StreamWriter writer(sink);
  (void)writer.header();
  (void)writer.summary(localSummary());
  std::vector<uint8_t> out = std::move(sink.data);
  size_t at = 0;
  while (size - at >= 3) {
    uint32_t type = data[at] % 6;
    size_t length = std::min<size_t>(size - at - 3, data[at + 1] | size_t{data[at + 2]} << 8);
    at += 3;
    std::vector<uint8_t> head;
    putU32(head, type);
    putU32(head, static_cast<uint32_t>(length));
    uLong crc = crc32(crc32(0L, Z_NULL, 0), head.data(), 8);
    if (length > 0) crc = crc32(crc, data + at, static_cast<uInt>(length));
    out.insert(out.end(), head.begin(), head.end());
    out.insert(out.end(), data + at, data + at + length);
    putU32(out, static_cast<uint32_t>(crc));
    at += length;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<uint8_t> stream = (data[0] & 1) ? framed(data + 1, size - 1) : std::vector<uint8_t>(data + 1, data + size);
  std::vector<uint8_t> ram(kRam);
  RamRegion regions[] = {{0, kRam / 2, ram.data()}, {1ull << 32, kRam / 2, ram.data() + kRam / 2}};
  MemorySource source(stream);
  auto loaded = StreamLoader(source, localSummary(), regions).load();
  (void)loaded;
  return 0;
}
