#include "daemon/access/definition_files.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "daemon/access/open_as_owner.h"
#include "storage/block_device.h"
#include "storage/qcow2_header.h"

namespace vmmd::daemon {
namespace {

namespace qcow2 = storage::qcow2;

// The header of the qcow2 image at `fd`, parsed as the worker's block layer will parse it.
Result<qcow2::Header> readQcow2Header(const std::string& image, int fd) {
  struct stat st {};
  if (::fstat(fd, &st) < 0) return Error::fromErrno("stat " + image);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  std::vector<uint8_t> head(std::min<uint64_t>(size, qcow2::kHeaderReadBytes));
  size_t done = 0;
  while (done < head.size()) {
    ssize_t n = ::pread(fd, head.data() + done, head.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::fromErrno("read " + image);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  head.resize(done);
  return qcow2::parseHeader(head, size, image);
}

struct FileIdentity {
  dev_t dev;
  ino_t ino;
  bool operator==(const FileIdentity&) const = default;
};

Result<FileIdentity> identityOf(const std::string& path, int fd) {
  struct stat st {};
  if (::fstat(fd, &st) < 0) return Error::fromErrno("stat " + path);
  return FileIdentity{st.st_dev, st.st_ino};
}

Status checkFile(const Owner& owner, const std::string& field, const std::string& path, int flags, bool qcow2) {
  auto fd = openAsOwner(owner, path, flags);
  if (!fd) return fd.error().withContext(field);
  if (!qcow2) return {};
  if (auto st = checkBackingChainAsOwner(owner, path, fd->get()); !st) return st.error().withContext(field);
  return {};
}

}  // namespace

Status checkBackingChainAsOwner(const Owner& owner, const std::string& image, int fd) {
  std::vector<FileIdentity> chain;
  auto top = identityOf(image, fd);
  if (!top) return top.error();
  chain.push_back(*top);
  std::string current = image;
  UniqueFd held;  // the backing file being read; the top image's fd belongs to the caller
  int current_fd = fd;
  for (int depth = 1;; ++depth) {
    auto header = readQcow2Header(current, current_fd);
    if (!header) return header.error();
    if (header->backingFile.empty()) return {};
    std::string backing = storage::resolveBackingName(current, header->backingFile);
    std::string what = current + ": backing file " + backing;
    if (header->backingFormat.empty()) return Error(what + ": the image names no backing format (vmm never probes one)");
    if (header->backingFormat != "raw" && header->backingFormat != "qcow2") {
      return Error(what + ": backing format '" + header->backingFormat + "' is not supported (raw, qcow2)");
    }
    if (depth > kMaxBackingDepth) return Error(image + ": backing chain is deeper than " + std::to_string(kMaxBackingDepth) + " images");
    auto opened = openAsOwner(owner, backing, O_RDONLY);
    if (!opened) return Error(current + ": backing file " + opened.error().message(), opened.error().code());
    auto identity = identityOf(backing, opened->get());
    if (!identity) return identity.error();
    if (std::find(chain.begin(), chain.end(), *identity) != chain.end()) {
      return Error(what + ": backing file loop (already part of the chain)");
    }
    chain.push_back(*identity);
    if (header->backingFormat == "raw") return {};
    held = std::move(*opened);
    current_fd = held.get();
    current = std::move(backing);
  }
}

Status checkDefinitionFilesAsOwner(const VmDefinition& def, const Owner& owner) {
  if (auto st = checkFile(owner, "kernel", def.kernel, O_RDONLY, false); !st) return st;
  if (def.initrd) {
    if (auto st = checkFile(owner, "initrd", *def.initrd, O_RDONLY, false); !st) return st;
  }
  for (size_t i = 0; i < def.disks.size(); ++i) {
    const DiskSpec& disk = def.disks[i];
    std::string field = "disks[" + std::to_string(i) + "].path";
    int flags = disk.readonly ? O_RDONLY : O_RDWR;
    if (auto st = checkFile(owner, field, disk.path, flags, disk.format == DiskFormat::kQcow2); !st) return st;
  }
  return {};
}

}  // namespace vmmd::daemon
