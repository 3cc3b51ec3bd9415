// -drive and -blockdev, QEMU's two ways to name a disk image.
//   -drive file=PATH[,format=raw|qcow2][,if=virtio|none][,readonly=on][,cache=none|writeback|unsafe|directsync|writethrough][,id=ID]
//     if=virtio (QEMU's default here) also adds a virtio-blk-pci device for it.
//   -blockdev driver=file,node-name=F,filename=PATH[,read-only=on][,cache.direct=on]
//   -blockdev driver=raw|qcow2,node-name=N,file=F        (or file.driver=file,file.filename=PATH)
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/config/machine_config.h"

namespace vmmd::config {

struct BlockdevNode {
  std::string node_name;
  std::string driver;    // file, raw, qcow2
  std::string filename;  // driver=file
  std::string file;      // a format node's protocol child (node name)
  bool read_only = false;
  bool direct = false;
  bool no_flush = false;
};

// Parses one -drive; appends the drive and, for if=virtio, its device.
Status parseDrive(const std::string& option, const std::string& arg, MachineConfig& config, int index);
Result<BlockdevNode> parseBlockdev(const std::string& option, const std::string& arg);
// Turns the -blockdev format nodes into drives (protocol nodes fold into them).
Status resolveBlockdevs(const std::vector<BlockdevNode>& nodes, MachineConfig& config);

}  // namespace vmmd::config
