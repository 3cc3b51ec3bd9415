// vmm-img convert [-f FMT] -O FMT [-p] [-c] [-n] SRC DST: chunks of 2 MiB handled by a few worker
// threads; zero ranges (from block status or by scanning the data) are skipped on a fresh target
// and written as zeroes with -n.
#include <getopt.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "base/parse.h"
#include "storage/img/common.h"
#include "storage/qcow2.h"
#include "storage/raw.h"

namespace vmmd::img {

using namespace vmmd::storage;

namespace {

bool isZero(const uint8_t* p, size_t len) {
  if (len < 16) {
    for (size_t i = 0; i < len; ++i) {
      if (p[i]) return false;
    }
    return true;
  }
  static const uint8_t zero[16] = {};
  return std::memcmp(p, zero, 16) == 0 && std::memcmp(p, p + 16, len - 16) == 0;
}

struct Converter {
  BlockDevice* src;
  BlockDevice* dst;
  Qcow2Device* dstQcow2;
  bool fresh;
  bool compress;
  uint64_t granule;
  uint64_t chunk;
  uint64_t size;
  std::atomic<uint64_t> next{0};
  std::atomic<uint64_t> done{0};
  std::atomic<bool> failed{false};
  std::mutex errMutex;
  std::string error;

  void setError(const Error& e) {
    std::lock_guard l(errMutex);
    if (!failed.exchange(true)) error = e.message();
  }

  Result<void> zeroes(uint64_t off, uint64_t len) { return fresh ? Result<void>() : dst->writeZeroes(off, len); }

  Result<void> process(uint64_t off, uint64_t len, uint8_t* buf) {
    // Fill buf, reading only what block status says holds data.
    bool anyData = false;
    for (uint64_t pos = off; pos < off + len;) {
      auto ext = src->blockStatus(pos, off + len - pos);
      if (!ext) return ext.error();
      uint64_t n = std::max<uint64_t>(1, std::min(ext->length, off + len - pos));
      bool zero = ext->kind == ExtentKind::Zero || (ext->kind == ExtentKind::Unallocated && !src->backing());
      if (zero) {
        std::memset(buf + (pos - off), 0, n);
      } else {
        if (auto r = src->read(pos, std::span(buf + (pos - off), n)); !r) return r;
        anyData = true;
      }
      pos += n;
    }
    if (!anyData) return zeroes(off, len);
    // Write runs of non-zero granules, skip (or zero) the rest.
    uint64_t runStart = 0;
    bool inRun = false;
    for (uint64_t g = 0; g <= len; g += granule) {
      bool dataGranule = false;
      uint64_t glen = std::min(granule, len - std::min(g, len));
      if (g < len) dataGranule = !isZero(buf + g, glen);
      if (dataGranule && compress) {
        if (auto r = dstQcow2->writeCompressed(off + g, std::span<const uint8_t>(buf + g, glen)); !r) return r;
        continue;
      }
      if (dataGranule && !inRun) {
        runStart = g;
        inRun = true;
      } else if (!dataGranule && inRun) {
        if (auto r = dst->write(off + runStart, std::span<const uint8_t>(buf + runStart, g - runStart)); !r) return r;
        inRun = false;
      }
      if (!dataGranule && g < len) {
        if (auto r = zeroes(off + g, glen); !r) return r;
      }
    }
    return {};
  }

  void worker(bool progress) {
    void* mem = nullptr;
    if (posix_memalign(&mem, 4096, chunk) != 0) {
      setError(Error("out of memory"));
      return;
    }
    uint8_t* buf = static_cast<uint8_t*>(mem);
    const uint64_t chunks = (size + chunk - 1) / chunk;
    for (uint64_t i; !failed && (i = next++) < chunks;) {
      uint64_t off = i * chunk, len = std::min(chunk, size - off);
      if (auto r = process(off, len, buf); !r) {
        setError(r.error());
        break;
      }
      uint64_t d = done += len;
      if (progress) {
        std::lock_guard l(errMutex);
        std::printf("    (%.2f/100%%)\r", 100.0 * d / size);
        std::fflush(stdout);
      }
    }
    std::free(mem);
  }
};

}  // namespace

int cmdConvert(int argc, char** argv) {
  std::string srcFmt = "auto", dstFmt = "raw", opts, cache = "writeback", srcCache = "writeback";
  bool progress = false, compress = false, noCreate = false;
  int workers = 8;  // like qemu-img convert -m
  optind = 1;
  int c;
  while ((c = getopt(argc, argv, "f:O:o:pcnqt:T:m:WU")) != -1) {
    switch (c) {
      case 'f': srcFmt = optarg; break;
      case 'O': dstFmt = optarg; break;
      case 'o': opts += std::string(opts.empty() ? "" : ",") + optarg; break;
      case 'p': progress = true; break;
      case 'c': compress = true; break;
      case 'n': noCreate = true; break;
      case 'q': progress = false; break;
      case 't': cache = optarg; break;
      case 'T': srcCache = optarg; break;
      case 'm': {
        auto n = parseNumberOption("-m", optarg);
        if (!n) return fail(n.error().message());
        workers = static_cast<int>(std::clamp<uint64_t>(*n, 1, 64));
        break;
      }
      case 'W': case 'U': break;
      default: return usageError("convert", "bad option");
    }
  }
  if (optind + 2 != argc) return usageError("convert", "expecting a source and a destination file");
  std::string srcPath = argv[optind], dstPath = argv[optind + 1];
  auto sf = parseFormat(srcFmt);
  if (!sf) return fail(sf.error().message());
  auto df = parseFormat(dstFmt, false);
  if (!df) return fail(df.error().message());
  auto dc = parseCacheOption(cache);
  if (!dc) return fail(dc.error().message());
  auto sc = parseCacheOption(srcCache);
  if (!sc) return fail(sc.error().message());
  if (compress && *df != ImageFormat::Qcow2) return fail("compression (-c) needs -O qcow2");
  OpenOptions so;
  so.format = *sf;
  so.readOnly = true;
  so.cache = *sc;
  auto src = openImage(srcPath, so);
  if (!src) return fail(src.error().message());
  const uint64_t size = (*src)->size();
  if (!noCreate) {
    auto o = parseOptions(opts);
    if (!o) return fail(o.error().message());
    Result<void> r;
    if (*df == ImageFormat::Raw) {
      if (!o->empty()) return fail(dstPath + ": raw images take no options");
      r = createRaw(dstPath, size);
    } else {
      Qcow2CreateOptions q;
      q.size = size;
      for (auto& [k, v] : *o) {
        if (k == "cluster_size") {
          auto s = parseSize(v);
          if (!s) return fail(dstPath + ": cluster_size: " + s.error().message());
          q.clusterSize = static_cast<uint32_t>(*s);
        } else if (k == "compat") {
          q.version = (v == "0.10" || v == "v2") ? 2 : 3;
        } else if (k == "refcount_bits") {
          auto bits = parseNumberOption("refcount_bits", v);
          if (!bits) return fail(dstPath + ": " + bits.error().message());
          q.refcountBits = static_cast<uint32_t>(*bits);
        } else {
          return fail(dstPath + ": unsupported option '" + k + "'");
        }
      }
      r = createQcow2(dstPath, q);
    }
    if (!r) return fail(r.error().message());
  }
  OpenOptions dopt;
  dopt.format = *df;
  dopt.cache = *dc;
  // Nobody uses the target before convert ends with a flush: ordering its metadata on the disk
  // meanwhile buys nothing (qemu-img convert writes with cache=unsafe by default).
  dopt.writeBarriers = false;
  auto dst = openImage(dstPath, dopt);
  if (!dst) return fail(dst.error().message());
  if ((*dst)->size() < size) {
    return fail(dstPath + ": target is smaller (" + std::to_string((*dst)->size()) + " bytes) than the source (" +
                std::to_string(size) + " bytes)");
  }
  Converter cv;
  cv.src = src->get();
  cv.dst = dst->get();
  cv.dstQcow2 = dynamic_cast<Qcow2Device*>(dst->get());
  cv.fresh = !noCreate && !(*dst)->backing();
  cv.compress = compress;
  cv.granule = cv.dstQcow2 ? cv.dstQcow2->clusterSize() : 4096;
  cv.chunk = std::max<uint64_t>(2u << 20, cv.granule);
  cv.size = size;
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) threads.emplace_back([&cv, progress, i] { cv.worker(progress && i == 0); });
  for (auto& t : threads) t.join();
  if (progress) std::printf("    (100.00/100%%)\n");
  if (cv.failed) return fail(cv.error);
  if (auto r = (*dst)->flush(); !r) return fail(r.error().message());
  return 0;
}

}  // namespace vmmd::img
