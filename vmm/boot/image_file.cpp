#include "vmm/boot/image_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>
#include <thread>
#include <vector>

#include "base/hex.h"

namespace vmmd::boot {

Result<ImageFile> ImageFile::open(const std::string& path, const FileOpener& files) {
  auto opened = files.open(path, O_RDONLY);
  if (!opened) return opened.error();
  UniqueFd fd = std::move(*opened);
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return Error::fromErrno(path);
  if (!S_ISREG(st.st_mode)) return Error(path + ": not a regular file");
  // The CPU count is read now: std::thread::hardware_concurrency opens /sys, which a confined
  // worker (-sandbox on) may no longer do by the time it loads.
  return ImageFile(path, std::move(fd), static_cast<uint64_t>(st.st_size), std::thread::hardware_concurrency());
}

Status ImageFile::readAt(uint64_t offset, std::span<uint8_t> out) const {
  if (offset > size_ || out.size() > size_ - offset) {
    return Error(path_ + ": file too short (wanted " + std::to_string(out.size()) + " bytes at offset " +
                 std::to_string(offset) + ", file has " + std::to_string(size_) + ")");
  }
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd_.get(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::fromErrno(path_);
    }
    if (n == 0) return Error(path_ + ": unexpected end of file");
    done += static_cast<size_t>(n);
  }
  return {};
}

Status ImageFile::checkFits(const GuestMemory& memory, uint64_t guest_address, uint64_t length) const {
  if (memory.hostAddress(guest_address, length)) return {};
  return Error(path_ + ": " + std::to_string(length) + " bytes at guest address " + hex(guest_address) +
               " do not fit in guest RAM (" + std::to_string(memory.ramBytes() >> 20) + " MiB)");
}

std::vector<ImageFile::Slice> ImageFile::slices(uint64_t guest_address, uint64_t length, unsigned cpus) {
  uint64_t count = std::clamp<uint64_t>(length / kMinimumSlice, 1, std::clamp(cpus, 1u, kMaximumSlices));
  std::vector<Slice> out;
  uint64_t begin = 0;
  for (uint64_t i = 1; i <= count && begin < length; ++i) {
    // Each boundary moves up to a 2 MiB boundary of guest RAM: no huge page is written by two threads.
    uint64_t end = i == count ? length : std::min(length, ((guest_address + length / count * i + kSliceAlignment - 1) & ~(kSliceAlignment - 1)) - guest_address);
    if (end > begin) out.push_back({begin, end - begin});
    begin = std::max(begin, end);
  }
  return out;
}

Status ImageFile::loadInto(GuestMemory& memory, uint64_t guest_address, uint64_t offset, uint64_t length) const {
  if (auto st = checkFits(memory, guest_address, length); !st) return st;
  if (length == 0) return {};
  uint8_t* destination = memory.hostAddress(guest_address, length);
  // A large image loads in slices, one thread each: the host clears each huge page of guest RAM
  // as it is first written, and the slices' clearing and copying then run on several CPUs (as
  // QEMU's prealloc-threads do for RAM). A thread that cannot be made loads its slice here.
  auto parts = slices(guest_address, length, cpus_);
  std::vector<Status> results(parts.size());
  {
    std::vector<std::jthread> workers;
    for (size_t i = 1; i < parts.size(); ++i) {
      auto load = [&, i] { results[i] = readAt(offset + parts[i].begin, {destination + parts[i].begin, parts[i].length}); };
      try {
        workers.emplace_back(load);
      } catch (const std::system_error&) {
        load();
      }
    }
    results[0] = readAt(offset + parts[0].begin, {destination + parts[0].begin, parts[0].length});
  }
  for (auto& result : results) {
    if (!result) return result;
  }
  return {};
}

Result<FileBytes> ImageFile::read(uint64_t offset, uint64_t length) const {
  if (offset > size_ || length > size_ - offset || length == 0) {
    return Error(path_ + ": no " + std::to_string(length) + " bytes at offset " + std::to_string(offset) + " (file has " +
                 std::to_string(size_) + ")");
  }
  auto memory = Mapping::anonymousAligned(length, kSliceAlignment);
  if (!memory) return memory.error().withContext(path_);
  (void)::madvise(memory->data(), length, MADV_HUGEPAGE);  // a hint: without THP, 4 KiB pages
  if (Status read = readAt(offset, {memory->data(), length}); !read) return read.error();
  return FileBytes(std::move(*memory), length);
}

}  // namespace vmmd::boot
