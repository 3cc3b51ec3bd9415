// mapped-ram files (docs/migration-stream.md): the layout on disk (pages at 2 MiB aligned slots,
// holes for zero pages, bitmaps, device state after the RAM), a destination that maps the file
// copy-on-write, and hostile files (truncated, flipped, wrong layout) refused with the reason.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>

#include "base/mapping.h"
#include "base/unique_fd.h"
#include "tests/support/temp_dir.h"
#include "vmm/migration/mapped_ram.h"
#include "vmm/migration/stream_reader.h"
#include "vmm/migration/stream_writer.h"

namespace vmmd::migration {
namespace {

constexpr uint64_t kLow = 4u << 20, kHigh = 2u << 20;  // two regions, as below and above 4 GiB
constexpr uint64_t kHighAddress = 1ull << 32;

MachineSummary summary() {
  MachineSummary s;
  s.machine_type = "pc";
  s.ram_bytes = kLow + kHigh;
  s.vcpus = 1;
  return s;
}

// Guest RAM as vmm has it: one 2 MiB aligned mapping, two regions.
struct Ram {
  Mapping mapping;
  std::vector<RamRegion> regions;
  explicit Ram(uint8_t fill) {
    auto m = Mapping::anonymousAligned(kLow + kHigh, kMappedRamAlignment);
    EXPECT_TRUE(m);
    mapping = std::move(*m);
    std::memset(mapping.data(), fill, kLow + kHigh);
    regions = {{0, kLow, mapping.data()}, {kHighAddress, kHigh, mapping.data() + kLow}};
  }
  uint8_t* page(size_t region, uint64_t index) { return regions[region].host + index * kPageSize; }
};

// The source's RAM: zero but for a few pages with their number in them.
Ram sourceRam() {
  Ram ram(0);
  for (uint64_t p = 0; p < kLow / kPageSize; p += 7) std::memset(ram.page(0, p), static_cast<int>(p % 250 + 1), kPageSize);
  std::memset(ram.page(1, 3), 0x5A, kPageSize);
  return ram;
}

// A mapped-ram file being written the way the outgoing migration does: header, summary, the
// layout section, the file sized for the layout.
struct FileWriter {
  RateLimiter limiter;
  std::atomic<bool> cancel{false};
  std::atomic<uint64_t> written{0};
  UniqueFd fd;
  FdSink sink;
  StreamWriter writer;
  RamLayout layout;
  MappedRamWriter mapped;

  FileWriter(const std::string& path, const Ram& ram)
      : fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)),
        sink(fd.get(), limiter, cancel, written),
        writer(sink),
        layout(planLayout(ram.regions, 16 + 8 + summary().encode().size() + 4 + RamLayout::sectionBytes(ram.regions.size()))),
        mapped(fd.get(), 0, layout, limiter, cancel, written) {
    EXPECT_TRUE(writer.header(kFlagMappedRam));
    EXPECT_TRUE(writer.summary(summary()));
    EXPECT_TRUE(mapped.prepare(writer.bytesWritten()));
    EXPECT_TRUE(writer.raw(SectionType::RamLayout, layout.encode()));
  }
};

// Writes `ram` as a mapped-ram file: pass 0 with every page, then pass 1 with page 7 of region 0
// (zero now: its slot goes back to a hole) and page 8 (data now).
void writeFile(const std::string& path, Ram& ram) {
  FileWriter file(path, ram);
  for (size_t r = 0; r < ram.regions.size(); ++r) {
    auto zero = file.mapped.write(r, 0, {ram.regions[r].host, ram.regions[r].size});
    ASSERT_TRUE(zero) << zero.error().message();
  }
  std::memset(ram.page(0, 7), 0, kPageSize);
  std::memset(ram.page(0, 8), 0x77, kPageSize);
  ASSERT_TRUE(file.mapped.write(0, 7, {ram.page(0, 7), 2 * kPageSize}));
  ASSERT_TRUE(file.mapped.finish(file.writer));
  ASSERT_TRUE(file.writer.state({"cpu/0", {"cpu", 1, {1, 2, 3}}}));
  ASSERT_TRUE(file.writer.end());
}

std::vector<uint8_t> readAll(const std::string& path) {
  std::vector<uint8_t> data;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  uint8_t buffer[65536];
  ssize_t n;
  while ((n = ::read(fd.get(), buffer, sizeof buffer)) > 0) data.insert(data.end(), buffer, buffer + n);
  return data;
}

void writeAll(const std::string& path, const std::vector<uint8_t>& data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  ASSERT_EQ(::write(fd.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
}

// Loads `path` into `ram` as incoming.cpp does: a regular file, RAM mapped from it.
Result<LoadedStream> loadFile(const std::string& path, Ram& ram) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::fromErrno("open");
  std::atomic<bool> cancel{false};
  FdSource source(fd.get(), cancel);
  int raw = fd.get();
  return StreamLoader(source, summary(), ram.regions, [raw](const RamRegion& region, uint64_t offset) {
           return mapRegionFromFile(region, raw, offset);
         }).load();
}

TEST(MappedRam, FileLayoutHasPagesAtAlignedSlotsAndHolesForZeroPages) {
  test_support::TempDir dir;
  Ram ram = sourceRam();
  writeFile(dir / "state", ram);
  auto file = readAll(dir / "state");
  ASSERT_GE(file.size(), 16u);
  EXPECT_EQ(std::memcmp(file.data(), kStreamMagic, 8), 0);
  EXPECT_EQ(file[12], kFlagMappedRam);

  RamLayout expected = planLayout(ram.regions, 0);
  ASSERT_EQ(expected.regions[0].data_offset, 0u);  // (planned from 0 only to learn the spacing)
  // Region 0 at the first 2 MiB boundary after the header sections, region 1 right after it.
  uint64_t low = kMappedRamAlignment, high = low + kLow;
  for (uint64_t p = 0; p < kLow / kPageSize; ++p) {
    ASSERT_EQ(std::memcmp(file.data() + low + p * kPageSize, ram.page(0, p), kPageSize), 0) << "page " << p;
  }
  EXPECT_EQ(std::memcmp(file.data() + high + 3 * kPageSize, ram.page(1, 3), kPageSize), 0);
  // The device state follows the RAM data.
  EXPECT_GT(file.size(), high + kHigh);

  // Zero pages take no space: at most the data pages' blocks (14% of region 0, one page of 1).
  struct stat st {};
  ASSERT_EQ(::stat((dir / "state").c_str(), &st), 0);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, (kLow + kHigh) / 4) << "zero pages should be holes";
}

TEST(MappedRam, RestoreMapsTheFileCopyOnWrite) {
  test_support::TempDir dir;
  Ram source = sourceRam();
  writeFile(dir / "state", source);
  auto before = readAll(dir / "state");

  Ram dest(0xAA);  // not zero: every page must come from the file
  auto loaded = loadFile(dir / "state", dest);
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_TRUE(loaded->mapped_ram);
  ASSERT_EQ(loaded->machine.sections.size(), 1u);
  EXPECT_EQ(loaded->machine.sections[0].id, "cpu/0");
  // Pages with data: every 7th of region 0 (page 7 now zero, page 8 added), one in region 1.
  EXPECT_EQ(loaded->pages, (kLow / kPageSize + 6) / 7 - 1 + 1 + 1);
  EXPECT_EQ(std::memcmp(dest.mapping.data(), source.mapping.data(), kLow + kHigh), 0);

  // The guest's writes stay in its memory.
  std::memset(dest.page(0, 0), 0x11, kPageSize);
  std::memset(dest.page(1, 3), 0x22, kPageSize);
  EXPECT_EQ(readAll(dir / "state"), before);
}

TEST(MappedRam, EveryTruncationIsRefused) {
  test_support::TempDir dir;
  Ram source = sourceRam();
  writeFile(dir / "state", source);
  auto file = readAll(dir / "state");
  // Inside the header sections, inside the RAM data, inside the bitmaps and states, the last byte.
  for (size_t length : {size_t{0}, size_t{10}, size_t{40}, size_t{kMappedRamAlignment + 5000}, file.size() - 200, file.size() - 1}) {
    writeAll(dir / "cut", {file.begin(), file.begin() + static_cast<ptrdiff_t>(length)});
    Ram dest(0xAA);
    auto loaded = loadFile(dir / "cut", dest);
    ASSERT_FALSE(loaded) << "truncated at " << length;
    EXPECT_NE(loaded.error().message().find("ended early"), std::string::npos) << loaded.error().message();
  }
}

TEST(MappedRam, FlippedBytesOutsideTheRamDataAreRefused) {
  test_support::TempDir dir;
  Ram source = sourceRam();
  writeFile(dir / "state", source);
  auto file = readAll(dir / "state");
  uint64_t state_start = kMappedRamAlignment + kLow + kHigh;
  // The header sections: header, summary, layout (then padding up to the RAM data, never read).
  size_t header_end = 16 + (8 + summary().encode().size() + 4) + RamLayout::sectionBytes(2);
  std::vector<size_t> positions;
  for (size_t at = 0; at < header_end; ++at) positions.push_back(at);
  for (size_t at = state_start; at < file.size(); at += 97) positions.push_back(at);
  for (size_t at : positions) {
    auto bad = file;
    bad[at] ^= 0x40;
    writeAll(dir / "bad", bad);
    Ram dest(0xAA);
    auto loaded = loadFile(dir / "bad", dest);
    EXPECT_FALSE(loaded) << "flipped byte " << at;
  }
}

TEST(MappedRam, LayoutNotMatchingThisMachineIsRefused) {
  Ram ram(0);
  RamLayout good = planLayout(ram.regions, 4096);
  EXPECT_TRUE(checkLayout(good, ram.regions, 4096));

  RamLayout unaligned = good;
  unaligned.regions[1].data_offset += kPageSize;
  auto st = checkLayout(unaligned, ram.regions, 4096);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("not 2 MiB aligned"), std::string::npos) << st.error().message();

  RamLayout overlapping = good;
  overlapping.regions[1].data_offset = overlapping.regions[0].data_offset;
  EXPECT_FALSE(checkLayout(overlapping, ram.regions, 4096));

  RamLayout other_size = good;
  other_size.regions[0].size *= 2;
  st = checkLayout(other_size, ram.regions, 4096);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("RAM region #0"), std::string::npos) << st.error().message();

  RamLayout state_inside = good;
  state_inside.state_offset = good.regions[1].data_offset;
  EXPECT_FALSE(checkLayout(state_inside, ram.regions, 4096));

  RamLayout one_region = good;
  one_region.regions.pop_back();
  EXPECT_FALSE(checkLayout(one_region, ram.regions, 4096));

  // Decoding: a count that does not fit the payload, too many regions.
  auto bytes = good.encode();
  bytes[0] = 3;
  EXPECT_FALSE(RamLayout::decode(bytes));
  EXPECT_FALSE(RamLayout::decode(std::vector<uint8_t>{1, 0}));
}

TEST(MappedRam, StreamFromAPipeOrMemoryIsRefused) {
  test_support::TempDir dir;
  Ram source = sourceRam();
  writeFile(dir / "state", source);
  auto file = readAll(dir / "state");
  MemorySource memory(file);
  Ram dest(0xAA);
  auto loaded = StreamLoader(memory, summary(), dest.regions).load();  // no way to map
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message().find("regular file"), std::string::npos) << loaded.error().message();
}

TEST(MappedRam, LayoutAndBitmapSectionsOutsideAMappedStreamAreRefused) {
  Ram ram(0);
  MemorySink sink;
  StreamWriter writer(sink);
  ASSERT_TRUE(writer.header());  // no mapped-ram flag
  ASSERT_TRUE(writer.summary(summary()));
  ASSERT_TRUE(writer.raw(SectionType::RamLayout, planLayout(ram.regions, 4096).encode()));
  ASSERT_TRUE(writer.end());
  MemorySource source(sink.data);
  auto loaded = StreamLoader(source, summary(), ram.regions).load();
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message().find("without mapped-ram"), std::string::npos) << loaded.error().message();
}

TEST(MappedRam, IncompleteBitmapIsRefused) {
  test_support::TempDir dir;
  Ram ram = sourceRam();
  {
    FileWriter file(dir / "state", ram);
    ASSERT_EQ(::lseek(file.fd.get(), static_cast<off_t>(file.layout.state_offset), SEEK_SET), static_cast<off_t>(file.layout.state_offset));
    // Region 0's bitmap only.
    ASSERT_TRUE(file.writer.raw(SectionType::RamBitmap, BitmapChunk{0, 0, std::vector<uint64_t>(kLow / kPageSize / 64, 1)}.encode()));
    ASSERT_TRUE(file.writer.end());
  }
  Ram dest(0xAA);
  auto loaded = loadFile(dir / "state", dest);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message().find("bitmap of RAM region #1 is incomplete"), std::string::npos) << loaded.error().message();
  // Nothing was mapped: the destination's memory is untouched.
  EXPECT_EQ(dest.page(0, 0)[0], 0xAA);
}

}  // namespace
}  // namespace vmmd::migration
