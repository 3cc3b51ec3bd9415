#include "vmm/boot/pvh.h"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "base/hex.h"

namespace vmmd::boot {
namespace {

constexpr uint32_t kXenElfNotePhys32Entry = 18;
constexpr uint32_t kMaxProgramHeaders = 256;
constexpr uint64_t kMaxNoteBytes = 1 << 20;

struct ProgramHeader {
  uint32_t type;
  uint64_t offset;
  uint64_t paddr;
  uint64_t file_size;
  uint64_t memory_size;
};

Result<std::vector<ProgramHeader>> readProgramHeaders(const ImageFile& file, bool is64) {
  std::vector<ProgramHeader> headers;
  uint64_t phoff, phentsize, phnum;
  if (is64) {
    Elf64_Ehdr eh;
    if (auto st = file.readAt(0, {reinterpret_cast<uint8_t*>(&eh), sizeof eh}); !st) return st.error();
    phoff = eh.e_phoff, phentsize = eh.e_phentsize, phnum = eh.e_phnum;
    if (phentsize != sizeof(Elf64_Phdr)) return Error(file.path() + ": bad ELF program header size");
  } else {
    Elf32_Ehdr eh;
    if (auto st = file.readAt(0, {reinterpret_cast<uint8_t*>(&eh), sizeof eh}); !st) return st.error();
    phoff = eh.e_phoff, phentsize = eh.e_phentsize, phnum = eh.e_phnum;
    if (phentsize != sizeof(Elf32_Phdr)) return Error(file.path() + ": bad ELF program header size");
  }
  if (phnum == 0 || phnum > kMaxProgramHeaders) return Error(file.path() + ": ELF has " + std::to_string(phnum) + " program headers");
  for (uint64_t i = 0; i < phnum; ++i) {
    uint64_t at = phoff + i * phentsize;
    if (is64) {
      Elf64_Phdr ph;
      if (auto st = file.readAt(at, {reinterpret_cast<uint8_t*>(&ph), sizeof ph}); !st) return st.error();
      headers.push_back({ph.p_type, ph.p_offset, ph.p_paddr, ph.p_filesz, ph.p_memsz});
    } else {
      Elf32_Phdr ph;
      if (auto st = file.readAt(at, {reinterpret_cast<uint8_t*>(&ph), sizeof ph}); !st) return st.error();
      headers.push_back({ph.p_type, ph.p_offset, ph.p_paddr, ph.p_filesz, ph.p_memsz});
    }
  }
  return headers;
}

// Walks the notes of one PT_NOTE segment looking for Xen's PHYS32_ENTRY.
Result<std::optional<uint64_t>> findEntryNote(const ImageFile& file, const ProgramHeader& note) {
  if (note.file_size > kMaxNoteBytes) return Error(file.path() + ": ELF note segment too large");
  std::vector<uint8_t> bytes(note.file_size);
  if (auto st = file.readAt(note.offset, bytes); !st) return st.error();
  auto align4 = [](uint64_t n) { return (n + 3) & ~uint64_t{3}; };
  uint64_t pos = 0;
  while (pos + 12 <= bytes.size()) {
    uint32_t namesz, descsz, type;
    std::memcpy(&namesz, &bytes[pos], 4);
    std::memcpy(&descsz, &bytes[pos + 4], 4);
    std::memcpy(&type, &bytes[pos + 8], 4);
    uint64_t name_at = pos + 12;
    uint64_t desc_at = name_at + align4(namesz);
    uint64_t next = desc_at + align4(descsz);
    if (next > bytes.size() || next <= pos) return Error(file.path() + ": malformed ELF note");
    bool is_xen = namesz == 4 && std::memcmp(&bytes[name_at], "Xen", 4) == 0;
    if (is_xen && type == kXenElfNotePhys32Entry) {
      if (descsz == 4) {
        uint32_t entry;
        std::memcpy(&entry, &bytes[desc_at], 4);
        return std::optional<uint64_t>(entry);
      }
      if (descsz == 8) {
        uint64_t entry;
        std::memcpy(&entry, &bytes[desc_at], 8);
        return std::optional<uint64_t>(entry);
      }
      return Error(file.path() + ": PVH entry note has " + std::to_string(descsz) + " bytes");
    }
    pos = next;
  }
  return std::optional<uint64_t>();
}

}  // namespace

bool looksLikeElf(const ImageFile& file) {
  uint8_t magic[SELFMAG];
  return file.readAt(0, magic).ok() && std::memcmp(magic, ELFMAG, SELFMAG) == 0;
}

Result<PvhImage> parsePvhElf(const ImageFile& file) {
  uint8_t ident[EI_NIDENT];
  if (auto st = file.readAt(0, ident); !st) return st.error();
  if (std::memcmp(ident, ELFMAG, SELFMAG) != 0) return Error(file.path() + ": not an ELF file");
  if (ident[EI_DATA] != ELFDATA2LSB) return Error(file.path() + ": not a little-endian ELF");
  bool is64 = ident[EI_CLASS] == ELFCLASS64;
  if (!is64 && ident[EI_CLASS] != ELFCLASS32) return Error(file.path() + ": unknown ELF class");

  auto headers = readProgramHeaders(file, is64);
  if (!headers) return headers.error();

  PvhImage image{0, {}, 0};
  std::optional<uint64_t> entry;
  for (const auto& ph : *headers) {
    if (ph.type == PT_NOTE && !entry) {
      auto found = findEntryNote(file, ph);
      if (!found) return found.error();
      entry = *found;
    }
    if (ph.type != PT_LOAD || ph.memory_size == 0) continue;
    if (ph.file_size > ph.memory_size) return Error(file.path() + ": ELF segment file size exceeds memory size");
    if (ph.offset > file.size() || ph.file_size > file.size() - ph.offset) {
      return Error(file.path() + ": ELF segment at offset " + std::to_string(ph.offset) + " runs past the end of the file");
    }
    if (ph.paddr + ph.memory_size < ph.paddr) return Error(file.path() + ": ELF segment wraps around");
    image.segments.push_back({ph.offset, ph.file_size, ph.paddr, ph.memory_size});
    image.highest_address = std::max(image.highest_address, ph.paddr + ph.memory_size);
  }
  if (!entry) return Error(file.path() + ": ELF without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); cannot boot it");
  if (image.segments.empty()) return Error(file.path() + ": ELF has nothing to load");
  if (*entry >= (1ull << 32)) return Error(file.path() + ": PVH entry " + hex(*entry) + " is above 4 GiB");
  image.entry = *entry;
  return image;
}

}  // namespace vmmd::boot
