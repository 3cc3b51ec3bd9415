// QEMU-compatible image locking (block/file-posix.c): OFD byte-range read locks on an image file.
// Permission bit i ("consistent read" 0, "write" 1, "write unchanged" 2, "resize" 3) is byte
// 100 + i when the holder uses it and byte 200 + i when the holder does not let others use it.
// A writer locks 100, 101, 103, 201, 203; a reader 100, 201, 203 (as qemu-io/qemu-img do), then
// checks that nobody else holds a byte that conflicts. The locks go away with the descriptor.
#pragma once

#include <string>

#include "base/result.h"

namespace vmmd::storage {

// Errors read like QEMU's: 'disk.qcow2: Failed to get "write" lock: Is another process using the
// image?'.
Result<void> lockImage(int fd, const std::string& path, bool write);

// Drops every lock byte lockImage may have taken through `fd`'s open file description (all of
// them, whichever descriptor took them: OFD locks belong to the description, which a dup shares).
// A migration's source hands its images over this way while its worker still runs.
Result<void> unlockImage(int fd, const std::string& path);

}  // namespace vmmd::storage
