// Reads a migration stream (stream_format.h) into a destination: checks the header, each
// section's checksum and size, that the source machine matches this one (before any page lands),
// writes RAM pages into the guest's RAM regions and collects the State sections. Any error stops
// the load with a message saying what was wrong and where; nothing is applied to vCPUs or devices
// here, so a stream that fails half-way leaves no half-loaded machine running.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "base/result.h"
#include "vmm/migration/byte_channel.h"
#include "vmm/migration/machine_summary.h"
#include "vmm/machine/machine_state.h"
#include "vmm/migration/stream_format.h"

namespace vmmd::migration {

// A range of guest RAM and where the destination keeps it.
struct RamRegion {
  uint64_t guest_address;
  uint64_t size;
  uint8_t* host;
};

struct LoadedStream {
  MachineSummary source;
  MachineState machine;  // every State section, in stream order
  uint32_t passes = 0;      // the highest RAM pass number seen, plus one
  uint64_t pages = 0;       // pages written (data and zero); mapped-ram: pages with data
  bool mapped_ram = false;  // RAM was mapped from the file, not copied
  uint64_t bytes_read = 0;  // the whole stream
};

// Maps one RAM region from a mapped-ram file: the region and its data's offset from the
// stream's first byte. Only a loader reading a regular file has one.
using MapRegion = std::function<Status(const RamRegion& region, uint64_t data_offset)>;

class StreamLoader {
 public:
  StreamLoader(ByteSource& source, MachineSummary local, std::span<const RamRegion> ram, MapRegion map = {})
      : source_(source), local_(std::move(local)), ram_(ram), map_(std::move(map)) {}

  Result<LoadedStream> load();

 private:
  struct Section {
    SectionType type;
    std::vector<uint8_t> payload;
  };
  Status header();
  Result<Section> next();
  Status applyRam(std::span<const uint8_t> payload, LoadedStream& loaded);
  // mapped-ram: the layout section (then skips the RAM data), each bitmap section, and at the
  // end the mapping of every region.
  Status applyLayout(std::span<const uint8_t> payload);
  Status applyBitmap(std::span<const uint8_t> payload, LoadedStream& loaded);
  Status mapRam();
  uint8_t* hostRange(uint64_t address, uint64_t length) const;

  ByteSource& source_;
  MachineSummary local_;
  std::span<const RamRegion> ram_;
  MapRegion map_;
  uint64_t offset_ = 0;  // of the next byte, for messages
  uint32_t flags_ = 0;
  bool have_layout_ = false;
  std::vector<uint64_t> layout_offsets_;  // each region's data offset (mapped-ram)
  std::vector<uint64_t> bitmap_pages_;    // each region's pages covered by bitmaps so far
};

}  // namespace vmmd::migration
