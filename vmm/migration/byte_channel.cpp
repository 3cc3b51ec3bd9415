#include "vmm/migration/byte_channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

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
    // Small writes, so the limiter and a cancel act within a slice.
    size_t chunk = std::min<size_t>(bytes.size() - done, 256u << 10);
    ssize_t n = ::send(fd_, bytes.data() + done, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd_, bytes.data() + done, chunk);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
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

Status MemorySource::read(std::span<uint8_t> bytes) {
  if (data_.size() - at_ < bytes.size()) return Error("migration stream: ended early, after " + std::to_string(data_.size()) + " bytes");
  std::memcpy(bytes.data(), data_.data() + at_, bytes.size());
  at_ += bytes.size();
  return {};
}

}  // namespace vmmd::migration
