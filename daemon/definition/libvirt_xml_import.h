// Pieces of the domain XML import shared by its two files: the domain level
// (libvirt_xml_import.cpp) and <devices> (libvirt_xml_import_devices.cpp). Internal.
#pragma once

#include <libxml/tree.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "daemon/definition/libvirt_xml_draft.h"

namespace vmmd::daemon::xml {

// <vmmd:disk target='vda' id='root'/> from the metadata: the id of the disk with that target.
struct DiskIdEntry {
  std::string id;
  std::string xml_path;      // of the id attribute, for errors about the id
  std::string target_path;  // of the target attribute, for a target no disk has
  bool used = false;
};
using DiskIds = std::map<std::string, DiskIdEntry, std::less<>>;

// <boot order='N'/> of a disk: its place in the firmware's boot order.
struct DiskBootOrder {
  uint64_t order = 0;
  std::string disk_id;   // the id the disk gets in the definition
  std::string xml_path;  // of the order attribute
};
using DiskBootOrders = std::vector<DiskBootOrder>;

// Maps <devices> into `draft` (disks, nics, serial, agent); `disk_ids` entries get marked used;
// the disks' <boot order> go to `boot_orders`.
Status importDevices(const xmlNode* devices, Draft& draft, DiskIds& disk_ids, DiskBootOrders& boot_orders);

// A whole decimal number, as libvirt writes them (no sign, no spaces, no hex).
Result<uint64_t> parseDecimal(std::string_view text);

}  // namespace vmmd::daemon::xml
