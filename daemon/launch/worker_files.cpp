#include "daemon/launch/worker_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "daemon/launch/worker_argv.h"
#include "storage/block_device.h"
#include "storage/qcow2_header.h"

namespace vmmd::daemon {
namespace {

// What parseHeader wants to see: the first cluster at most (2 MiB, the largest cluster).
constexpr uint64_t kHeadBytes = 2u << 20;

Result<storage::qcow2::Header> readQcow2Header(int fd, const std::string& path) {
  off_t end = ::lseek(fd, 0, SEEK_END);
  if (end < 0) return Error::fromErrno("size of " + path);
  std::vector<uint8_t> head(std::min<uint64_t>(static_cast<uint64_t>(end), kHeadBytes));
  size_t got = 0;
  while (got < head.size()) {
    ssize_t n = ::pread(fd, head.data() + got, head.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::fromErrno("read " + path);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  head.resize(got);
  return storage::qcow2::parseHeader(head, static_cast<uint64_t>(end), path);
}

class FileCollector {
 public:
  FileCollector(const FileOpener& open) : open_(open) {}

  Status add(const std::string& field, const std::string& path, bool writable) {
    if (auto opened = openOnce(path, writable); !opened) return opened.error().withContext(field);
    return {};
  }

  // The image and, when it is qcow2, its whole backing chain.
  Status addImage(const std::string& field, const std::string& path, DiskFormat format, bool writable) {
    std::string current = path, parent;
    std::vector<std::pair<dev_t, ino_t>> chain;
    for (int depth = 0;; ++depth) {
      if (depth > kMaxBackingDepth) {
        return Error(field + ": " + path + ": backing chain is deeper than " + std::to_string(kMaxBackingDepth) + " images");
      }
      auto fd = openOnce(current, depth == 0 && writable);
      if (!fd && depth == 0) return fd.error().withContext(field);
      // The open error names the backing file; say whose backing file it is.
      if (!fd) return Error(field + ": " + parent + ": backing file " + fd.error().message(), fd.error().code());
      struct stat st {};
      if (::fstat(*fd, &st) < 0) return Error::fromErrno(field + ": stat " + current);
      if (std::find(chain.begin(), chain.end(), std::pair(st.st_dev, st.st_ino)) != chain.end()) {
        return Error(field + ": " + path + ": backing file loop: " + current + " is already part of the chain");
      }
      chain.emplace_back(st.st_dev, st.st_ino);
      if (format == DiskFormat::kRaw) return {};
      auto header = readQcow2Header(*fd, current);
      if (!header) return header.error().withContext(field);
      if (header->backingFile.empty()) return {};
      if (header->backingFormat.empty()) {
        return Error(field + ": " + current + ": backing file " + header->backingFile +
                     " does not name its format (vmm-img rebase -F raw|qcow2)");
      }
      auto backing_format = parseDiskFormat(header->backingFormat);
      if (!backing_format) {
        return Error(field + ": " + current + ": backing file " + header->backingFile + " has format '" +
                     header->backingFormat + "' (raw or qcow2)");
      }
      parent = current;
      current = storage::resolveBackingName(current, header->backingFile);
      format = *backing_format;
    }
  }

  std::vector<WorkerFile> take() { return std::move(files_); }

 private:
  // A path already opened the same way is passed once (two disks on one backing file).
  Result<int> openOnce(const std::string& path, bool writable) {
    for (const WorkerFile& file : files_) {
      if (file.path == path && file.writable == writable) return file.fd.get();
    }
    auto fd = open_(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (!fd) return fd.error();
    int raw = fd->get();
    files_.push_back(WorkerFile{path, writable, std::move(*fd)});
    return raw;
  }

  const FileOpener& open_;
  std::vector<WorkerFile> files_;
};

}  // namespace

Result<UniqueFd> openPlainFile(const std::string& path, int flags) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (!fd) return Error::fromErrno(path);
  return fd;
}

Result<std::vector<WorkerFile>> openWorkerFiles(const VmDefinition& def, const FileOpener& open) {
  FileCollector files(open);
  if (def.kernel) {
    if (auto st = files.add("kernel", *def.kernel, false); !st) return st.error();
  }
  // A firmware image of the VM's own (-bios); vmm's default SeaBIOS is the worker's to open.
  if (def.boot && def.boot->loader) {
    if (auto st = files.add("boot.loader", *def.boot->loader, false); !st) return st.error();
  }
  if (def.initrd) {
    if (auto st = files.add("initrd", *def.initrd, false); !st) return st.error();
  }
  for (size_t i = 0; i < def.disks.size(); ++i) {
    const DiskSpec& disk = def.disks[i];
    std::string field = "disks[" + std::to_string(i) + "].path";
    if (auto st = files.addImage(field, disk.path, disk.format, !disk.readonly); !st) return st.error();
  }
  return files.take();
}

std::vector<std::string> addFdArgs(std::vector<WorkerFile> files, PassedFds& fds) {
  std::vector<std::string> args;
  int set = 1;
  for (WorkerFile& file : files) {
    int number = fds.add(std::move(file.fd));
    args.push_back("-add-fd");
    args.push_back("fd=" + std::to_string(number) + ",set=" + std::to_string(set++) +
                   ",opaque=" + escapeOptionValue(file.path));
  }
  return args;
}

}  // namespace vmmd::daemon
