// vmm-img snapshot [-f FMT] [-q] [-U] -l|-a TAG|-c TAG|-d TAG FILE: qcow2 internal snapshots, as
// qemu-img snapshot (same listing, messages and exit statuses). TAG names an id or, failing
// that, a name (-a, -d); -c takes it as the name and numbers the id.
#include <getopt.h>

#include <cstdio>
#include <ctime>

#include "storage/img/common.h"
#include "storage/qcow2.h"

namespace vmmd::img {

using namespace vmmd::storage;

namespace {

enum class Action { None, List, Apply, Create, Delete };

}  // namespace

std::string snapshotListing(const std::vector<qcow2::SnapshotEntry>& list) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
  out += line;
  for (const auto& sn : list) {
    char date[32];
    time_t secs = sn.dateSec;
    tm local{};
    localtime_r(&secs, &local);
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &local);
    const uint64_t ms = sn.vmClockNsec / 1000000;
    char clock[48];
    std::snprintf(clock, sizeof clock, "%02llu:%02llu:%02llu.%03llu", (unsigned long long)(ms / 3600000),
                  (unsigned long long)(ms / 60000 % 60), (unsigned long long)(ms / 1000 % 60), (unsigned long long)(ms % 1000));
    std::string icount = sn.icount == -1 ? "" : std::to_string(sn.icount);
    std::snprintf(line, sizeof line, "%-9s %-17s %7s%20s%13s%11s\n", sn.id.c_str(), sn.name.c_str(),
                  humanSize(sn.vmStateSize).c_str(), date, clock, icount.c_str());
    out += line;
  }
  return out;
}

int cmdSnapshot(int argc, char** argv) {
  std::string fmt = "auto", tag;
  Action action = Action::None;
  bool quiet = false;
  optind = 1;
  int c;
  while ((c = getopt(argc, argv, "f:la:c:d:qU")) != -1) {
    Action next = Action::None;
    switch (c) {
      case 'f': fmt = optarg; continue;
      case 'q': quiet = true; continue;
      case 'U': continue;
      case 'l': next = Action::List; break;
      case 'a': next = Action::Apply; break;
      case 'c': next = Action::Create; break;
      case 'd': next = Action::Delete; break;
      default: return usageError("snapshot", "bad option");
    }
    if (action != Action::None) return usageError("snapshot", "Cannot mix '-l', '-a', '-c', '-d'");
    action = next;
    if (optarg) tag = optarg;
  }
  if (optind != argc - 1) return usageError("snapshot", "Expecting one image file name");
  if (action == Action::None) action = Action::List;
  std::string file = argv[optind];
  auto format = parseFormat(fmt);
  if (!format) return fail(format.error().message());
  OpenOptions o;
  o.format = *format;
  o.readOnly = action == Action::List;
  o.openBacking = false;
  auto dev = openImage(file, o);
  if (!dev) return fail(dev.error().message());
  auto* q = dynamic_cast<Qcow2Device*>(dev->get());
  if (!q) return fail(file + ": this image format (" + formatName((*dev)->format()) + ") does not support snapshots");
  auto list = q->snapshots();
  switch (action) {
    case Action::None:
    case Action::List:
      if (!list.empty() && !quiet) std::printf("Snapshot list:\n%s", snapshotListing(list).c_str());
      return 0;
    case Action::Create: {
      SnapshotRequest request;
      request.name = tag;
      request.icount = 0;  // as qemu-img, which zeroes the whole entry
      auto r = q->createSnapshot(request);
      if (!r) return fail("Could not create snapshot '" + tag + "': " + r.error().message());
      return 0;
    }
    case Action::Apply: {
      int i = findSnapshotByIdOrName(list, tag);
      if (i < 0) return fail("Could not apply snapshot '" + tag + "': snapshot not found");
      if (auto r = q->applySnapshot(list[i].id); !r) return fail("Could not apply snapshot '" + tag + "': " + r.error().message());
      return 0;
    }
    case Action::Delete: {
      int i = findSnapshotByIdOrName(list, tag);
      if (i < 0) return fail("Could not delete snapshot '" + tag + "': snapshot not found");
      if (auto r = q->deleteSnapshot(list[i].id, ""); !r) {
        return fail("Could not delete snapshot '" + tag + "': " + r.error().message());
      }
      return 0;
    }
  }
  return 0;
}

}  // namespace vmmd::img
