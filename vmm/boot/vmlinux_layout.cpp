#include "vmm/boot/vmlinux_layout.h"

#include <elf.h>

#include <algorithm>
#include <cstring>

#include "base/hex.h"

namespace vmmd::boot {
namespace {

constexpr uint32_t kMaxProgramHeaders = 64;

template <typename T>
T load(std::span<const uint8_t> data, uint64_t at) {
  T value;
  std::memcpy(&value, data.data() + at, sizeof(T));
  return value;
}

bool fits(uint64_t at, uint64_t length, uint64_t size) { return at <= size && length <= size - at; }

// Reads one zero-terminated list of the relocation table backwards from `*at` (the offset just
// past its last entry); leaves `*at` at its terminator.
Status readRelocList(std::span<const uint8_t> data, uint64_t floor, uint64_t* at, uint64_t load_offset,
                     const std::vector<VmlinuxLayout::Segment>& segments, uint32_t width, std::vector<uint32_t>* out) {
  for (;;) {
    if (*at < floor + 4) return Error("relocation table runs into the kernel image");
    *at -= 4;
    uint32_t entry = load<uint32_t>(data, *at);
    if (entry == 0) return {};
    // The entry is a kernel virtual address, sign-extended from 32 bits.
    uint64_t address = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(entry)));
    uint64_t offset = address - load_offset;  // wraps to huge for anything below the image
    bool inside = std::any_of(segments.begin(), segments.end(), [&](const VmlinuxLayout::Segment& s) {
      return offset >= s.to && offset - s.to <= s.file_size && s.file_size - (offset - s.to) >= width;
    });
    if (!inside) return Error("relocation " + hex(address) + " lies outside the kernel image");
    out->push_back(static_cast<uint32_t>(offset));
  }
}

template <typename T>
void adjust(std::span<uint8_t> region, uint32_t offset, T delta, bool subtract) {
  T value;
  std::memcpy(&value, region.data() + offset, sizeof(T));
  value = subtract ? static_cast<T>(value - delta) : static_cast<T>(value + delta);
  std::memcpy(region.data() + offset, &value, sizeof(T));
}

}  // namespace

Result<VmlinuxLayout> planVmlinux(std::span<const uint8_t> data, uint64_t lead, uint64_t room, uint64_t link_base) {
  if (data.size() < sizeof(Elf64_Ehdr)) return Error("decompressed kernel is too short for an ELF header");
  auto eh = load<Elf64_Ehdr>(data, 0);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return Error("decompressed kernel is not an ELF image");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64) {
    return Error("decompressed kernel is not a little-endian x86-64 ELF image");
  }
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > kMaxProgramHeaders ||
      !fits(eh.e_phoff, uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr), data.size())) {
    return Error("decompressed kernel has malformed program headers");
  }
  // Where the ELF ends and the relocation table begins: past every header and segment.
  uint64_t elf_end = eh.e_phoff + uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr);
  if (eh.e_shnum != 0) {
    uint64_t sections = uint64_t{eh.e_shnum} * eh.e_shentsize;
    if (!fits(eh.e_shoff, sections, data.size())) return Error("decompressed kernel has malformed section headers");
    elf_end = std::max(elf_end, eh.e_shoff + sections);
  }

  VmlinuxLayout layout;
  for (uint32_t i = 0; i < eh.e_phnum; ++i) {
    auto ph = load<Elf64_Phdr>(data, eh.e_phoff + uint64_t{i} * sizeof(Elf64_Phdr));
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    if (ph.p_filesz > ph.p_memsz || !fits(ph.p_offset, ph.p_filesz, data.size())) {
      return Error("decompressed kernel: segment " + std::to_string(i) + " runs past the data");
    }
    if (ph.p_paddr < link_base || !fits(ph.p_paddr - link_base, ph.p_memsz, room)) {
      return Error("decompressed kernel: segment " + std::to_string(i) + " at " + hex(ph.p_paddr) + " lies outside the " +
                   std::to_string(room) + " bytes from " + hex(link_base) + " that init_size gives it");
    }
    layout.segments.push_back({ph.p_offset, lead + (ph.p_paddr - link_base), ph.p_filesz, ph.p_memsz});
    elf_end = std::max(elf_end, ph.p_offset + ph.p_filesz);
  }
  if (layout.segments.empty()) return Error("decompressed kernel has nothing to load");
  auto& segments = layout.segments;
  std::sort(segments.begin(), segments.end(), [](const auto& a, const auto& b) { return a.to < b.to; });
  // In place, in ascending order: each segment moves down (or stays), lands clear of the next
  // one's place, and does not overwrite bytes of a segment still to move.
  for (size_t i = 0; i < segments.size(); ++i) {
    if (segments[i].to > segments[i].from) return Error("decompressed kernel: a segment would move up; cannot lay it out in place");
    if (i + 1 < segments.size() && segments[i].to + segments[i].memory_size > segments[i + 1].to) {
      return Error("decompressed kernel: segments overlap");
    }
    for (size_t j = i + 1; j < segments.size(); ++j) {
      if (segments[i].to + segments[i].file_size > segments[j].from) {
        return Error("decompressed kernel: segments are not in the order the in-place layout needs");
      }
    }
  }
  if (eh.e_entry < link_base) return Error("decompressed kernel: entry " + hex(eh.e_entry) + " below its link address");
  layout.entry = eh.e_entry - link_base;
  bool entry_inside = std::any_of(segments.begin(), segments.end(),
                                  [&](const auto& s) { return lead + layout.entry >= s.to && lead + layout.entry - s.to < s.file_size; });
  if (!entry_inside) return Error("decompressed kernel: entry " + hex(eh.e_entry) + " is not in a loaded segment");

  // The relocation table, if the build appended one.
  if (data.size() > elf_end) {
    // A table entry is a kernel virtual address; this much less is its offset in the region.
    uint64_t load_offset = kStartKernelMap + link_base - lead;
    if ((data.size() - elf_end) % 4 != 0) return Error("decompressed kernel: relocation table is not whole 32-bit entries");
    uint64_t at = data.size();
    if (auto st = readRelocList(data, elf_end, &at, load_offset, segments, 4, &layout.relocs32); !st) return st.error();
    if (auto st = readRelocList(data, elf_end, &at, load_offset, segments, 4, &layout.inverse32); !st) return st.error();
    if (auto st = readRelocList(data, elf_end, &at, load_offset, segments, 8, &layout.relocs64); !st) return st.error();
    if (at != elf_end) return Error("decompressed kernel: " + std::to_string(at - elf_end) + " bytes between the image and its relocation table");
    layout.relocatable = true;
  }
  return layout;
}

void buildVmlinux(const VmlinuxLayout& layout, std::span<uint8_t> region, uint64_t virtual_delta) {
  for (const auto& s : layout.segments) {
    if (s.to != s.from) std::memmove(region.data() + s.to, region.data() + s.from, s.file_size);
  }
  for (const auto& s : layout.segments) std::memset(region.data() + s.to + s.file_size, 0, s.memory_size - s.file_size);
  if (virtual_delta == 0) return;
  for (uint32_t offset : layout.relocs32) adjust<uint32_t>(region, offset, static_cast<uint32_t>(virtual_delta), false);
  for (uint32_t offset : layout.inverse32) adjust<uint32_t>(region, offset, static_cast<uint32_t>(virtual_delta), true);
  for (uint32_t offset : layout.relocs64) adjust<uint64_t>(region, offset, virtual_delta, false);
}

}  // namespace vmmd::boot
