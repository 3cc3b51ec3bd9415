// Owns one mmap()ed region; unmaps it exactly once.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

#include "base/result.h"

namespace vmmd {

class Mapping {
 public:
  Mapping() = default;
  ~Mapping() { reset(); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  Mapping(Mapping&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  Mapping& operator=(Mapping&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }

  // Anonymous private memory (guest RAM); pages are only backed once touched.
  static Result<Mapping> anonymous(size_t size, int extra_flags = MAP_NORESERVE) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
    if (p == MAP_FAILED) return Error::fromErrno("mmap " + std::to_string(size) + " bytes");
    return Mapping(static_cast<uint8_t*>(p), size);
  }

  // Anonymous private memory that starts on a multiple of `alignment` (a power of two): guest
  // RAM on a 2 MiB boundary, so that huge pages can back it and KVM can map them as large pages.
  static Result<Mapping> anonymousAligned(size_t size, size_t alignment, int extra_flags = MAP_NORESERVE) {
    auto padded = anonymous(size + alignment, extra_flags);
    if (!padded) return padded.error();
    auto base = reinterpret_cast<uintptr_t>(padded->data_);
    uintptr_t start = (base + alignment - 1) & ~(uintptr_t{alignment} - 1);
    uint8_t* data = std::exchange(padded->data_, nullptr);
    padded->size_ = 0;
    // Give back the head and tail around the aligned part.
    if (start > base) ::munmap(data, start - base);
    size_t tail = base + size + alignment - (start + size);
    if (tail > 0) ::munmap(reinterpret_cast<uint8_t*>(start + size), tail);
    return Mapping(reinterpret_cast<uint8_t*>(start), size);
  }

  static Result<Mapping> file(int fd, size_t size, int prot, int flags, off_t offset = 0) {
    void* p = ::mmap(nullptr, size, prot, flags, fd, offset);
    if (p == MAP_FAILED) return Error::fromErrno("mmap fd");
    return Mapping(static_cast<uint8_t*>(p), size);
  }

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool valid() const { return data_ != nullptr; }

  void reset() {
    if (data_) ::munmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
  }

 private:
  Mapping(uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace vmmd
