// openImage: format probing (of the top image only), backing chains (loops, depth), locking; small shared helpers.
#include <sys/stat.h>

#include <vector>

#include "storage/block_device.h"
#include "storage/endian.h"
#include "storage/image_lock.h"
#include "storage/qcow2.h"
#include "storage/raw.h"

namespace vmmd::storage {

const char* formatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::Raw: return "raw";
    case ImageFormat::Qcow2: return "qcow2";
    case ImageFormat::Auto: return "auto";
  }
  return "?";
}

Result<ImageFormat> parseFormat(std::string_view name, bool allowAuto) {
  if (name == "raw") return ImageFormat::Raw;
  if (name == "qcow2") return ImageFormat::Qcow2;
  if (allowAuto && name == "auto") return ImageFormat::Auto;
  return Error("unknown image format '" + std::string(name) + "' (raw or qcow2)");
}

namespace {

std::string dirName(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Result<std::unique_ptr<BlockDevice>> openChain(const std::string& path, const OpenOptions& options, int depth,
                                               std::vector<std::pair<dev_t, ino_t>>& chain) {
  if (depth > options.maxChainDepth) {
    return Error(path + ": backing chain is deeper than " + std::to_string(options.maxChainDepth) + " images");
  }
  const FileOpener& files = options.opener ? *options.opener : plainFiles();
  auto file = ImageFile::open(path, options.readOnly, options.cache, files);
  if (!file) return file.error();
  // Loops are found by file identity, which also catches links and different spellings.
  struct stat st;
  if (::fstat((*file)->fd(), &st) != 0) return Error::fromErrno("stat " + path);
  for (const auto& seen : chain) {
    if (seen.first == st.st_dev && seen.second == st.st_ino) {
      return Error(path + ": backing file loop: " + path + " is already part of the chain");
    }
  }
  chain.emplace_back(st.st_dev, st.st_ino);
  if (options.lock) {
    if (auto r = lockImage((*file)->fd(), path, !options.readOnly); !r) return r.error();
  }
  ImageFormat format = options.format;
  if (format == ImageFormat::Auto) {
    uint8_t magic[4] = {};
    if (auto r = (*file)->read(0, magic); !r) return r.error();
    format = loadBe32(magic) == qcow2::kMagic ? ImageFormat::Qcow2 : ImageFormat::Raw;
  }
  if (format == ImageFormat::Raw) return openRaw(std::move(*file));
  auto opener = [&](const std::string& name, const std::string& fmt) -> Result<std::unique_ptr<BlockDevice>> {
    // Relative to the folder of the file the top image stands for (an fd set's path, not /dev/fdset).
    std::string resolved = resolveBackingName(files.realPath(path), name);
    OpenOptions b = options;
    b.readOnly = true;
    b.repair = false;
    auto f = parseFormat(fmt, false);  // never probed: the qcow2 layer refuses a backing file without one
    if (!f) return f.error();
    b.format = *f;
    return openChain(resolved, b, depth + 1, chain);
  };
  return openQcow2(std::move(*file), options, opener);
}

}  // namespace

std::string resolveBackingName(const std::string& image, const std::string& name) {
  return !name.empty() && name[0] == '/' ? name : dirName(image) + "/" + name;
}

Result<std::unique_ptr<BlockDevice>> openImage(const std::string& path, const OpenOptions& options) {
  std::vector<std::pair<dev_t, ino_t>> chain;
  return openChain(path, options, 0, chain);
}

}  // namespace vmmd::storage
