// vmm-img resize [--shrink] FILE [+|-]SIZE
#include <getopt.h>

#include <cstdio>

#include "base/parse.h"
#include "storage/img/common.h"

namespace vmmd::img {

using namespace vmmd::storage;

int cmdResize(int argc, char** argv) {
  std::string fmt = "auto";
  bool shrink = false, quiet = false;
  static const option longOpts[] = {{"shrink", no_argument, nullptr, 'S'}, {nullptr, 0, nullptr, 0}};
  optind = 1;
  int c;
  // A size like "-1G" must not be taken for an option: stop at the first non-option.
  while ((c = getopt_long(argc, argv, "+f:q", longOpts, nullptr)) != -1) {
    switch (c) {
      case 'f': fmt = optarg; break;
      case 'q': quiet = true; break;
      case 'S': shrink = true; break;
      default: return usageError("resize", "bad option");
    }
  }
  if (optind + 2 != argc) return usageError("resize", "expecting a file name and a size");
  std::string file = argv[optind], sizeArg = argv[optind + 1];
  auto format = parseFormat(fmt);
  if (!format) return fail(format.error().message());
  int sign = 0;
  if (sizeArg[0] == '+' || sizeArg[0] == '-') {
    sign = sizeArg[0] == '+' ? 1 : -1;
    sizeArg = sizeArg.substr(1);
  }
  auto amount = parseSize(sizeArg);
  if (!amount) return fail(file + ": " + amount.error().message());
  OpenOptions o;
  o.format = *format;
  o.openBacking = true;
  auto dev = openImage(file, o);
  if (!dev) return fail(dev.error().message());
  uint64_t cur = (*dev)->size();
  uint64_t target = *amount;
  if (sign > 0) target = *amount > kMaxImageSize - cur ? kMaxImageSize + 1 : cur + *amount;
  if (sign < 0) {
    if (*amount > cur) return fail(file + ": new size would be negative");
    target = cur - *amount;
  }
  if (target > kMaxImageSize) return fail(file + ": the image size must be less than 8 EiB");
  if (target < cur && !shrink) {
    return fail(file + ": use the --shrink option to perform a shrink operation (data beyond the new size is lost)");
  }
  if (auto r = (*dev)->resize(target); !r) return fail(r.error().message());
  if (auto r = (*dev)->flush(); !r) return fail(r.error().message());
  if (!quiet) std::printf("Image resized.\n");
  return 0;
}

}  // namespace vmmd::img
