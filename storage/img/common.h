// Shared pieces of the vmm-img subcommands (one file each).
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "storage/block_device.h"
#include "storage/qcow2_snapshot_table.h"

namespace vmmd::img {

// As in qemu-img: sizes are off_t.
constexpr uint64_t kMaxImageSize = std::numeric_limits<int64_t>::max();

// Prints "vmm-img: message" on stderr; returns exit status 1.
int fail(const std::string& message);
int usageError(const std::string& command, const std::string& message);
// "a=1,b=2" -> {a:1, b:2} (qemu-img's -o), split by base/key_values.h: ",," is a literal comma.
Result<std::map<std::string, std::string>> parseOptions(const std::string& text);
// 1.5 GiB, 512 KiB, 200 B
std::string humanSize(uint64_t bytes);
// -t/-T CACHE: one of QEMU's cache mode names (parseDiskCache in base/parse.h); an image file
// only cares whether it bypasses the host page cache.
Result<storage::CacheMode> parseCacheOption(const std::string& name);
// A number argument ("-c COUNT"): parseUnsigned, with the option named in the error.
Result<uint64_t> parseNumberOption(const char* option, const std::string& text);

int cmdCreate(int argc, char** argv);
int cmdInfo(int argc, char** argv);
int cmdCheck(int argc, char** argv);
int cmdConvert(int argc, char** argv);
int cmdResize(int argc, char** argv);
int cmdCompare(int argc, char** argv);
int cmdBench(int argc, char** argv);
int cmdSnapshot(int argc, char** argv);

// qemu-img's snapshot table listing (header and one line per snapshot), for snapshot -l and info.
std::string snapshotListing(const std::vector<storage::qcow2::SnapshotEntry>& list);

}  // namespace vmmd::img
