// A kernel or initrd file opened for loading: bounded reads straight into guest memory, so a
// multi-megabyte kernel is never copied twice.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/file_opener.h"
#include "base/mapping.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "vmm/platform/guest_memory.h"

namespace vmmd::boot {

// Part of a file, read into memory. Read, not mapped: a file truncated under a mapping makes the
// next access to the lost pages a SIGBUS, which would kill the worker where a boot should fail
// with an error naming the file. The memory is its own anonymous mapping on a 2 MiB boundary
// with transparent huge pages asked for: a fresh worker reading a bzImage's 14 MB payload into
// the heap took a page fault per 4 KiB, 40 ms of a boot on this host, as long as decompressing it.
class FileBytes {
 public:
  FileBytes(Mapping memory, uint64_t length) : memory_(std::move(memory)), length_(length) {}
  std::span<const uint8_t> bytes() const { return {memory_.data(), length_}; }

 private:
  Mapping memory_;
  uint64_t length_;
};

class ImageFile {
 public:
  static Result<ImageFile> open(const std::string& path, const FileOpener& files = plainFiles());

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  // The host's CPUs when the file was opened: how many threads may load or decompress it.
  unsigned cpus() const { return cpus_; }
  // Reads exactly out.size() bytes at `offset`; a short file is an error naming the file.
  Status readAt(uint64_t offset, std::span<uint8_t> out) const;
  // Whether `length` bytes at `guest_address` lie in guest RAM; the error names the file.
  Status checkFits(const GuestMemory& memory, uint64_t guest_address, uint64_t length) const;
  // Copies [offset, offset+length) of the file into guest memory at `guest_address` (a large
  // range in parallel slices, see slices()).
  Status loadInto(GuestMemory& memory, uint64_t guest_address, uint64_t offset, uint64_t length) const;
  // Reads [offset, offset+length) of the file (a bzImage's compressed payload, for its
  // decompressor); a file shorter than that by now is an error naming it.
  Result<FileBytes> read(uint64_t offset, uint64_t length) const;

  // How loadInto splits `length` bytes bound for `guest_address` among threads on a host with
  // `cpus` CPUs: one slice per kMinimumSlice bytes, at most min(cpus, kMaximumSlices), every
  // boundary on a kSliceAlignment boundary of guest RAM (2 MiB: a huge page is written by one
  // thread). Slices are offsets into the range, in order, covering it exactly.
  struct Slice {
    uint64_t begin;
    uint64_t length;
  };
  static constexpr uint64_t kMinimumSlice = 8ull << 20;
  static constexpr unsigned kMaximumSlices = 4;
  static constexpr uint64_t kSliceAlignment = 2ull << 20;
  static std::vector<Slice> slices(uint64_t guest_address, uint64_t length, unsigned cpus);

 private:
  ImageFile(std::string path, UniqueFd fd, uint64_t size, unsigned cpus)
      : path_(std::move(path)), fd_(std::move(fd)), size_(size), cpus_(cpus) {}
  std::string path_;
  UniqueFd fd_;
  uint64_t size_;
  unsigned cpus_;  // the host's CPUs when the file was opened, for loadInto's slices
};

}  // namespace vmmd::boot
