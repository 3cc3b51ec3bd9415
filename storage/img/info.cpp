// vmm-img info [--output=json]: the keys and layout of `qemu-img info`.
#include <getopt.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <cstdio>

#include "storage/image_file.h"
#include "storage/img/common.h"
#include "storage/qcow2.h"

namespace vmmd::img {

using namespace vmmd::storage;

int cmdInfo(int argc, char** argv) {
  std::string fmt = "auto", output = "human";
  static const option longOpts[] = {{"output", required_argument, nullptr, 'O'},
                                    {"force-share", no_argument, nullptr, 'U'},
                                    {nullptr, 0, nullptr, 0}};
  bool forceShare = false;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "f:U", longOpts, nullptr)) != -1) {
    switch (c) {
      case 'f': fmt = optarg; break;
      case 'O': output = optarg; break;
      case 'U': forceShare = true; break;
      default: return usageError("info", "bad option");
    }
  }
  if (optind >= argc) return usageError("info", "expecting a file name");
  if (output != "human" && output != "json") return fail("--output must be human or json");
  std::string file = argv[optind];
  auto format = parseFormat(fmt);
  if (!format) return fail(format.error().message());
  OpenOptions o;
  o.format = *format;
  o.readOnly = true;
  o.openBacking = false;
  o.lock = !forceShare;
  auto dev = openImage(file, o);
  if (!dev) return fail(dev.error().message());
  auto hostFile = ImageFile::open(file, true, CacheMode::Writeback);
  uint64_t actual = hostFile ? (*hostFile)->allocatedBytes() : 0;
  auto* q = dynamic_cast<Qcow2Device*>(dev->get());
  std::string backing, fullBacking, backingFmt;
  if (q && !q->header().backingFile.empty()) {
    backing = q->header().backingFile;
    backingFmt = q->header().backingFormat;
    auto slash = file.rfind('/');
    fullBacking = backing[0] == '/' || slash == std::string::npos ? backing : file.substr(0, slash + 1) + backing;
  }
  const uint64_t size = (*dev)->size();
  bool dirty = q && (q->header().incompatible & qcow2::kIncompatDirty);
  if (output == "json") {
    rapidjson::StringBuffer sb;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
    w.SetIndent(' ', 4);
    w.StartObject();
    if (q && !q->snapshots().empty()) {
      w.Key("snapshots");
      w.StartArray();
      for (const auto& sn : q->snapshots()) {
        w.StartObject();
        if (sn.icount != -1) {
          w.Key("icount");
          w.Int64(sn.icount);
        }
        w.Key("vm-clock-nsec");
        w.Uint64(sn.vmClockNsec % 1000000000);
        w.Key("name");
        w.String(sn.name.c_str());
        w.Key("date-sec");
        w.Uint64(sn.dateSec);
        w.Key("date-nsec");
        w.Uint64(sn.dateNsec);
        w.Key("vm-clock-sec");
        w.Uint64(sn.vmClockNsec / 1000000000);
        w.Key("id");
        w.String(sn.id.c_str());
        w.Key("vm-state-size");
        w.Uint64(sn.vmStateSize);
        w.EndObject();
      }
      w.EndArray();
    }
    w.Key("virtual-size");
    w.Uint64(size);
    w.Key("filename");
    w.String(file.c_str());
    if (q) {
      w.Key("cluster-size");
      w.Uint64(q->clusterSize());
    }
    w.Key("format");
    w.String(formatName((*dev)->format()));
    w.Key("actual-size");
    w.Uint64(actual);
    if (q) {
      const auto& h = q->header();
      w.Key("format-specific");
      w.StartObject();
      w.Key("type");
      w.String("qcow2");
      w.Key("data");
      w.StartObject();
      w.Key("compat");
      w.String(h.version == 2 ? "0.10" : "1.1");
      if (h.version >= 3) {
        w.Key("compression-type");
        w.String("zlib");
        w.Key("lazy-refcounts");
        w.Bool(h.compatible & qcow2::kCompatLazyRefcounts);
      }
      w.Key("refcount-bits");
      w.Uint(1u << h.refcountOrder);
      w.Key("corrupt");
      w.Bool(h.incompatible & qcow2::kIncompatCorrupt);
      w.Key("extended-l2");
      w.Bool(false);
      w.EndObject();
      w.EndObject();
    }
    if (!backing.empty()) {
      if (!backingFmt.empty()) {
        w.Key("backing-filename-format");
        w.String(backingFmt.c_str());
      }
      w.Key("full-backing-filename");
      w.String(fullBacking.c_str());
      w.Key("backing-filename");
      w.String(backing.c_str());
    }
    w.Key("dirty-flag");
    w.Bool(dirty);
    w.EndObject();
    std::printf("%s\n", sb.GetString());
    return 0;
  }
  std::printf("image: %s\nfile format: %s\nvirtual size: %s (%llu bytes)\ndisk size: %s\n", file.c_str(),
              formatName((*dev)->format()), humanSize(size).c_str(), static_cast<unsigned long long>(size),
              humanSize(actual).c_str());
  if (q) {
    const auto& h = q->header();
    std::printf("cluster_size: %u\n", q->clusterSize());
    if (!backing.empty()) {
      std::printf("backing file: %s", backing.c_str());
      if (fullBacking != backing) std::printf(" (actual path: %s)", fullBacking.c_str());
      std::printf("\n");
      if (!backingFmt.empty()) std::printf("backing file format: %s\n", backingFmt.c_str());
    }
    if (!q->snapshots().empty()) std::printf("Snapshot list:\n%s", snapshotListing(q->snapshots()).c_str());
    std::printf("Format specific information:\n    compat: %s\n", h.version == 2 ? "0.10" : "1.1");
    if (h.version >= 3) {
      std::printf("    compression type: zlib\n    lazy refcounts: %s\n",
                  (h.compatible & qcow2::kCompatLazyRefcounts) ? "true" : "false");
    }
    std::printf("    refcount bits: %u\n    corrupt: %s\n    extended l2: false\n", 1u << h.refcountOrder,
                (h.incompatible & qcow2::kIncompatCorrupt) ? "true" : "false");
  }
  return 0;
}

}  // namespace vmmd::img
