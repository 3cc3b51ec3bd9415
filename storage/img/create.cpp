// vmm-img create -f FMT [-b BACKING -F FMT] [-o cluster_size=N] FILE [SIZE]
#include <getopt.h>

#include <cstdio>

#include "base/parse.h"
#include "storage/img/common.h"
#include "storage/qcow2.h"
#include "storage/raw.h"

namespace vmmd::img {

using namespace vmmd::storage;

int cmdCreate(int argc, char** argv) {
  std::string fmt = "raw", backing, backingFmt, opts;
  bool quiet = false;
  optind = 1;
  int c;
  while ((c = getopt(argc, argv, "f:b:F:o:qu")) != -1) {
    switch (c) {
      case 'f': fmt = optarg; break;
      case 'b': backing = optarg; break;
      case 'F': backingFmt = optarg; break;
      case 'o': opts += std::string(opts.empty() ? "" : ",") + optarg; break;
      case 'q': quiet = true; break;
      case 'u': break;
      default: return usageError("create", "bad option");
    }
  }
  if (optind >= argc) return usageError("create", "expecting a file name");
  std::string file = argv[optind];
  auto format = parseFormat(fmt, false);
  if (!format) return fail(format.error().message());
  auto o = parseOptions(opts);
  if (!o) return fail(o.error().message());
  Qcow2CreateOptions q;
  for (auto& [k, v] : *o) {
    if (k == "cluster_size") {
      auto s = parseSize(v);
      if (!s) return fail(file + ": cluster_size: " + s.error().message());
      q.clusterSize = static_cast<uint32_t>(*s);
    } else if (k == "compat") {
      if (v == "0.10" || v == "v2") q.version = 2;
      else if (v == "1.1" || v == "v3") q.version = 3;
      else return fail(file + ": invalid compat value '" + v + "' (0.10 or 1.1)");
    } else if (k == "refcount_bits") {
      auto bits = parseNumberOption("refcount_bits", v);
      if (!bits) return fail(file + ": " + bits.error().message());
      q.refcountBits = static_cast<uint32_t>(*bits);
    } else if (k == "backing_file") {
      backing = v;
    } else if (k == "backing_fmt") {
      backingFmt = v;
    } else if (k == "size") {
      // handled below
    } else {
      return fail(file + ": unsupported option '" + k + "'");
    }
  }
  uint64_t size = 0;
  bool haveSize = optind + 1 < argc || o->count("size");
  if (haveSize) {
    auto s = parseSize(optind + 1 < argc ? std::string(argv[optind + 1]) : o->at("size"));
    if (!s) return fail(file + ": " + s.error().message());
    if (*s > kMaxImageSize) return fail(file + ": the image size must be less than 8 EiB");
    size = *s;
  }
  if (*format == ImageFormat::Raw && !backing.empty()) return fail(file + ": raw images cannot have a backing file");
  if (!backing.empty() && backingFmt.empty()) {
    // As qemu-img 7.2: probing it would let whoever wrote the backing file choose its format.
    return fail(file + ": Backing file specified without backing format (-F raw|qcow2)");
  }
  if (!backing.empty()) {
    // The backing file must open; its size is the default size.
    std::string resolved = backing;
    if (backing[0] != '/') {
      auto slash = file.rfind('/');
      if (slash != std::string::npos) resolved = file.substr(0, slash + 1) + backing;
    }
    OpenOptions bo;
    bo.readOnly = true;
    bo.lock = false;
    auto bf = parseFormat(backingFmt, false);
    if (!bf) return fail(file + ": " + bf.error().message());
    bo.format = *bf;
    auto b = openImage(resolved, bo);
    if (!b) return fail(file + ": could not open backing file: " + b.error().message());
    if (!haveSize) {
      size = (*b)->size();
      haveSize = true;
    }
  }
  if (!haveSize) return usageError("create", "expecting a size for " + file);
  if (!quiet) {
    std::printf("Formatting '%s', fmt=%s", file.c_str(), fmt.c_str());
    if (*format == ImageFormat::Qcow2) std::printf(" cluster_size=%u", q.clusterSize);
    if (!backing.empty()) std::printf(" backing_file=%s backing_fmt=%s", backing.c_str(), backingFmt.c_str());
    std::printf(" size=%llu\n", static_cast<unsigned long long>(size));
  }
  Result<void> r;
  if (*format == ImageFormat::Raw) {
    r = createRaw(file, size);
  } else {
    q.size = size;
    q.backingFile = backing;
    q.backingFormat = backingFmt;
    r = createQcow2(file, q);
  }
  if (!r) return fail(r.error().message());
  return 0;
}

}  // namespace vmmd::img
