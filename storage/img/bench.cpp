// vmm-img bench: qemu-img bench's options and output. Requests go to `depth` threads doing
// synchronous I/O through the BlockDevice, the way the virtio-blk I/O thread pool uses it.
// Request i goes to (offset + i * step) modulo (image size - buffer size).
#include <getopt.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "base/parse.h"
#include "storage/img/common.h"

namespace vmmd::img {

using namespace vmmd::storage;

int cmdBench(int argc, char** argv) {
  std::string fmt = "auto", cache = "writeback";
  uint64_t count = 75000, depth = 64, offset = 0, bufSize = 4096, step = 0, flushInterval = 0;
  bool write = false, quiet = false, noDrain = false;
  uint64_t pattern = 0;
  static const option longOpts[] = {{"pattern", required_argument, nullptr, 'P'},
                                    {"flush-interval", required_argument, nullptr, 'F'},
                                    {"no-drain", no_argument, nullptr, 'D'},
                                    {nullptr, 0, nullptr, 0}};
  optind = 1;
  int c;
  auto sizeArg = [](const char* s, uint64_t* out) {
    auto v = parseSize(s);
    if (!v) return false;
    *out = *v;
    return true;
  };
  auto numberArg = [](const char* option, uint64_t* out) {
    auto v = parseNumberOption(option, optarg);
    if (!v) {
      fail(v.error().message());
      return false;
    }
    *out = *v;
    return true;
  };
  while ((c = getopt_long(argc, argv, "c:d:f:no:qs:S:t:wi:U", longOpts, nullptr)) != -1) {
    switch (c) {
      case 'c': if (!numberArg("-c", &count)) return 1; break;
      case 'd': if (!numberArg("-d", &depth)) return 1; depth = std::max<uint64_t>(1, depth); break;
      case 'f': fmt = optarg; break;
      case 'n': case 'i': case 'U': break;
      case 'o': if (!sizeArg(optarg, &offset)) return fail("invalid offset"); break;
      case 'q': quiet = true; break;
      case 's': if (!sizeArg(optarg, &bufSize) || bufSize == 0) return fail("invalid buffer size"); break;
      case 'S': if (!sizeArg(optarg, &step)) return fail("invalid step size"); break;
      case 't': cache = optarg; break;
      case 'w': write = true; break;
      case 'P':
        if (!numberArg("--pattern", &pattern)) return 1;
        if (pattern > 0xff) return fail("--pattern: expected a byte value (0 to 0xff), not " + std::string(optarg));
        break;
      case 'F': if (!numberArg("--flush-interval", &flushInterval)) return 1; break;
      case 'D': noDrain = true; break;
      default: return usageError("bench", "bad option");
    }
  }
  (void)noDrain;
  if (optind >= argc) return usageError("bench", "expecting a file name");
  if (step == 0) step = bufSize;
  std::string file = argv[optind];
  auto format = parseFormat(fmt);
  if (!format) return fail(format.error().message());
  auto cm = parseCacheOption(cache);
  if (!cm) return fail(cm.error().message());
  OpenOptions o;
  o.format = *format;
  o.readOnly = !write;
  o.cache = *cm;
  // cache=unsafe ignores flushes, so qcow2's write-ordering barriers are pointless too (as in QEMU,
  // where they are flushes).
  o.writeBarriers = !diskCacheFlags(*parseDiskCache(cache)).no_flush;
  auto dev = openImage(file, o);
  if (!dev) return fail(dev.error().message());
  const uint64_t size = (*dev)->size();
  if (bufSize > size) return fail(file + ": buffer size larger than the image");
  depth = std::min(depth, std::max<uint64_t>(count, 1));
  if (!quiet) {
    std::printf("Sending %llu %s requests, %llu bytes each, %llu in parallel (starting at offset %llu, step size %llu)\n",
                (unsigned long long)count, write ? "write" : "read", (unsigned long long)bufSize,
                (unsigned long long)depth, (unsigned long long)offset, (unsigned long long)step);
  }
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex errMutex;
  std::string error;
  // Wrap like qemu-img bench, keeping offsets aligned to the step.
  const uint64_t span = size > bufSize ? size - bufSize : 1;
  auto worker = [&] {
    void* mem = nullptr;
    if (posix_memalign(&mem, 4096, bufSize) != 0) {
      failed = true;
      return;
    }
    std::memset(mem, static_cast<int>(pattern), bufSize);
    auto buf = std::span(static_cast<uint8_t*>(mem), bufSize);
    for (uint64_t i; !failed && (i = next++) < count;) {
      uint64_t off = (offset + i * step) % span;
      Result<void> r = write ? (*dev)->write(off, buf) : (*dev)->read(off, buf);
      if (r && write && flushInterval && (i + 1) % flushInterval == 0) r = (*dev)->flush();
      if (!r) {
        std::lock_guard l(errMutex);
        if (!failed.exchange(true)) error = r.error().message();
      }
    }
    std::free(mem);
  };
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (uint64_t i = 0; i < depth; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  // Timed like qemu-img bench: the final flush (when the image closes) is not part of the run.
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (failed) return fail(error);
  if (!quiet) std::printf("Run completed in %3.3f seconds.\n", secs);
  if (write) {
    if (auto r = (*dev)->flush(); !r) return fail(r.error().message());
  }
  return 0;
}

}  // namespace vmmd::img
