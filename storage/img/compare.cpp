// vmm-img compare A B: exit 0 identical, 1 different, 2 error (as qemu-img).
#include <getopt.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "storage/img/common.h"

namespace vmmd::img {

using namespace vmmd::storage;

int cmdCompare(int argc, char** argv) {
  std::string fmtA = "auto", fmtB = "auto";
  bool strict = false, quiet = false;
  optind = 1;
  int c;
  while ((c = getopt(argc, argv, "f:F:sqpU")) != -1) {
    switch (c) {
      case 'f': fmtA = optarg; break;
      case 'F': fmtB = optarg; break;
      case 's': strict = true; break;
      case 'q': quiet = true; break;
      case 'p': case 'U': break;
      default: usageError("compare", "bad option"); return 2;
    }
  }
  if (optind + 2 != argc) {
    usageError("compare", "expecting two file names");
    return 2;
  }
  std::string pa = argv[optind], pb = argv[optind + 1];
  auto fa = parseFormat(fmtA), fb = parseFormat(fmtB);
  if (!fa || !fb) return fail((fa ? fb : fa).error().message()), 2;
  OpenOptions oa, ob;
  oa.readOnly = ob.readOnly = true;
  oa.format = *fa;
  ob.format = *fb;
  auto a = openImage(pa, oa);
  if (!a) return fail(a.error().message()), 2;
  auto b = openImage(pb, ob);
  if (!b) return fail(b.error().message()), 2;
  uint64_t sa = (*a)->size(), sb = (*b)->size();
  if (strict && sa != sb) {
    if (!quiet) std::printf("Strict mode: Image size mismatch!\n");
    return 1;
  }
  const uint64_t common = std::min(sa, sb), total = std::max(sa, sb);
  const size_t chunk = 1 << 20;
  std::vector<uint8_t> ba(chunk), bb(chunk);
  auto mismatch = [&](uint64_t off) {
    if (!quiet) std::printf("Content mismatch at offset %llu!\n", static_cast<unsigned long long>(off & ~511ull));
    return 1;
  };
  for (uint64_t off = 0; off < total; off += chunk) {
    uint64_t len = std::min<uint64_t>(chunk, total - off);
    uint64_t la = off < sa ? std::min(len, sa - off) : 0, lb = off < sb ? std::min(len, sb - off) : 0;
    std::memset(ba.data(), 0, len);
    std::memset(bb.data(), 0, len);
    if (la) {
      if (auto r = (*a)->read(off, std::span(ba.data(), la)); !r) return fail(r.error().message()), 2;
    }
    if (lb) {
      if (auto r = (*b)->read(off, std::span(bb.data(), lb)); !r) return fail(r.error().message()), 2;
    }
    if (std::memcmp(ba.data(), bb.data(), len) != 0) {
      for (uint64_t i = 0; i < len; ++i) {
        if (ba[i] != bb[i]) return mismatch(off + i);
      }
    }
    (void)common;
  }
  if (!quiet) std::printf("Images are identical.\n");
  return 0;
}

}  // namespace vmmd::img
