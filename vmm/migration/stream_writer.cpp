#include "vmm/migration/stream_writer.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "vmm/migration/wire.h"

namespace vmmd::migration {
using wire::appendU32;
using wire::appendU64;
using wire::isZeroPage;

Status StreamWriter::header(uint32_t flags) {
  std::vector<uint8_t> out(std::begin(kStreamMagic), std::end(kStreamMagic));
  appendU32(out, kStreamVersion);
  appendU32(out, flags);
  bytes_written_ += out.size();
  return sink_.write(out);
}

Status StreamWriter::section(SectionType type, std::span<const uint8_t> payload) {
  if (payload.size() > kMaxSectionPayload) return Error("migration stream: a section of " + std::to_string(payload.size()) + " bytes is too large");
  // One write per section: the sink's syscalls and rate accounting are per write.
  framed_.clear();
  appendU32(framed_, static_cast<uint32_t>(type));
  appendU32(framed_, static_cast<uint32_t>(payload.size()));
  framed_.insert(framed_.end(), payload.begin(), payload.end());
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, framed_.data(), static_cast<uInt>(framed_.size()));
  appendU32(framed_, static_cast<uint32_t>(crc));
  if (auto st = sink_.write(framed_); !st) return st;
  bytes_written_ += framed_.size();
  return {};
}

Status StreamWriter::summary(const MachineSummary& summary) { return section(SectionType::Summary, summary.encode()); }

Result<uint64_t> StreamWriter::ram(uint32_t pass, uint64_t address, std::span<const uint8_t> pages) {
  if (address % kPageSize || pages.size() % kPageSize || pages.size() > kRamChunkBytes) {
    return Error("migration stream: RAM run at " + std::to_string(address) + " is not whole pages");
  }
  buffer_.clear();
  appendU32(buffer_, pass);
  uint64_t zero_pages = 0;
  size_t count = pages.size() / kPageSize;
  size_t i = 0;
  while (i < count) {
    bool zero = isZeroPage(pages.data() + i * kPageSize);
    size_t j = i + 1;
    while (j < count && isZeroPage(pages.data() + j * kPageSize) == zero) ++j;
    appendU64(buffer_, address + i * kPageSize);
    appendU32(buffer_, static_cast<uint32_t>(j - i));
    buffer_.push_back(static_cast<uint8_t>(zero ? PageEncoding::Zero : PageEncoding::Data));
    if (zero) {
      zero_pages += j - i;
    } else {
      buffer_.insert(buffer_.end(), pages.data() + i * kPageSize, pages.data() + j * kPageSize);
    }
    i = j;
  }
  if (auto st = section(SectionType::Ram, buffer_); !st) return st.error();
  return zero_pages;
}

Status StreamWriter::state(const SectionState& state) {
  StateWriter out;
  out.string(state.id);
  out.state(state.state);
  return section(SectionType::State, out.take());
}

Status StreamWriter::end() { return section(SectionType::End, {}); }

}  // namespace vmmd::migration
