#include "vmm/config/drive_options.h"

#include <algorithm>

#include "base/key_values.h"
#include "base/parse.h"

namespace vmmd::config {
namespace {

Status checkFormat(const std::string& option, const std::string& format) {
  if (format.empty() || format == "raw" || format == "qcow2") return {};
  return Error(option + ": format '" + format + "' is not supported (raw, qcow2)");
}

}  // namespace

Status parseDrive(const std::string& option, const std::string& arg, MachineConfig& config, int index) {
  auto kv = KeyValues::parse(option, arg);
  if (!kv) return kv.error();
  DriveConfig drive;
  drive.path = kv->take("file").value_or("");
  if (drive.path.empty()) return Error(option + ": file= is required (vmm has no removable media)");
  drive.format = kv->take("format").value_or("");
  if (auto st = checkFormat(option, drive.format); !st) return st;
  drive.id = kv->take("id").value_or("virtio" + std::to_string(index));
  std::string interface = kv->take("if").value_or("virtio");
  if (interface != "virtio" && interface != "none") return Error(option + ": if=" + interface + " is not supported (virtio, none)");
  auto read_only = kv->takeBool("readonly", false);
  if (!read_only) return read_only.error();
  drive.read_only = *read_only;
  if (auto cache = kv->take("cache")) {
    auto mode = parseDiskCache(*cache);
    if (!mode) return mode.error().withContext(option);
    drive.direct = diskCacheFlags(*mode).direct;
    drive.no_flush = diskCacheFlags(*mode).no_flush;
  }
  std::string media = kv->take("media").value_or("disk");
  if (media != "disk") return Error(option + ": media=" + media + " is not supported (disk)");
  for (const char* accepted : {"aio", "discard", "detect-zeroes", "werror", "rerror", "index"}) (void)kv->take(accepted);
  if (auto st = kv->finish(); !st) return st;
  if (config.findDrive(drive.id)) return Error(option + ": duplicate drive id '" + drive.id + "'");
  config.drives.push_back(drive);
  if (interface == "virtio") config.devices.push_back({"virtio-blk-pci", {{"drive", drive.id}}, true});
  return {};
}

Result<BlockdevNode> parseBlockdev(const std::string& option, const std::string& arg) {
  auto kv = KeyValues::parse(option, arg);
  if (!kv) return kv.error();
  BlockdevNode node;
  node.node_name = kv->take("node-name").value_or("");
  if (node.node_name.empty()) return Error(option + ": node-name= is required");
  node.driver = kv->take("driver").value_or("");
  auto read_only = kv->takeBool("read-only", false);
  if (!read_only) return read_only.error();
  node.read_only = *read_only;
  auto direct = kv->takeBool("cache.direct", false);
  if (!direct) return direct.error();
  auto no_flush = kv->takeBool("cache.no-flush", false);
  if (!no_flush) return no_flush.error();
  node.direct = *direct;
  node.no_flush = *no_flush;
  if (node.driver == "file" || node.driver == "host_device") {
    node.driver = "file";
    node.filename = kv->take("filename").value_or("");
    if (node.filename.empty()) return Error(option + ": driver=file needs filename=");
    for (const char* accepted : {"aio", "locking", "discard", "auto-read-only"}) (void)kv->take(accepted);
  } else if (node.driver == "raw" || node.driver == "qcow2") {
    // The protocol child: a node name, or inline file.driver=file,file.filename=PATH.
    if (auto child = kv->take("file")) {
      node.file = *child;
    } else {
      std::string child_driver = kv->take("file.driver").value_or("");
      if (child_driver != "file") return Error(option + ": file= (a node name) or file.driver=file,file.filename= is required");
      node.filename = kv->take("file.filename").value_or("");
      if (node.filename.empty()) return Error(option + ": file.filename= is required");
      auto child_direct = kv->takeBool("file.cache.direct", node.direct);
      if (!child_direct) return child_direct.error();
      node.direct = *child_direct;
      (void)kv->take("file.aio");
      (void)kv->take("file.locking");
    }
    for (const char* accepted : {"discard", "detect-zeroes", "auto-read-only"}) (void)kv->take(accepted);
  } else {
    return Error(option + ": driver '" + node.driver + "' is not supported (file, raw, qcow2)");
  }
  if (auto st = kv->finish(); !st) return st.error();
  return node;
}

Status resolveBlockdevs(const std::vector<BlockdevNode>& nodes, MachineConfig& config) {
  auto find = [&](const std::string& name) -> const BlockdevNode* {
    for (const auto& n : nodes) {
      if (n.node_name == name) return &n;
    }
    return nullptr;
  };
  for (const auto& node : nodes) {
    if (std::count_if(nodes.begin(), nodes.end(), [&](const BlockdevNode& n) { return n.node_name == node.node_name; }) > 1) {
      return Error("-blockdev: duplicate node-name '" + node.node_name + "'");
    }
  }
  for (const auto& node : nodes) {
    DriveConfig drive;
    drive.id = node.node_name;
    if (node.driver == "file") {
      // A protocol node on its own is a raw disk; one under a format node is folded into it.
      bool has_parent = std::any_of(nodes.begin(), nodes.end(), [&](const BlockdevNode& n) { return n.file == node.node_name; });
      if (has_parent) continue;
      drive.path = node.filename;
      drive.format = "raw";
    } else {
      drive.format = node.driver;
      if (!node.file.empty()) {
        const BlockdevNode* child = find(node.file);
        if (!child) return Error("-blockdev " + node.node_name + ": node '" + node.file + "' not found");
        if (child->driver != "file") return Error("-blockdev " + node.node_name + ": node '" + node.file + "' is not a file node");
        drive.path = child->filename;
        drive.direct = child->direct || node.direct;
        drive.no_flush = child->no_flush || node.no_flush;
        drive.read_only = child->read_only || node.read_only;
      } else {
        drive.path = node.filename;
        drive.direct = node.direct;
        drive.no_flush = node.no_flush;
      }
    }
    drive.read_only = drive.read_only || node.read_only;
    if (config.findDrive(drive.id)) return Error("-blockdev: node-name '" + drive.id + "' is also a drive id");
    config.drives.push_back(drive);
  }
  return {};
}

}  // namespace vmmd::config
