// vmm-img: disk image tool in the shape of qemu-img.
#include <cstdio>
#include <cstring>
#include <string>

#include "storage/img/common.h"

namespace {

const char kUsage[] =
    "usage: vmm-img COMMAND [options]\n"
    "  create [-f FMT] [-b BACKING [-F FMT]] [-o cluster_size=N,compat=1.1|0.10,refcount_bits=N] [-q] FILE [SIZE]\n"
    "  info [-f FMT] [--output=human|json] FILE\n"
    "  check [-f FMT] [-r leaks|all] [--output=human|json] [-q] FILE\n"
    "  convert [-f FMT] [-O FMT] [-o OPTIONS] [-p] [-c] [-n] [-t CACHE] [-T CACHE] [-q] SRC DST\n"
    "  resize [-f FMT] [--shrink] [-q] FILE [+|-]SIZE\n"
    "  compare [-f FMT] [-F FMT] [-s] [-q] FILE1 FILE2\n"
    "  bench [-c COUNT] [-d DEPTH] [-f FMT] [-n] [-o OFFSET] [-s SIZE] [-S STEP] [-t CACHE] [-w] [-q] FILE\n"
    "  snapshot [-f FMT] [-q] -l|-a TAG|-c TAG|-d TAG FILE\n"
    "SIZE: bytes, or with a K, M, G, T, P or E suffix in either case (powers of 1024; \"1.5G\").\n"
    "CACHE: writeback, none, writethrough, directsync or unsafe (QEMU's cache modes).\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace vmmd::img;
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 1;
  }
  std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "--version" || cmd == "-V") {
    std::puts("vmm-img version 0.1.0");
    return 0;
  }
  int subArgc = argc - 1;
  char** subArgv = argv + 1;
  if (cmd == "create") return cmdCreate(subArgc, subArgv);
  if (cmd == "info") return cmdInfo(subArgc, subArgv);
  if (cmd == "check") return cmdCheck(subArgc, subArgv);
  if (cmd == "convert") return cmdConvert(subArgc, subArgv);
  if (cmd == "resize") return cmdResize(subArgc, subArgv);
  if (cmd == "compare") return cmdCompare(subArgc, subArgv);
  if (cmd == "bench") return cmdBench(subArgc, subArgv);
  if (cmd == "snapshot") return cmdSnapshot(subArgc, subArgv);
  std::fprintf(stderr, "vmm-img: unknown command '%s'\n%s", cmd.c_str(), kUsage);
  return 1;
}
