// Records what this process does to one file: writes, zeroed ranges (hole punching, zero
// ranges), size changes and syncs, in order. It interposes the libc calls the block layer makes
// (pwritev, fallocate, ftruncate, fdatasync...), so the code under test runs unchanged; link it
// only into a test binary.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vmmd::storage::powerloss {

struct FileEvent {
  enum class Kind { Write, Zero, Resize, Sync };
  Kind kind;
  uint64_t offset = 0;  // Resize: the new size
  uint64_t length = 0;
  bool mayExtend = false;     // Zero: the file grows to offset + length if it is shorter
  std::vector<uint8_t> data;  // Write
};

// Starts recording the calls made on any descriptor open on `path`.
void startRecording(const std::string& path);
std::vector<FileEvent> stopRecording();
// Events recorded since startRecording.
size_t recordedSoFar();

}  // namespace vmmd::storage::powerloss
