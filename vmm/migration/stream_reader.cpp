#include "vmm/migration/stream_reader.h"

#include <zlib.h>

#include <bit>
#include <cstring>

#include "vmm/migration/mapped_ram.h"
#include "vmm/migration/wire.h"

namespace vmmd::migration {
namespace {

using wire::loadU32;
using wire::loadU64;

const char* typeName(SectionType type) {
  switch (type) {
    case SectionType::Summary: return "summary";
    case SectionType::Ram: return "RAM";
    case SectionType::State: return "state";
    case SectionType::End: return "end";
    case SectionType::RamLayout: return "RAM layout";
    case SectionType::RamBitmap: return "RAM bitmap";
  }
  return "unknown";
}

}  // namespace

Status StreamLoader::header() {
  uint8_t head[16];
  if (auto st = source_.read(head); !st) return st;
  offset_ += sizeof head;
  if (std::memcmp(head, kStreamMagic, sizeof kStreamMagic) != 0) return Error("migration stream: not a vmm migration stream (bad magic)");
  uint32_t version = loadU32(head + 8);
  if (version != kStreamVersion) {
    return Error("migration stream: version " + std::to_string(version) + " is not supported (this vmm reads version " +
                 std::to_string(kStreamVersion) + ")");
  }
  flags_ = loadU32(head + 12);
  if ((flags_ & ~kFlagMappedRam) != 0) return Error("migration stream: unknown header flags " + std::to_string(flags_));
  return {};
}

Result<StreamLoader::Section> StreamLoader::next() {
  uint64_t at = offset_;
  uint8_t head[8];
  if (auto st = source_.read(head); !st) return st.error();
  uint32_t type = loadU32(head);
  uint32_t length = loadU32(head + 4);
  if (type < static_cast<uint32_t>(SectionType::Summary) || type > static_cast<uint32_t>(SectionType::RamBitmap)) {
    return Error("migration stream: unknown section type " + std::to_string(type) + " at byte " + std::to_string(at));
  }
  if (length > kMaxSectionPayload) {
    return Error("migration stream: section at byte " + std::to_string(at) + " claims " + std::to_string(length) + " bytes");
  }
  Section section{static_cast<SectionType>(type), std::vector<uint8_t>(length)};
  if (auto st = source_.read(section.payload); !st) return st.error();
  uint8_t tail[4];
  if (auto st = source_.read(tail); !st) return st.error();
  offset_ += sizeof head + length + sizeof tail;
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, head, sizeof head);
  // (zlib's crc32 of a null buffer is its initial value, not a no-op: an empty payload adds nothing)
  if (length > 0) crc = crc32(crc, section.payload.data(), static_cast<uInt>(length));
  if (static_cast<uint32_t>(crc) != loadU32(tail)) {
    return Error(std::string("migration stream: checksum mismatch in the ") + typeName(section.type) + " section at byte " +
                 std::to_string(at));
  }
  return section;
}

uint8_t* StreamLoader::hostRange(uint64_t address, uint64_t length) const {
  for (const auto& region : ram_) {
    if (address >= region.guest_address && length <= region.size && address - region.guest_address <= region.size - length) {
      return region.host + (address - region.guest_address);
    }
  }
  return nullptr;
}

Status StreamLoader::applyRam(std::span<const uint8_t> payload, LoadedStream& loaded) {
  if (payload.size() < 4) return Error("migration stream: RAM section without a pass number");
  uint32_t pass = loadU32(payload.data());
  loaded.passes = std::max(loaded.passes, pass + 1);
  size_t at = 4;
  while (at < payload.size()) {
    if (payload.size() - at < 13) return Error("migration stream: RAM section ends inside a page run");
    uint64_t address = loadU64(payload.data() + at);
    uint64_t count = loadU32(payload.data() + at + 8);
    auto encoding = payload[at + 12];
    at += 13;
    uint64_t length = count * kPageSize;
    uint8_t* host = address % kPageSize == 0 ? hostRange(address, length) : nullptr;
    if (!host || count == 0) {
      return Error("migration stream: " + std::to_string(count) + " pages at guest address " + std::to_string(address) +
                   " are not inside this machine's RAM");
    }
    if (encoding == static_cast<uint8_t>(PageEncoding::Zero)) {
      // Only pages that are not zero already: reading an untouched page maps the kernel's zero
      // page, writing it would allocate memory (a fresh destination's RAM is mostly untouched, and
      // an idle guest's RAM mostly zero: a 1 GiB restore in the nested tier went from 9 s of
      // writing zeros to reading them). QEMU's loader does the same.
      for (uint64_t page = 0; page < count; ++page) {
        uint8_t* at = host + page * kPageSize;
        if (!wire::isZeroPage(at)) std::memset(at, 0, kPageSize);
      }
    } else if (encoding == static_cast<uint8_t>(PageEncoding::Data)) {
      if (payload.size() - at < length) return Error("migration stream: RAM section ends inside page data");
      std::memcpy(host, payload.data() + at, length);
      at += length;
    } else {
      return Error("migration stream: unknown page encoding " + std::to_string(encoding));
    }
    loaded.pages += count;
  }
  return {};
}

Status StreamLoader::applyLayout(std::span<const uint8_t> payload) {
  if (!(flags_ & kFlagMappedRam)) return Error("migration stream: a RAM layout section in a stream without mapped-ram");
  if (have_layout_) return Error("migration stream: a second RAM layout section");
  auto layout = RamLayout::decode(payload);
  if (!layout) return layout.error();
  if (auto st = checkLayout(*layout, ram_, offset_); !st) return st.error().withContext("the destination does not match the source");
  if (!map_) return Error("a mapped-ram stream must be read from a regular file (file:PATH, or fd: naming one)");
  have_layout_ = true;
  for (const auto& region : layout->regions) layout_offsets_.push_back(region.data_offset);
  bitmap_pages_.assign(ram_.size(), 0);
  // The RAM data is mapped at the end, not read: on to the bitmaps and device state.
  if (auto st = source_.skip(layout->state_offset - offset_); !st) return st;
  offset_ = layout->state_offset;
  return {};
}

Status StreamLoader::applyBitmap(std::span<const uint8_t> payload, LoadedStream& loaded) {
  if (!have_layout_) return Error("migration stream: a RAM bitmap section before the RAM layout");
  auto chunk = BitmapChunk::decode(payload);
  if (!chunk) return chunk.error();
  if (chunk->region >= ram_.size()) return Error("mapped-ram: a bitmap for RAM region #" + std::to_string(chunk->region) + ", which does not exist");
  uint64_t pages = ram_[chunk->region].size / kPageSize;
  uint64_t& covered = bitmap_pages_[chunk->region];
  if (chunk->first_page != covered || chunk->words.size() > (pages - covered + 63) / 64) {
    return Error("mapped-ram: the bitmap of RAM region #" + std::to_string(chunk->region) + " is out of order or too long (page " +
                 std::to_string(chunk->first_page) + ")");
  }
  for (uint64_t word : chunk->words) loaded.pages += static_cast<uint64_t>(std::popcount(word));
  covered = std::min(pages, covered + chunk->words.size() * 64);
  return {};
}

Status StreamLoader::mapRam() {
  for (size_t r = 0; r < ram_.size(); ++r) {
    if (bitmap_pages_[r] != ram_[r].size / kPageSize) return Error("mapped-ram: the bitmap of RAM region #" + std::to_string(r) + " is incomplete");
  }
  for (size_t r = 0; r < ram_.size(); ++r) {
    if (auto st = map_(ram_[r], layout_offsets_[r]); !st) return st;
  }
  return {};
}

Result<LoadedStream> StreamLoader::load() {
  if (auto st = header(); !st) return st.error();
  LoadedStream loaded;
  bool have_summary = false;
  while (true) {
    auto section = next();
    if (!section) return section.error();
    if (!have_summary && section->type != SectionType::Summary) {
      return Error(std::string("migration stream: a ") + typeName(section->type) + " section before the machine summary");
    }
    switch (section->type) {
      case SectionType::Summary: {
        if (have_summary) return Error("migration stream: a second machine summary");
        auto summary = MachineSummary::decode(section->payload);
        if (!summary) return summary.error().withContext("migration stream");
        if (auto st = checkCompatible(*summary, local_); !st) return st.error().withContext("the destination does not match the source");
        loaded.source = std::move(*summary);
        have_summary = true;
        break;
      }
      case SectionType::RamLayout:
        if (auto st = applyLayout(section->payload); !st) return st.error();
        break;
      case SectionType::RamBitmap:
        if (!loaded.machine.sections.empty()) return Error("migration stream: a RAM bitmap after the device states");
        if (auto st = applyBitmap(section->payload, loaded); !st) return st.error();
        break;
      case SectionType::Ram:
        if (flags_ & kFlagMappedRam) return Error("migration stream: a RAM section in a mapped-ram stream");
        if (!loaded.machine.sections.empty()) return Error("migration stream: RAM after the device states");
        if (auto st = applyRam(section->payload, loaded); !st) return st.error();
        break;
      case SectionType::State: {
        if ((flags_ & kFlagMappedRam) && !have_layout_) return Error("migration stream: device state before the RAM layout");
        StateReader in(section->payload);
        SectionState state;
        state.id = in.string();
        state.state = in.state();
        if (auto st = in.finish("migration stream: state section"); !st) return st.error();
        loaded.machine.sections.push_back(std::move(state));
        break;
      }
      case SectionType::End:
        if (!section->payload.empty()) return Error("migration stream: the end marker has a payload");
        if (flags_ & kFlagMappedRam) {
          if (!have_layout_) return Error("migration stream: a mapped-ram stream without its RAM layout");
          if (auto st = mapRam(); !st) return st.error();
          loaded.mapped_ram = true;
        }
        loaded.bytes_read = offset_;
        return loaded;
    }
  }
}

}  // namespace vmmd::migration
