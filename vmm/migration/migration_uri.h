// Where a migration goes or comes from, in QEMU's URI syntax: unix:PATH, tcp:HOST:PORT,
// fd:NAME (a descriptor given with QMP getfd, or an inherited descriptor's number), exec:CMD
// (the stream goes to the command's stdin on the source, comes from its stdout on the
// destination; run with /bin/sh -c) and file:PATH (QEMU 8.2's: the stream in a file, or with
// the mapped-ram capability a file whose RAM the destination maps; see mapped_ram.h).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vmmd::migration {

struct MigrationUri {
  enum class Kind { Unix, Tcp, Fd, Exec, File };
  Kind kind;
  std::string path;     // unix, file
  std::string host;     // tcp
  std::string port;     // tcp
  std::string fd_name;  // fd
  std::string command;  // exec
};

// QEMU's error for anything else: "Parameter 'uri' expects a valid migration protocol".
Result<MigrationUri> parseMigrationUri(const std::string& uri);

// A command started for exec:, killed (if still running) and reaped when this goes away.
class ChildProcess {
 public:
  ChildProcess() = default;
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  ChildProcess(ChildProcess&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();
  // Waits for it to exit; an error when it failed (exit status, signal).
  Status wait();

 private:
  pid_t pid_ = -1;
};

// A file the source writes under a temporary name (PATH.partial) and renames to PATH once the
// stream is whole: a reader never sees half a file, and a guest that was restored from PATH by
// mapping it keeps its old file (the inode lives on) instead of seeing it truncated under it.
// Removed if never committed.
class PendingFile {
 public:
  PendingFile() = default;
  PendingFile(std::string partial, std::string final_path) : partial_(std::move(partial)), final_(std::move(final_path)) {}
  PendingFile(PendingFile&& other) noexcept : partial_(std::move(other.partial_)), final_(std::move(other.final_)) { other.partial_.clear(); }
  PendingFile& operator=(PendingFile&& other) noexcept;
  ~PendingFile();
  // fdatasync(fd), then the rename. Nothing to do for other channels.
  Status commit(int fd);

 private:
  std::string partial_, final_;
};

// The open end of a migration stream, the command behind it for exec:, the file for file:.
struct Channel {
  UniqueFd fd;
  ChildProcess child;
  PendingFile file;
};

// Resolves fd:NAME: the descriptor getfd stored under NAME (taken: the caller owns it), or none.
using FdLookup = std::function<std::optional<UniqueFd>(const std::string& name)>;

// Source side: connects (unix, tcp), takes the named descriptor (fd) or starts the command (exec).
// A pending tcp: connect gives up when `cancelled` becomes true.
Result<Channel> openOutgoing(const MigrationUri& uri, const FdLookup& fds, const std::atomic<bool>& cancelled);
// Destination side, first step: a listening socket (unix, tcp), or the stream itself (fd, exec).
struct IncomingEndpoint {
  UniqueFd listener;  // unix, tcp: accept one connection from it
  Channel stream;     // fd, exec: read from it directly
};
Result<IncomingEndpoint> openIncoming(const MigrationUri& uri, const FdLookup& fds);

}  // namespace vmmd::migration
