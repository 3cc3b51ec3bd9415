// Synthetic kernel files for the boot tests: a temp directory, a PVH ELF builder (32- or 64-bit)
// and a bzImage builder whose setup header the tests can bend out of shape.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace vmmd::boot::testing {

using Bytes = std::vector<uint8_t>;

// The tests' temporary directory, with writers for kernel files.
class TempDir : public test_support::TempDir {
 public:
  TempDir() : test_support::TempDir("vmm_boot_test") {}

  // Writes `bytes` to path()/name and returns the full path.
  std::string write(const std::string& name, const Bytes& bytes) const;
  // A sparse file of `size` bytes (cheap even for tens of MiB).
  std::string writeSparse(const std::string& name, uint64_t size) const;
};

template <typename T>
void put(Bytes& out, size_t offset, T value) {
  if (out.size() < offset + sizeof(T)) out.resize(offset + sizeof(T));
  std::memcpy(&out[offset], &value, sizeof(T));
}

template <typename T>
T get(const uint8_t* data, size_t offset) {
  T value;
  std::memcpy(&value, data + offset, sizeof(T));
  return value;
}

// `size` bytes of a recognisable pattern that differs per `seed`.
Bytes pattern(size_t size, uint8_t seed);

// One ELF note: namesz, descsz, type, name (NUL-terminated, padded), desc (padded).
Bytes elfNote(const std::string& name, uint32_t type, const Bytes& desc);
// Xen's XEN_ELFNOTE_PHYS32_ENTRY (type 18) with a 4- or 8-byte descriptor.
Bytes pvhEntryNote(uint64_t entry, uint32_t descriptor_bytes);

struct ProgramHeader {
  uint32_t type;
  uint64_t offset;
  uint64_t paddr;
  uint64_t file_size;
  uint64_t memory_size;
};

// Builds an ELF executable: header, program headers right after it, then `contents` placed at
// the file offsets the headers name.
struct ElfBuilder {
  bool is64 = true;
  std::vector<ProgramHeader> headers;
  std::vector<std::pair<uint64_t, Bytes>> contents;  // file offset -> bytes
  // Overrides for malformed files.
  int64_t phnum_override = -1;
  int64_t phentsize_override = -1;

  void place(uint64_t offset, const Bytes& bytes) { contents.emplace_back(offset, bytes); }
  Bytes build() const;
};

// The PVH kernel most tests use: a note segment holding an unrelated Xen note and the entry
// note, a text segment at 1 MiB (0x1000 bytes in the file, 0x3000 in memory: bss) and a data
// segment at 2 MiB.
constexpr uint64_t kPvhEntry = 0x100040;
constexpr uint64_t kTextAddress = 0x100000, kTextFileSize = 0x1000, kTextMemorySize = 0x3000;
constexpr uint64_t kDataAddress = 0x200000, kDataFileSize = 0x800;
ElfBuilder standardPvhElf(bool is64, uint32_t descriptor_bytes = 4);

// A bzImage with setup_sects = 4 (2560 setup bytes) and `payload_size` bytes of payload.
struct BzImageBuilder {
  uint8_t setup_sects = 4;
  uint16_t boot_flag = 0xAA55;
  const char* magic = "HdrS";
  uint16_t version = 0x020f;
  uint8_t loadflags = 0x01;          // LOADED_HIGH
  uint16_t xloadflags = 0x0003;      // XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G
  uint32_t initrd_addr_max = 0x37FFFFFF;
  uint32_t cmdline_size = 2048;
  uint32_t init_size = 0x400000;     // 4 MiB
  size_t payload_size = 0x2000;

  Bytes build() const;
};

}  // namespace vmmd::boot::testing
