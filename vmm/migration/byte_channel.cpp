#include "vmm/migration/byte_channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>

namespace vmmd::migration {
namespace {

constexpr auto kSlice = std::chrono::milliseconds(100);
constexpr int kPollMs = 100;  // how often a blocked read or write looks at the cancel flag

Status waitFor(int fd, short events, const std::atomic<bool>& cancel, const char* what) {
  while (true) {
    if (cancel.load()) return Error(std::string(what) + ": cancelled");
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, kPollMs);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::fromErrno(what);
    if (n > 0) return {};
  }
}

}  // namespace

void RateLimiter::account(uint64_t bytes, const std::atomic<bool>& stop) {
  uint64_t limit = limit_.load();
  if (limit == 0) return;
  auto now = std::chrono::steady_clock::now();
  if (now - slice_start_ >= kSlice) {
    slice_start_ = now;
    slice_bytes_ = 0;
  }
  slice_bytes_ += bytes;
  uint64_t per_slice = std::max<uint64_t>(1, limit / 10);
  // Over budget: wait until the slices those bytes fill have passed.
  while (slice_bytes_ >= per_slice && !stop.load()) {
    auto slice_end = slice_start_ + kSlice;
    std::this_thread::sleep_until(slice_end);
    slice_start_ = slice_end;
    slice_bytes_ -= per_slice;
  }
}

Status FdSink::write(std::span<const uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    if (auto st = waitFor(fd_, POLLOUT, cancel_, "migration stream"); !st) return st;
    // Writes no larger than a tenth of a second's budget, so the limiter paces evenly and a
    // cancel acts within a slice.
    uint64_t limit = limiter_.limit();
    size_t most = limit ? static_cast<size_t>(std::clamp<uint64_t>(limit / 10, 4096, 256u << 10)) : 256u << 10;
    size_t chunk = std::min<size_t>(bytes.size() - done, most);
    ssize_t n = ::send(fd_, bytes.data() + done, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd_, bytes.data() + done, chunk);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == EPIPE || errno == ECONNRESET) return Error::fromErrno("the destination closed the migration stream (see its log)");
      return Error::fromErrno("migration stream: write");
    }
    done += static_cast<size_t>(n);
    written_ += static_cast<uint64_t>(n);
    limiter_.account(static_cast<uint64_t>(n), cancel_);
  }
  return {};
}

Status FdSource::read(std::span<uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    if (auto st = waitFor(fd_, POLLIN, cancel_, "migration stream"); !st) return st;
    ssize_t n = ::read(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Error::fromErrno("migration stream: read");
    }
    if (n == 0) return Error("migration stream: ended early, after " + std::to_string(consumed_ + done) + " bytes");
    done += static_cast<size_t>(n);
  }
  consumed_ += done;
  return {};
}

Status FdSource::skip(uint64_t bytes) {
  if (::lseek(fd_, static_cast<off_t>(bytes), SEEK_CUR) < 0) {
    return Error::fromErrno("migration stream: skip " + std::to_string(bytes) + " bytes (a mapped-ram stream must come from a file)");
  }
  consumed_ += bytes;
  return {};
}

bool isSocket(int fd) {
  int type = 0;
  socklen_t length = sizeof type;
  return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0;
}

Status awaitLoadedAck(int fd, const std::atomic<bool>& cancel, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto st = waitFor(fd, POLLIN, cancel, "waiting for the destination"); !st) return st;
    uint8_t ack = 0;
    ssize_t n = ::read(fd, &ack, 1);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return Error::fromErrno("the destination did not confirm the load");
    if (n == 0) return Error("the destination closed the connection without loading the stream (see its log)");
    if (ack != kLoadedAck) return Error("the destination answered " + std::to_string(ack) + " instead of its load confirmation");
    return {};
  }
  return Error("the destination did not confirm the load within " + std::to_string(timeout.count()) + " s");
}

Status MemorySource::read(std::span<uint8_t> bytes) {
  if (bytes.empty()) return {};  // an empty payload: no copy (its pointer may be null)
  if (data_.size() - at_ < bytes.size()) return Error("migration stream: ended early, after " + std::to_string(data_.size()) + " bytes");
  std::memcpy(bytes.data(), data_.data() + at_, bytes.size());
  at_ += bytes.size();
  return {};
}

Status MemorySource::skip(uint64_t bytes) {
  if (data_.size() - at_ < bytes) return Error("migration stream: ended early, after " + std::to_string(data_.size()) + " bytes");
  at_ += static_cast<size_t>(bytes);
  return {};
}

}  // namespace vmmd::migration
