// Writes a migration stream (stream_format.h) to a sink: the header, then sections in the order
// the caller sends them, each with its CRC32. Counts what went out for query-migrate.
#pragma once

#include <span>
#include <vector>

#include "base/result.h"
#include "vmm/migration/byte_channel.h"
#include "vmm/migration/machine_summary.h"
#include "vmm/machine/machine_state.h"
#include "vmm/migration/stream_format.h"

namespace vmmd::migration {

class StreamWriter {
 public:
  explicit StreamWriter(ByteSink& sink) : sink_(sink) {}

  // `flags`: 0, or kFlagMappedRam for a mapped-ram file (mapped_ram.h writes its RAM).
  Status header(uint32_t flags = 0);
  Status summary(const MachineSummary& summary);
  // One RAM section: the pages starting at guest address `address` (page-aligned, at most
  // kRamChunkBytes). Runs of zero pages go as a count, not as bytes. Returns how many of them
  // were zero pages.
  Result<uint64_t> ram(uint32_t pass, uint64_t address, std::span<const uint8_t> pages);
  Status state(const SectionState& section);
  Status end();
  // mapped-ram's sections (mapped_ram.h encodes their payloads).
  Status raw(SectionType type, std::span<const uint8_t> payload) { return section(type, payload); }

  uint64_t bytesWritten() const { return bytes_written_; }

 private:
  Status section(SectionType type, std::span<const uint8_t> payload);

  ByteSink& sink_;
  uint64_t bytes_written_ = 0;
  std::vector<uint8_t> buffer_;  // a RAM section's payload
  std::vector<uint8_t> framed_;  // a section with its header and checksum
};

}  // namespace vmmd::migration
