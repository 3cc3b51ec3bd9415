// vmm-img check [-r leaks|all] [--output=json]: exit 0 clean, 1 check failed, 2 corruptions,
// 3 leaks only, 63 format without checks (as qemu-img).
#include <getopt.h>

#include <cstdio>

#include "storage/img/common.h"
#include "storage/qcow2.h"

namespace vmmd::img {

using namespace vmmd::storage;

namespace {

void printHuman(const CheckResult& r, bool quiet) {
  if (quiet) return;
  for (const auto& m : r.messages) std::fprintf(stderr, "%s\n", m.c_str());
  if (r.corruptions == 0 && r.leaks == 0) {
    std::printf("No errors were found on the image.\n");
  } else {
    if (r.corruptions) {
      std::printf("\n%llu errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n",
                  static_cast<unsigned long long>(r.corruptions));
    }
    if (r.leaks) {
      std::printf("\n%llu leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n",
                  static_cast<unsigned long long>(r.leaks));
    }
  }
  if (r.totalClusters) {
    std::printf("%llu/%llu = %.2f%% allocated, %.2f%% fragmented, %.2f%% compressed clusters\n",
                static_cast<unsigned long long>(r.allocatedClusters), static_cast<unsigned long long>(r.totalClusters),
                100.0 * r.allocatedClusters / r.totalClusters,
                r.allocatedClusters ? 100.0 * r.fragmentedClusters / r.allocatedClusters : 0.0,
                r.allocatedClusters ? 100.0 * r.compressedClusters / r.allocatedClusters : 0.0);
  }
  std::printf("Image end offset: %llu\n", static_cast<unsigned long long>(r.imageEndOffset));
}

}  // namespace

int cmdCheck(int argc, char** argv) {
  std::string fmt = "auto", output = "human", repair;
  bool quiet = false;
  static const option longOpts[] = {{"output", required_argument, nullptr, 'O'}, {nullptr, 0, nullptr, 0}};
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "f:r:qU", longOpts, nullptr)) != -1) {
    switch (c) {
      case 'f': fmt = optarg; break;
      case 'r': repair = optarg; break;
      case 'O': output = optarg; break;
      case 'q': quiet = true; break;
      case 'U': break;
      default: return usageError("check", "bad option");
    }
  }
  if (optind >= argc) return usageError("check", "expecting a file name");
  std::string file = argv[optind];
  RepairMode mode = RepairMode::None;
  if (repair == "leaks") mode = RepairMode::Leaks;
  else if (repair == "all") mode = RepairMode::All;
  else if (!repair.empty()) return fail("-r must be leaks or all, not '" + repair + "'");
  auto format = parseFormat(fmt);
  if (!format) return fail(format.error().message());
  OpenOptions o;
  o.format = *format;
  o.readOnly = mode == RepairMode::None;
  o.repair = true;
  o.openBacking = false;
  auto dev = openImage(file, o);
  if (!dev) return fail(dev.error().message());
  auto* q = dynamic_cast<Qcow2Device*>(dev->get());
  if (!q) {
    std::fprintf(stderr, "vmm-img: %s: This image format does not support checks\n", file.c_str());
    return 63;
  }
  auto res = q->check(mode);
  if (!res) return fail(res.error().message());
  if (mode != RepairMode::None && (res->leaksFixed || res->corruptionsFixed)) {
    if (!quiet) {
      for (const auto& m : res->messages) std::fprintf(stderr, "%s\n", m.c_str());
      std::printf("The following inconsistencies were found and repaired:\n\n    %llu leaked clusters\n    %llu corruptions\n\nDouble checking the fixed image now...\n",
                  static_cast<unsigned long long>(res->leaksFixed), static_cast<unsigned long long>(res->corruptionsFixed));
    }
    res = q->check(RepairMode::None);
    if (!res) return fail(res.error().message());
  }
  if (output == "json") {
    std::printf("{\n    \"image-end-offset\": %llu,\n    \"total-clusters\": %llu,\n    \"check-errors\": 0,\n",
                static_cast<unsigned long long>(res->imageEndOffset), static_cast<unsigned long long>(res->totalClusters));
    if (res->leaks) std::printf("    \"leaks\": %llu,\n", static_cast<unsigned long long>(res->leaks));
    if (res->corruptions) std::printf("    \"corruptions\": %llu,\n", static_cast<unsigned long long>(res->corruptions));
    std::printf("    \"allocated-clusters\": %llu,\n    \"fragmented-clusters\": %llu,\n    \"compressed-clusters\": %llu,\n",
                static_cast<unsigned long long>(res->allocatedClusters),
                static_cast<unsigned long long>(res->fragmentedClusters),
                static_cast<unsigned long long>(res->compressedClusters));
    std::printf("    \"filename\": \"%s\",\n    \"format\": \"qcow2\"\n}\n", file.c_str());
  } else {
    printHuman(*res, quiet);
  }
  if (res->corruptions) return 2;
  if (res->leaks) return 3;
  return 0;
}

}  // namespace vmmd::img
