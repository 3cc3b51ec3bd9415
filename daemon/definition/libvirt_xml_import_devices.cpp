// definitionFromDomainXml, <devices>: virtio disks, ethernet and network NICs, the pty serial/console, the
// guest-agent channel; libvirt's implicit controllers, ps2 inputs and memballoon are ignored.
#include <string>

#include "daemon/definition/libvirt_xml_document.h"
#include "daemon/definition/libvirt_xml_element.h"
#include "daemon/definition/libvirt_xml_import.h"

namespace vmmd::daemon::xml {
namespace {

constexpr std::string_view kAgentChannel = "org.qemu.guest_agent.0";

// Every device may carry these: libvirt assigns them (PCI slots, device names in QEMU).
void ignoreAssigned(ElementReader& device) { device.ignoreChildren({"address", "alias"}); }

Status importDiskDriver(ElementReader& driver, DraftObject& out) {
  if (auto st = driver.expectAttribute("name", {"qemu"}); !st) return st;
  if (auto format = driver.attribute("type")) out.set("format", *format, driver.attributePath("type"));
  if (auto cache = driver.attribute("cache")) {
    // libvirt's names are QEMU's; "default" (the hypervisor's choice) has no fixed meaning.
    if (*cache != "none" && *cache != "writeback" && *cache != "writethrough" && *cache != "directsync" &&
        *cache != "unsafe") {
      return driver.attributeError("cache", "'" + *cache + "' is not supported by vmm (none, writeback, writethrough, directsync or unsafe)");
    }
    out.set("cache", *cache, driver.attributePath("cache"));
  }
  return {};
}

Status importDisk(const xmlNode* node, size_t index, Draft& draft, DiskIds& disk_ids, DiskBootOrders& boot_orders) {
  ElementReader disk(node);
  DraftObject out = draft.append("disks", disk.path());
  if (auto type = disk.attribute("type"); type != "file") {
    return disk.attributeError("type", type ? "'" + *type + "' is not supported by vmm (only file)" : "required (file)");
  }
  if (auto st = disk.expectAttribute("device", {"disk"}); !st) return st;
  out.expect("format", disk.path() + "/driver/@type");
  auto st = disk.withChild("driver", [&](ElementReader& driver) { return importDiskDriver(driver, out); });
  if (!st) return st;
  st = disk.withRequiredChild("source", [&](ElementReader& source) -> Status {
    auto file = source.requiredAttribute("file");
    if (!file) return file.error();
    out.set("path", *file, source.attributePath("file"));
    source.ignoreAttributes({"index"});  // a running domain's numbering of its images
    return {};
  });
  if (!st) return st;
  std::string dev;
  st = disk.withRequiredChild("target", [&](ElementReader& target) -> Status {
    auto name = target.requiredAttribute("dev");
    if (!name) return name.error();
    dev = *name;
    // Without bus, libvirt takes it from the name: vdX is virtio.
    std::string bus = target.attribute("bus").value_or(dev.rfind("vd", 0) == 0 ? "virtio" : "");
    if (bus != "virtio") return target.attributeError("bus", "'" + bus + "' is not supported by vmm (only virtio)");
    return {};
  });
  if (!st) return st;
  std::string id = "disk" + std::to_string(index);  // parseDefinition's default
  if (auto entry = disk_ids.find(dev); entry != disk_ids.end()) {
    out.set("id", entry->second.id, entry->second.xml_path);
    entry->second.used = true;
    id = entry->second.id;
  } else {
    out.expect("id", disk.path() + " (default id)");
  }
  st = disk.withChild("boot", [&](ElementReader& boot) -> Status {
    auto text = boot.requiredAttribute("order");
    if (!text) return text.error();
    auto order = parseDecimal(*text);
    if (!order || *order == 0) return boot.attributeError("order", "must be a number from 1");
    for (const DiskBootOrder& other : boot_orders) {
      if (other.order == *order) return boot.attributeError("order", "same as " + other.xml_path);
    }
    boot_orders.push_back({*order, id, boot.attributePath("order")});
    return {};
  });
  if (!st) return st;
  st = disk.withChild("readonly", [&](ElementReader& readonly) -> Status {
    out.set("readonly", true, readonly.path());
    return {};
  });
  if (!st) return st;
  ignoreAssigned(disk);
  disk.ignoreChildren({"backingStore"});  // the chain libvirt found in the image; vmm reads it too
  return disk.refuseRest();
}

// <interface type='ethernet'>: an existing tap named by <target dev=.../>, which vmm attaches to
// (libvirt would create a managed one).
Status importEthernetTarget(ElementReader& interface, DraftObject& out) {
  out.expect("ifname", interface.path() + "/target/@dev");
  return interface.withChild("target", [&](ElementReader& target) -> Status {
    auto dev = target.requiredAttribute("dev");
    if (!dev) return dev.error();
    out.set("ifname", *dev, target.attributePath("dev"));
    return target.expectAttribute("managed", {"no"});
  });
}

// <interface type='network'><source network='NAME'/>: a network vmmd manages. What a running
// domain's dumpxml adds (the tap libvirt made as <target dev='vnetN'/>, the source's bridge and
// port id) is accepted and ignored: vmmd makes its own tap at each start.
Status importNetworkSource(ElementReader& interface, DraftObject& out) {
  interface.ignoreChildren({"target"});
  return interface.withRequiredChild("source", [&](ElementReader& source) -> Status {
    auto network = source.requiredAttribute("network");
    if (!network) return network.error();
    out.set("network", *network, source.attributePath("network"));
    source.ignoreAttributes({"bridge", "portid"});
    return {};
  }, "the network's name");
}

Status importInterface(const xmlNode* node, Draft& draft) {
  ElementReader interface(node);
  DraftObject out = draft.append("nics", interface.path());
  auto type = interface.attribute("type");
  Status st;
  if (type == "ethernet") st = importEthernetTarget(interface, out);
  else if (type == "network") st = importNetworkSource(interface, out);
  else {
    return interface.attributeError(
        "type", type ? "'" + *type + "' is not supported by vmm (ethernet: an existing tap; network: a vmmd network)"
                     : "required (ethernet or network)");
  }
  if (!st) return st;
  st = interface.withChild("mac", [&](ElementReader& mac) -> Status {
    auto address = mac.requiredAttribute("address");
    if (!address) return address.error();
    out.set("mac", *address, mac.attributePath("address"));
    return {};
  });
  if (!st) return st;
  st = interface.withRequiredChild("model", [](ElementReader& model) -> Status {
    if (model.attribute("type").value_or("") != "virtio") return model.attributeError("type", "must be virtio (vmm's NIC is virtio-net)");
    return {};
  }, "vmm's NIC is virtio");
  if (!st) return st;
  ignoreAssigned(interface);
  return interface.refuseRest();
}

// <serial type='pty'> or <console type='pty'>: COM1 (vmmd relays it; the pty is libvirt's word
// for "a console you attach to"). Port 0 only; a console is either COM1 itself or a copy of it.
Status importCharDevice(const xmlNode* node) {
  ElementReader device(node);
  bool console = viewOf(node->name) == "console";
  if (device.attribute("type").value_or("") != "pty") return device.attributeError("type", "must be pty");
  device.ignoreAttributes({"tty"});    // the pty a running domain got
  device.ignoreChildren({"source"});   // the same, as <source path='/dev/pts/N'/>
  ignoreAssigned(device);
  auto st = device.withChild("target", [console](ElementReader& target) -> Status {
    if (auto st = target.expectAttribute("type", {console ? "serial" : "isa-serial"}); !st) return st;
    if (auto st = target.expectAttribute("port", {"0"}); !st) return st;
    return target.withChild("model", [](ElementReader& model) { return model.expectAttribute("name", {"isa-serial"}); });
  });
  if (!st) return st;
  return device.refuseRest();
}

// The guest-agent port: a unix channel named org.qemu.guest_agent.0 (vmmd picks the socket).
Status importChannel(const xmlNode* node) {
  ElementReader channel(node);
  if (channel.attribute("type").value_or("") != "unix") return channel.attributeError("type", "must be unix (the guest-agent channel)");
  auto st = channel.withChild("source", [](ElementReader& source) {
    source.ignoreAttributes({"path"});  // vmmd keeps the socket in the VM's run directory
    return source.expectAttribute("mode", {"bind"});
  });
  if (!st) return st;
  st = channel.withRequiredChild("target", [](ElementReader& target) -> Status {
    if (auto st = target.expectAttribute("type", {"virtio"}); !st) return st;
    if (target.attribute("name").value_or("") != kAgentChannel) {
      return target.attributeError("name", "must be " + std::string(kAgentChannel) + " (vmm's one channel is the guest agent's)");
    }
    target.ignoreAttributes({"state"});  // whether the guest has the port open, in a live domain
    return {};
  });
  if (!st) return st;
  ignoreAssigned(channel);
  return channel.refuseRest();
}

// Controllers libvirt adds by itself (PCIe root and ports, the q35 SATA, USB, the virtio-serial
// bus of the agent channel): vmm has what its devices need.
Status ignoreController(const xmlNode* node) {
  ElementReader controller(node);
  auto type = controller.requiredAttribute("type");
  if (!type) return type.error();
  if (*type != "pci" && *type != "usb" && *type != "sata" && *type != "virtio-serial") {
    return controller.attributeError("type", "'" + *type + "' is not supported by vmm");
  }
  controller.ignoreEverything();
  return {};
}

// libvirt's own additions: the memballoon it invents unless told model='none', the ps2 mouse and
// keyboard of every x86 machine.
Status ignoreImplicitDevice(const xmlNode* node) {
  ElementReader device(node);
  if (viewOf(node->name) == "memballoon") {
    if (auto st = device.expectAttribute("model", {"none", "virtio"}); !st) return st;
  } else {
    if (auto st = device.expectAttribute("type", {"mouse", "keyboard"}); !st) return st;
    if (auto st = device.expectAttribute("bus", {"ps2"}); !st) return st;
  }
  ignoreAssigned(device);
  return device.refuseRest();
}

}  // namespace

Status importDevices(const xmlNode* node, Draft& draft, DiskIds& disk_ids, DiskBootOrders& boot_orders) {
  ElementReader devices(node);
  devices.ignoreChildren({"emulator"});  // vmmd starts its own vmm
  auto disks = devices.children("disk");
  for (size_t i = 0; i < disks.size(); ++i) {
    if (auto st = importDisk(disks[i], i, draft, disk_ids, boot_orders); !st) return st;
  }
  for (const xmlNode* interface : devices.children("interface")) {
    if (auto st = importInterface(interface, draft); !st) return st;
  }
  auto serials = devices.children("serial");
  auto consoles = devices.children("console");
  if (serials.size() > 1) return Error(nodePath(serials[1]) + ": not supported by vmm (one serial port, COM1)");
  if (consoles.size() > 1) return Error(nodePath(consoles[1]) + ": not supported by vmm (one console, COM1)");
  for (const auto* list : {&serials, &consoles}) {
    for (const xmlNode* device : *list) {
      if (auto st = importCharDevice(device); !st) return st;
    }
  }
  std::string devices_path = devices.path();
  draft.top().set("serial", !serials.empty() || !consoles.empty(), devices_path + "/serial");
  auto channels = devices.children("channel");
  if (channels.size() > 1) return Error(nodePath(channels[1]) + ": not supported by vmm (one channel, the guest agent's)");
  for (const xmlNode* channel : channels) {
    if (auto st = importChannel(channel); !st) return st;
  }
  draft.top().set("agent", !channels.empty(), devices_path + "/channel");
  for (const xmlNode* controller : devices.children("controller")) {
    if (auto st = ignoreController(controller); !st) return st;
  }
  for (std::string_view name : {"memballoon", "input"}) {
    for (const xmlNode* device : devices.children(name)) {
      if (auto st = ignoreImplicitDevice(device); !st) return st;
    }
  }
  return devices.refuseRest();
}

}  // namespace vmmd::daemon::xml
