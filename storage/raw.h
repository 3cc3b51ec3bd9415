// The raw format: the guest disk is the file, byte for byte.
#pragma once

#include <memory>

#include "storage/block_device.h"
#include "storage/image_file.h"

namespace vmmd::storage {

Result<std::unique_ptr<BlockDevice>> openRaw(std::unique_ptr<ImageFile> file);
// Creates (or truncates) path as a sparse raw image of size bytes.
Result<void> createRaw(const std::string& path, uint64_t size);

}  // namespace vmmd::storage
