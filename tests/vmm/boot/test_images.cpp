#include "tests/vmm/boot/test_images.h"

#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace vmmd::boot::testing {

std::string TempDir::write(const std::string& name, const Bytes& bytes) const {
  std::string file = this->file(name);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + file);
  return file;
}

std::string TempDir::writeSparse(const std::string& name, uint64_t size) const {
  std::string file = this->file(name);
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size)) < 0) throw std::runtime_error("cannot create " + file);
  ::close(fd);
  return file;
}

Bytes pattern(size_t size, uint8_t seed) {
  Bytes out(size);
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>((i * 7 + seed * 31 + (i >> 8)) | 1);  // never 0
  return out;
}

Bytes elfNote(const std::string& name, uint32_t type, const Bytes& desc) {
  auto align4 = [](size_t n) { return (n + 3) & ~size_t{3}; };
  Bytes out;
  put<uint32_t>(out, 0, static_cast<uint32_t>(name.size() + 1));
  put<uint32_t>(out, 4, static_cast<uint32_t>(desc.size()));
  put<uint32_t>(out, 8, type);
  out.insert(out.end(), name.begin(), name.end());
  out.resize(align4(out.size() + 1), 0);
  out.insert(out.end(), desc.begin(), desc.end());
  out.resize(align4(out.size()), 0);
  return out;
}

Bytes pvhEntryNote(uint64_t entry, uint32_t descriptor_bytes) {
  Bytes desc(descriptor_bytes, 0);
  std::memcpy(desc.data(), &entry, std::min<size_t>(descriptor_bytes, sizeof entry));
  return elfNote("Xen", 18, desc);
}

Bytes ElfBuilder::build() const {
  size_t ehsize = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
  size_t phentsize = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
  Bytes out(ehsize + headers.size() * phentsize, 0);
  uint16_t phnum = static_cast<uint16_t>(phnum_override >= 0 ? phnum_override : static_cast<int64_t>(headers.size()));
  uint16_t entsize = static_cast<uint16_t>(phentsize_override >= 0 ? phentsize_override : static_cast<int64_t>(phentsize));
  if (is64) {
    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = 0xffffffff81000000;
    eh.e_phoff = ehsize;
    eh.e_ehsize = static_cast<uint16_t>(ehsize);
    eh.e_phentsize = entsize;
    eh.e_phnum = phnum;
    std::memcpy(out.data(), &eh, sizeof eh);
    for (size_t i = 0; i < headers.size(); ++i) {
      const auto& h = headers[i];
      Elf64_Phdr ph{};
      ph.p_type = h.type;
      ph.p_offset = h.offset;
      ph.p_vaddr = h.paddr | 0xffffffff80000000;
      ph.p_paddr = h.paddr;
      ph.p_filesz = h.file_size;
      ph.p_memsz = h.memory_size;
      ph.p_align = 4;
      std::memcpy(out.data() + ehsize + i * phentsize, &ph, sizeof ph);
    }
  } else {
    Elf32_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS32;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_386;
    eh.e_version = EV_CURRENT;
    eh.e_entry = 0xc1000000;
    eh.e_phoff = static_cast<uint32_t>(ehsize);
    eh.e_ehsize = static_cast<uint16_t>(ehsize);
    eh.e_phentsize = entsize;
    eh.e_phnum = phnum;
    std::memcpy(out.data(), &eh, sizeof eh);
    for (size_t i = 0; i < headers.size(); ++i) {
      const auto& h = headers[i];
      Elf32_Phdr ph{};
      ph.p_type = h.type;
      ph.p_offset = static_cast<uint32_t>(h.offset);
      ph.p_vaddr = static_cast<uint32_t>(h.paddr | 0xc0000000);
      ph.p_paddr = static_cast<uint32_t>(h.paddr);
      ph.p_filesz = static_cast<uint32_t>(h.file_size);
      ph.p_memsz = static_cast<uint32_t>(h.memory_size);
      ph.p_align = 4;
      std::memcpy(out.data() + ehsize + i * phentsize, &ph, sizeof ph);
    }
  }
  for (const auto& [offset, bytes] : contents) {
    if (out.size() < offset + bytes.size()) out.resize(offset + bytes.size(), 0);
    std::memcpy(out.data() + offset, bytes.data(), bytes.size());
  }
  return out;
}

ElfBuilder standardPvhElf(bool is64, uint32_t descriptor_bytes) {
  ElfBuilder elf;
  elf.is64 = is64;
  // An unrelated Xen note (XEN_ELFNOTE_GUEST_OS "linux") first, so the parser has to walk on.
  Bytes notes = elfNote("Xen", 6, {'l', 'i', 'n', 'u', 'x', 0});
  Bytes gnu = elfNote("GNU", 3, Bytes(20, 0xAB));  // a build id
  notes.insert(notes.end(), gnu.begin(), gnu.end());
  Bytes entry = pvhEntryNote(kPvhEntry, descriptor_bytes);
  notes.insert(notes.end(), entry.begin(), entry.end());
  elf.headers = {
      {PT_NOTE, 0x200, 0x200, notes.size(), notes.size()},
      {PT_LOAD, 0x1000, kTextAddress, kTextFileSize, kTextMemorySize},
      {PT_LOAD, 0x2000, kDataAddress, kDataFileSize, kDataFileSize},
  };
  elf.place(0x200, notes);
  elf.place(0x1000, pattern(kTextFileSize, 1));
  elf.place(0x2000, pattern(kDataFileSize, 2));
  return elf;
}

Bytes BzImageBuilder::build() const {
  size_t setup_bytes = (size_t{setup_sects ? setup_sects : 4u} + 1) * 512;
  Bytes out(setup_bytes, 0);
  out[0x1f1] = setup_sects;
  put<uint16_t>(out, 0x1fa, 0xFFFF);  // vid_mode: normal
  put<uint16_t>(out, 0x1fe, boot_flag);
  out[0x200] = 0xEB;  // jmp short over the header...
  out[0x201] = 0x66;  // ...which ends at 0x268 (protocol 2.15)
  std::memcpy(&out[0x202], magic, 4);
  put<uint16_t>(out, 0x206, version);
  out[0x211] = loadflags;
  put<uint32_t>(out, 0x214, 0x100000);  // code32_start
  put<uint32_t>(out, 0x22c, initrd_addr_max);
  put<uint32_t>(out, 0x230, 0x200000);  // kernel_alignment
  out[0x234] = 1;                       // relocatable_kernel
  put<uint16_t>(out, 0x236, xloadflags);
  put<uint32_t>(out, 0x238, cmdline_size);
  put<uint32_t>(out, 0x260, init_size);
  // Something after the header that must not reach boot_params (the loader copies only the header).
  put<uint32_t>(out, 0x280, 0xDEADBEEF);
  Bytes payload = pattern(payload_size, 3);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

}  // namespace vmmd::boot::testing
