// Where a migration stream goes and comes from: a connected socket, a pipe, a file (ByteSink /
// ByteSource over an fd), or memory (tests, the fuzz target). The fd sink honours max-bandwidth
// and stops when the migration is cancelled; the fd source waits with a poll so a cancel or a
// dead peer ends it instead of blocking forever.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"

namespace vmmd::migration {

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status write(std::span<const uint8_t> bytes) = 0;
};

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Exactly bytes.size() bytes, or an error (a stream that ends early says so).
  virtual Status read(std::span<uint8_t> bytes) = 0;
  // Moves `bytes` ahead without reading them (a mapped-ram file's RAM data); only files and
  // memory can.
  virtual Status skip(uint64_t bytes) = 0;
};

// Limits the rate of bytes through a sink: at most `bytes_per_second` on average, in slices of
// 100 ms as QEMU's rate limiter does. 0 = unlimited. Changing the limit takes effect at once.
class RateLimiter {
 public:
  void setLimit(uint64_t bytes_per_second) { limit_.store(bytes_per_second); }
  uint64_t limit() const { return limit_.load(); }
  // Sleeps as long as sending `bytes` now would exceed the limit, unless `stop` becomes true.
  void account(uint64_t bytes, const std::atomic<bool>& stop);

 private:
  std::atomic<uint64_t> limit_{0};
  std::chrono::steady_clock::time_point slice_start_{};
  uint64_t slice_bytes_ = 0;
};

// The destination's word that it loaded the stream and runs the guest: one byte back on a
// socket (unix, tcp, an fd: that is a socket). Pipes and files have no way back: there the source
// completes once the stream is written, as QEMU's pre-copy does.
inline constexpr uint8_t kLoadedAck = 'K';
bool isSocket(int fd);
// Source: waits for the ack (its write side already shut down); an error when the destination
// closed without it (it refused or failed to load the stream), after `timeout`, or on a cancel.
Status awaitLoadedAck(int fd, const std::atomic<bool>& cancel, std::chrono::seconds timeout);

class FdSink final : public ByteSink {
 public:
  // `fd` stays owned by the caller. `cancel` true makes the next write fail with "cancelled".
  // `written` counts the bytes as they leave (query-migrate reads it while a large section is
  // still on its way).
  FdSink(int fd, RateLimiter& limiter, const std::atomic<bool>& cancel, std::atomic<uint64_t>& written)
      : fd_(fd), limiter_(limiter), cancel_(cancel), written_(written) {}
  Status write(std::span<const uint8_t> bytes) override;

 private:
  int fd_;
  RateLimiter& limiter_;
  const std::atomic<bool>& cancel_;
  std::atomic<uint64_t>& written_;
};

class FdSource final : public ByteSource {
 public:
  FdSource(int fd, const std::atomic<bool>& cancel) : fd_(fd), cancel_(cancel) {}
  Status read(std::span<uint8_t> bytes) override;
  Status skip(uint64_t bytes) override;
  uint64_t consumed() const { return consumed_; }

 private:
  int fd_;
  const std::atomic<bool>& cancel_;
  uint64_t consumed_ = 0;
};

class MemorySink final : public ByteSink {
 public:
  Status write(std::span<const uint8_t> bytes) override {
    data.insert(data.end(), bytes.begin(), bytes.end());
    return {};
  }
  std::vector<uint8_t> data;
};

class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::span<const uint8_t> data) : data_(data) {}
  Status read(std::span<uint8_t> bytes) override;
  Status skip(uint64_t bytes) override;

 private:
  std::span<const uint8_t> data_;
  size_t at_ = 0;
};

}  // namespace vmmd::migration
