// Helpers for the storage tests: a scratch folder, running commands, random data.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

#include "storage/block_device.h"
#include "storage/qcow2.h"

namespace vmmd::storage::test {

using ScratchDir = test_support::TempDir;

struct CommandResult {
  int status;
  std::string output;  // stdout and stderr together
};

inline CommandResult run(const std::string& cmd) {
  CommandResult r{-1, ""};
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

inline bool haveQemuImg() { return run("qemu-img --version").status == 0; }

#define REQUIRE_QEMU_IMG() \
  if (!::vmmd::storage::test::haveQemuImg()) GTEST_SKIP() << "qemu-img not installed"

inline std::string vmmImg() { return VMM_IMG; }

inline std::vector<uint8_t> randomBytes(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t x = rng();
    for (size_t j = 0; j < 8 && i + j < n; ++j) v[i + j] = static_cast<uint8_t>(x >> (8 * j));
  }
  return v;
}

// Opens or fails the test.
inline std::unique_ptr<BlockDevice> openOrDie(const std::string& path, bool readOnly = false,
                                              ImageFormat format = ImageFormat::Auto) {
  OpenOptions o;
  o.readOnly = readOnly;
  o.format = format;
  auto dev = openImage(path, o);
  EXPECT_TRUE(dev.ok()) << (dev.ok() ? "" : dev.error().message());
  if (!dev.ok()) return nullptr;
  return std::move(*dev);
}

// A new qcow2 image's geometry.
inline Qcow2CreateOptions qcow2Options(uint64_t size, uint32_t cluster = 65536, uint32_t version = 3,
                                       uint32_t refBits = 16) {
  Qcow2CreateOptions o;
  o.size = size;
  o.clusterSize = cluster;
  o.version = version;
  o.refcountBits = refBits;
  return o;
}

// qemu-img check: exit status 0 means clean.
inline CommandResult qemuCheck(const std::string& path) { return run("qemu-img check " + path); }

}  // namespace vmmd::storage::test
