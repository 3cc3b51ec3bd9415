// The worker's host-side part of a bzImage boot, without KVM: reading the compressed payload the
// setup header points at (ImageFile::read) and decompressing it into fresh guest-like memory (a
// 2 MiB aligned anonymous mapping with transparent huge pages asked for, as GuestMemory makes),
// on 1..N threads. Each run is a new child process that maps new memory, so the host's
// first-touch work is counted as a new worker pays it (a process that has read once reuses its
// heap). Prints a table: milliseconds per step, median and min-max over the runs.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/mapping.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "vmm/boot/bzimage.h"
#include "vmm/boot/bzimage_extract.h"
#include "vmm/boot/kernel_decompress.h"

namespace {

using Clock = std::chrono::steady_clock;

double millisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

struct Spread {
  double median, low, high;
};

Spread spreadOf(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return {values[values.size() / 2], values.front(), values.back()};
}

struct LoadTimes {
  double read_ms, decompress_ms;
};

// One read and decompression in a child process (fresh heap, fresh mappings); the times come
// back over a pipe.
vmmd::Result<LoadTimes> timeOneLoad(const vmmd::boot::ImageFile& file, const vmmd::boot::KernelPayload& payload, unsigned threads) {
  using namespace vmmd;
  int fds[2];
  if (::pipe(fds) < 0) return Error::fromErrno("pipe");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  pid_t child = ::fork();
  if (child < 0) return Error::fromErrno("fork");
  if (child == 0) {
    read_end.reset();
    LoadTimes times{-1, -1};
    auto memory = Mapping::anonymousAligned(payload.room, 2u << 20);
    if (memory) {
      (void)::madvise(memory->data(), payload.room, MADV_HUGEPAGE);
      auto start = Clock::now();
      auto compressed = file.read(payload.file_offset, payload.length);
      times.read_ms = millisecondsSince(start);
      auto middle = Clock::now();
      if (compressed && boot::decompress(payload.kind, compressed->bytes(), {memory->data(), payload.room}, threads)) {
        times.decompress_ms = millisecondsSince(middle);
      }
    }
    bool sent = ::write(write_end.get(), &times, sizeof times) == static_cast<ssize_t>(sizeof times);
    ::_exit(sent && times.decompress_ms >= 0 ? 0 : 1);
  }
  write_end.reset();
  LoadTimes times{};
  ssize_t got = ::read(read_end.get(), &times, sizeof times);
  int status = 0;
  ::waitpid(child, &status, 0);
  if (got != static_cast<ssize_t>(sizeof times) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Error("a load in the child process failed (" + std::to_string(threads) + " threads)");
  }
  return times;
}

int usage() {
  std::fprintf(stderr, "usage: kernel_load_bench BZIMAGE [RUNS]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace vmmd;
  using namespace vmmd::boot;
  if (argc < 2) return usage();
  int runs = argc > 2 ? std::atoi(argv[2]) : 9;
  if (runs < 1) return usage();
  auto file = ImageFile::open(argv[1]);
  if (!file) {
    std::fprintf(stderr, "%s\n", file.error().message().c_str());
    return 1;
  }
  auto header = parseSetupHeader(*file);
  if (!header) {
    std::fprintf(stderr, "%s\n", header.error().message().c_str());
    return 1;
  }
  auto payload = findKernelPayload(*file, *header);
  if (!payload) {
    std::fprintf(stderr, "%s: no payload the worker decompresses\n", argv[1]);
    return 1;
  }
  std::vector<unsigned> thread_counts{1};
  for (unsigned n = 2; n <= std::min(8u, std::max(1u, file->cpus())); n *= 2) thread_counts.push_back(n);

  std::printf("%s: %s payload, %llu bytes -> room %llu bytes; %d runs, %u CPUs\n", argv[1], compressionName(payload->kind),
              static_cast<unsigned long long>(payload->length), static_cast<unsigned long long>(payload->room), runs, file->cpus());
  std::printf("%-8s %22s %22s %22s\n", "threads", "read ms (min-max)", "decompress ms", "total ms");
  for (unsigned threads : thread_counts) {
    std::vector<double> read_ms, decompress_ms, total_ms;
    for (int run = 0; run < runs; ++run) {
      auto times = timeOneLoad(*file, *payload, threads);
      if (!times) {
        std::fprintf(stderr, "%s\n", times.error().message().c_str());
        return 1;
      }
      read_ms.push_back(times->read_ms);
      decompress_ms.push_back(times->decompress_ms);
      total_ms.push_back(times->read_ms + times->decompress_ms);
    }
    auto cell = [](const Spread& s) {
      char text[64];
      std::snprintf(text, sizeof text, "%.1f (%.1f-%.1f)", s.median, s.low, s.high);
      return std::string(text);
    };
    std::printf("%-8u %22s %22s %22s\n", threads, cell(spreadOf(read_ms)).c_str(), cell(spreadOf(decompress_ms)).c_str(),
                cell(spreadOf(total_ms)).c_str());
  }
  return 0;
}
