// Compressed clusters: raw deflate (zlib, window bits 12, no header), packed byte-wise into host
// clusters; the L2 entry holds the host offset and the number of 512-byte sectors spanned.
#include <zlib.h>

#include <cstring>

#include "storage/endian.h"
#include "storage/qcow2_image.h"

namespace vmmd::storage::qcow2 {

void Image::compressedExtent(uint64_t entry, uint64_t* offset, uint64_t* length) const {
  *offset = entry & ((1ull << csizeShift_) - 1);
  uint64_t sectors = ((entry >> csizeShift_) & csizeMask_) + 1;
  *length = sectors * 512 - (*offset & 511);
}

Result<void> Image::readCompressed(uint64_t entry, std::span<uint8_t> cluster) const {
  uint64_t off, len;
  compressedExtent(entry, &off, &len);
  if (off >= hostEnd_) return corrupt("compressed cluster at offset " + std::to_string(off) + " lies outside the file");
  len = std::min(len, hostEnd_ - off);
  std::vector<uint8_t> in(len);
  if (auto r = file_->read(off, in); !r) return r;
  z_stream s = {};
  if (inflateInit2(&s, -12) != Z_OK) return Error(path() + ": inflateInit2 failed");
  s.next_in = in.data();
  s.avail_in = static_cast<uInt>(in.size());
  s.next_out = cluster.data();
  s.avail_out = static_cast<uInt>(cluster.size());
  int ret = inflate(&s, Z_FINISH);
  bool ok = (ret == Z_STREAM_END || ret == Z_BUF_ERROR) && s.avail_out == 0;
  inflateEnd(&s);
  if (!ok) return corrupt("compressed cluster at offset " + std::to_string(off) + " does not decompress");
  return {};
}

Result<void> Image::writeCompressed(uint64_t offset, std::span<const uint8_t> data) {
  if (readOnly()) return Error(path() + ": image is read-only", EROFS);
  if ((offset & (cs_ - 1)) || offset >= size_ || data.size() != std::min<uint64_t>(cs_, size_ - offset)) {
    return Error(path() + ": compressed writes must cover exactly one whole cluster");
  }
  std::vector<uint8_t> in(cs_, 0);
  std::memcpy(in.data(), data.data(), data.size());
  std::vector<uint8_t> out(cs_);
  z_stream s = {};
  if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Error(path() + ": deflateInit2 failed");
  }
  s.next_in = in.data();
  s.avail_in = static_cast<uInt>(cs_);
  s.next_out = out.data();
  s.avail_out = static_cast<uInt>(cs_ - 1);
  int ret = deflate(&s, Z_FINISH);
  uint64_t clen = cs_ - 1 - s.avail_out;
  deflateEnd(&s);
  if (ret != Z_STREAM_END) return write(offset, data);  // does not compress: store as is
  return noteCorruption(writeCompressedCluster(offset, out.data(), clen));
}

Result<void> Image::writeCompressedCluster(uint64_t offset, const uint8_t* out, uint64_t clen) {
  if (markedCorrupt_) return Error(path() + ": image is marked corrupt", EUCLEAN);

  std::shared_lock io(io_);
  std::unique_lock meta(meta_);
  const uint64_t gc = offset >> cb_;
  inflightDone_.wait(meta, [&] { return !inflight_.count(gc); });
  auto l2off = ensureL2(gc >> l2Bits_);
  if (!l2off) return l2off.error();
  auto table = l2Table(*l2off);
  if (!table) return table.error();
  const uint64_t l2i = gc & ((1ull << l2Bits_) - 1);
  const uint64_t old = (**table)[l2i];
  auto host = allocBytes(clen);
  if (!host) return host.error();
  if (auto r = file_->write(*host, std::span<const uint8_t>(out, clen)); !r) return r;
  if (auto r = syncAllocations(); !r) return r;  // the refcount before the entry
  uint64_t sectors = ((*host + clen - 1) >> 9) - (*host >> 9);
  uint64_t entry = kOflagCompressed | (sectors << csizeShift_) | *host;
  if (auto r = setL2Entries(*l2off, l2i, std::span<const uint64_t>(&entry, 1)); !r) return r;
  return freeEntry(old);
}

}  // namespace vmmd::storage::qcow2
