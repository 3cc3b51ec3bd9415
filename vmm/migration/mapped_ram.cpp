#include "vmm/migration/mapped_ram.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <string>

#include "base/hex.h"
#include "vmm/migration/wire.h"

namespace vmmd::migration {
namespace {

using wire::appendU32;
using wire::appendU64;
using wire::loadU32;
using wire::loadU64;

constexpr uint32_t kMaxRegions = 8;  // vmm has two (below the PCI hole, above 4 GiB)

uint64_t alignUp(uint64_t value, uint64_t alignment) { return (value + alignment - 1) / alignment * alignment; }

uint64_t pagesOf(uint64_t bytes) { return bytes / kPageSize; }

}  // namespace

std::vector<uint8_t> RamLayout::encode() const {
  std::vector<uint8_t> out;
  appendU32(out, static_cast<uint32_t>(regions.size()));
  for (const auto& region : regions) {
    appendU64(out, region.guest_address);
    appendU64(out, region.size);
    appendU64(out, region.data_offset);
  }
  appendU64(out, state_offset);
  return out;
}

uint64_t RamLayout::sectionBytes(size_t regions) { return 8 + 4 + regions * 24 + 8 + 4; }

Result<RamLayout> RamLayout::decode(std::span<const uint8_t> payload) {
  if (payload.size() < 4) return Error("mapped-ram: RAM layout section too short");
  uint32_t count = loadU32(payload.data());
  if (count == 0 || count > kMaxRegions || payload.size() != 4 + count * 24ull + 8) {
    return Error("mapped-ram: RAM layout section of " + std::to_string(payload.size()) + " bytes for " + std::to_string(count) + " regions");
  }
  RamLayout layout;
  const uint8_t* p = payload.data() + 4;
  for (uint32_t i = 0; i < count; ++i, p += 24) layout.regions.push_back({loadU64(p), loadU64(p + 8), loadU64(p + 16)});
  layout.state_offset = loadU64(p);
  return layout;
}

RamLayout planLayout(std::span<const RamRegion> ram, uint64_t used) {
  RamLayout layout;
  uint64_t at = alignUp(used, kMappedRamAlignment);
  for (const auto& region : ram) {
    layout.regions.push_back({region.guest_address, region.size, at});
    at = alignUp(at + region.size, kMappedRamAlignment);
  }
  const auto& last = layout.regions.back();
  layout.state_offset = alignUp(last.data_offset + last.size, kPageSize);
  return layout;
}

Status checkLayout(const RamLayout& layout, std::span<const RamRegion> ram, uint64_t header_end) {
  if (layout.regions.size() != ram.size()) {
    return Error("mapped-ram: the file has " + std::to_string(layout.regions.size()) + " RAM regions, this machine " + std::to_string(ram.size()));
  }
  uint64_t floor = header_end;
  for (size_t i = 0; i < ram.size(); ++i) {
    const auto& in_file = layout.regions[i];
    if (in_file.guest_address != ram[i].guest_address || in_file.size != ram[i].size) {
      return Error("mapped-ram: RAM region #" + std::to_string(i) + " is " + hex(in_file.guest_address) + "+" + hex(in_file.size) +
                   " in the file, " + hex(ram[i].guest_address) + "+" + hex(ram[i].size) + " here");
    }
    if (in_file.data_offset % kMappedRamAlignment != 0 || in_file.data_offset < floor || in_file.size > UINT64_MAX - in_file.data_offset) {
      return Error("mapped-ram: RAM region #" + std::to_string(i) + " at file offset " + std::to_string(in_file.data_offset) +
                   " is not 2 MiB aligned after the previous data");
    }
    floor = in_file.data_offset + in_file.size;
  }
  if (layout.state_offset < floor || layout.state_offset % kPageSize != 0) {
    return Error("mapped-ram: the device state offset " + std::to_string(layout.state_offset) + " is inside the RAM data or unaligned");
  }
  return {};
}

std::vector<uint8_t> BitmapChunk::encode() const {
  std::vector<uint8_t> out;
  appendU32(out, region);
  appendU64(out, first_page);
  appendU32(out, static_cast<uint32_t>(words.size() * 8));
  for (uint64_t word : words) appendU64(out, word);
  return out;
}

Result<BitmapChunk> BitmapChunk::decode(std::span<const uint8_t> payload) {
  if (payload.size() < 16) return Error("mapped-ram: bitmap section too short");
  BitmapChunk chunk{loadU32(payload.data()), loadU64(payload.data() + 4), {}};
  uint32_t bytes = loadU32(payload.data() + 12);
  if (bytes % 8 != 0 || bytes > kBitmapChunkBytes || payload.size() != 16ull + bytes || chunk.first_page % 64 != 0) {
    return Error("mapped-ram: malformed bitmap section (" + std::to_string(bytes) + " bytes from page " + std::to_string(chunk.first_page) + ")");
  }
  for (uint32_t i = 0; i < bytes; i += 8) chunk.words.push_back(loadU64(payload.data() + 16 + i));
  return chunk;
}

MappedRamWriter::MappedRamWriter(int fd, uint64_t base, RamLayout layout, RateLimiter& limiter, const std::atomic<bool>& cancel,
                                 std::atomic<uint64_t>& written)
    : fd_(fd), base_(base), layout_(std::move(layout)), limiter_(limiter), cancel_(cancel), written_(written) {
  for (const auto& region : layout_.regions) present_.emplace_back((pagesOf(region.size) + 63) / 64, 0);
}

Status MappedRamWriter::prepare(uint64_t written) {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return Error::fromErrno("mapped-ram: fstat");
  if (!S_ISREG(st.st_mode)) return Error("mapped-ram needs a regular file (file:PATH, or fd: naming one), not a pipe or socket");
  if (base_ % kPageSize != 0) return Error("mapped-ram: the stream must start at a page-aligned file offset, not " + std::to_string(base_));
  if (::ftruncate(fd_, static_cast<off_t>(base_ + written)) != 0 || ::ftruncate(fd_, static_cast<off_t>(base_ + layout_.state_offset)) != 0) {
    return Error::fromErrno("mapped-ram: size the file");
  }
  return {};
}

Status MappedRamWriter::writeRun(uint64_t offset, std::span<const uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    if (cancel_.load()) return Error("cancelled");
    size_t chunk = std::min<size_t>(bytes.size() - done, 1u << 20);
    ssize_t n = ::pwrite(fd_, bytes.data() + done, chunk, static_cast<off_t>(base_ + offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error::fromErrno("mapped-ram: write at file offset " + std::to_string(base_ + offset + done));
    done += static_cast<size_t>(n);
    written_ += static_cast<uint64_t>(n);
    limiter_.account(static_cast<uint64_t>(n), cancel_);
  }
  page_bytes_ += bytes.size();
  return {};
}

// Pages that held data in an earlier pass and are zero now: back to a hole (zeros where the
// file system cannot punch one).
Status MappedRamWriter::clearRun(uint64_t offset, uint64_t length) {
  if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(base_ + offset), static_cast<off_t>(length)) == 0) return {};
  if (errno != EOPNOTSUPP && errno != ENOSYS) return Error::fromErrno("mapped-ram: punch a hole");
  std::vector<uint8_t> zeros(static_cast<size_t>(std::min<uint64_t>(length, kRamChunkBytes)), 0);
  for (uint64_t done = 0; done < length; done += zeros.size()) {
    if (auto st = writeRun(offset + done, {zeros.data(), static_cast<size_t>(std::min<uint64_t>(zeros.size(), length - done))}); !st) return st;
  }
  return {};
}

Result<uint64_t> MappedRamWriter::write(size_t region, uint64_t first_page, std::span<const uint8_t> pages) {
  const MappedRegion& where = layout_.regions.at(region);
  uint64_t count = pages.size() / kPageSize;
  if (pages.size() % kPageSize != 0 || first_page + count > pagesOf(where.size)) return Error("mapped-ram: pages outside their region");
  std::vector<uint64_t>& present = present_[region];
  uint64_t zero_pages = 0;
  for (uint64_t i = 0; i < count;) {
    bool zero = wire::isZeroPage(pages.data() + i * kPageSize);
    uint64_t j = i + 1;
    while (j < count && wire::isZeroPage(pages.data() + j * kPageSize) == zero) ++j;
    uint64_t offset = where.data_offset + (first_page + i) * kPageSize;
    bool had_data = false;
    for (uint64_t page = first_page + i; page < first_page + j; ++page) {
      uint64_t bit = uint64_t{1} << (page % 64);
      had_data |= (present[page / 64] & bit) != 0;
      present[page / 64] = zero ? present[page / 64] & ~bit : present[page / 64] | bit;
    }
    if (!zero) {
      if (auto st = writeRun(offset, pages.subspan(i * kPageSize, (j - i) * kPageSize)); !st) return st.error();
    } else {
      zero_pages += j - i;
      if (had_data) {
        if (auto st = clearRun(offset, (j - i) * kPageSize); !st) return st.error();
      }
    }
    i = j;
  }
  return zero_pages;
}

Status MappedRamWriter::finish(StreamWriter& writer) {
  if (::lseek(fd_, static_cast<off_t>(base_ + layout_.state_offset), SEEK_SET) < 0) return Error::fromErrno("mapped-ram: seek to the device state");
  const size_t words_per_chunk = kBitmapChunkBytes / 8;
  for (size_t r = 0; r < present_.size(); ++r) {
    for (size_t w = 0; w < present_[r].size(); w += words_per_chunk) {
      size_t end = std::min(present_[r].size(), w + words_per_chunk);
      BitmapChunk chunk{static_cast<uint32_t>(r), w * 64, {present_[r].begin() + static_cast<ptrdiff_t>(w), present_[r].begin() + static_cast<ptrdiff_t>(end)}};
      if (auto st = writer.raw(SectionType::RamBitmap, chunk.encode()); !st) return st;
    }
  }
  return {};
}

Status mapRegionFromFile(const RamRegion& region, int fd, uint64_t file_offset) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Error::fromErrno("mapped-ram: fstat");
  if (!S_ISREG(st.st_mode)) return Error("a mapped-ram stream must be read from a regular file (file:PATH, or fd: naming one)");
  if (file_offset % kPageSize != 0 || static_cast<uint64_t>(st.st_size) < file_offset || static_cast<uint64_t>(st.st_size) - file_offset < region.size) {
    return Error("mapped-ram: the file (" + std::to_string(st.st_size) + " bytes) does not hold RAM region " + hex(region.guest_address) +
                 " at offset " + std::to_string(file_offset));
  }
  // Copy-on-write over the guest's memory: the slot KVM knows keeps its address, the guest's
  // writes never reach the file, and untouched pages come from the page cache when first read.
  void* mapped = ::mmap(region.host, region.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, static_cast<off_t>(file_offset));
  if (mapped == MAP_FAILED) return Error::fromErrno("mapped-ram: map RAM region " + hex(region.guest_address) + " from the file");
  // Pages the guest writes become anonymous copies: khugepaged may merge them as before.
  (void)::madvise(region.host, region.size, MADV_HUGEPAGE);
  return {};
}

}  // namespace vmmd::migration
