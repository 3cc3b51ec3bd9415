// domainXmlFromDefinition: a VmDefinition as the libvirt domain XML of what vmm runs. Built with
// libxml2's tree API (xmlNewTextChild and xmlNewProp escape), written by its serialiser.
#include <libxml/xmlstring.h>

#include <algorithm>

#include "daemon/definition/libvirt_xml.h"
#include "daemon/definition/libvirt_xml_document.h"

namespace vmmd::daemon {
namespace {

using xml::xmlText;

class Builder {
 public:
  explicit Builder(xmlNode* root) : root_(root) {}

  xmlNode* element(xmlNode* parent, const char* name, std::string_view text = {}) {
    std::string value(text);
    check(name, value);
    return xmlNewTextChild(parent, nullptr, xmlText(name), text.empty() ? nullptr : xmlText(value));
  }
  void attribute(xmlNode* node, const char* name, std::string_view value) {
    std::string text(value);
    check(name, text);
    xmlNewProp(node, xmlText(name), xmlText(text));
  }
  xmlNode* root() const { return root_; }
  // The first text XML 1.0 cannot carry, if any.
  const std::optional<std::string>& problem() const { return problem_; }

 private:
  // XML 1.0 has no way to write most C0 control characters, not even escaped; a JSON definition
  // can hold them (a cmdline with \u0001). Refused rather than written as a broken document.
  void check(const char* name, const std::string& text) {
    if (problem_) return;
    if (!xmlCheckUTF8(xmlText(text))) {
      problem_ = std::string(name) + ": not valid UTF-8";
      return;
    }
    for (unsigned char c : text) {
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
        problem_ = std::string(name) + ": holds control character " + std::to_string(c) + ", which XML cannot carry";
        return;
      }
    }
  }

  xmlNode* root_;
  std::optional<std::string> problem_;
};

// vdN as libvirt names virtio disks: vda..vdz, then vdaa... (libvirt sorts disks by this name,
// so the order of the definition is kept).
std::string diskTarget(size_t index) {
  std::string suffix;
  for (size_t n = index + 1; n > 0; n = (n - 1) / 26) suffix.insert(suffix.begin(), static_cast<char>('a' + (n - 1) % 26));
  return "vd" + suffix;
}

void addMetadata(Builder& b, const VmDefinition& def) {
  xmlNode* metadata = b.element(b.root(), "metadata");
  xmlNode* settings = xmlNewChild(metadata, nullptr, xmlText("settings"), nullptr);
  xmlNs* ns = xmlNewNs(settings, xmlText(kVmmdXmlNamespace), xmlText("vmmd"));
  xmlSetNs(settings, ns);
  xmlNewTextChild(settings, ns, xmlText("autostart"), xmlText(def.autostart ? "yes" : "no"));
  xmlNode* backoff = xmlNewChild(settings, ns, xmlText("restart-backoff"), nullptr);
  b.attribute(backoff, "initial-ms", std::to_string(def.restart_backoff.initial_ms));
  b.attribute(backoff, "max-ms", std::to_string(def.restart_backoff.max_ms));
  b.attribute(backoff, "max-attempts", std::to_string(def.restart_backoff.max_attempts));
  b.attribute(backoff, "reset-after-s", std::to_string(def.restart_backoff.reset_after_s));
  if (def.limits) {
    xmlNode* limits = xmlNewChild(settings, ns, xmlText("limits"), nullptr);
    if (def.limits->cpu_percent) b.attribute(limits, "cpu-percent", std::to_string(*def.limits->cpu_percent));
    if (def.limits->memory_overhead_mib) {
      b.attribute(limits, "memory-overhead-mib", std::to_string(*def.limits->memory_overhead_mib));
    }
  }
  for (size_t i = 0; i < def.disks.size(); ++i) {
    xmlNode* disk = xmlNewChild(settings, ns, xmlText("disk"), nullptr);
    b.attribute(disk, "target", diskTarget(i));
    b.attribute(disk, "id", def.disks[i].id);
  }
}

void addMachine(Builder& b, const VmDefinition& def) {
  xmlNode* domain = b.root();
  b.element(domain, "name", def.name);
  b.element(domain, "uuid", def.uuid);
  addMetadata(b, def);
  for (const char* name : {"memory", "currentMemory"}) {  // no balloon: both the same
    b.attribute(b.element(domain, name, std::to_string(def.memory_mib)), "unit", "MiB");
  }
  b.attribute(b.element(domain, "vcpu", std::to_string(def.vcpus)), "placement", "static");
  xmlNode* os = b.element(domain, "os");
  xmlNode* type = b.element(os, "type", "hvm");
  b.attribute(type, "arch", "x86_64");
  b.attribute(type, "machine", def.machine == MachineType::kMicrovm ? "microvm" : "q35");
  if (def.kernel) {
    b.element(os, "kernel", *def.kernel);
    if (def.initrd) b.element(os, "initrd", *def.initrd);
    if (def.cmdline) b.element(os, "cmdline", *def.cmdline);
  } else if (def.boot && def.boot->loader) {
    // BIOS firmware is a ROM image; its boot order is on the disks (<boot order='N'/>).
    xmlNode* loader = b.element(os, "loader", *def.boot->loader);
    b.attribute(loader, "readonly", "yes");
    b.attribute(loader, "type", "rom");
  }
  xmlNode* features = b.element(domain, "features");
  b.element(features, "acpi");
  b.element(features, "apic");
  b.attribute(b.element(domain, "cpu"), "mode", "host-passthrough");
  b.attribute(b.element(domain, "clock"), "offset", "utc");
  b.element(domain, "on_poweroff", toString(def.on_poweroff));
  b.element(domain, "on_reboot", "restart");
  b.element(domain, "on_crash", toString(def.on_crash));
  xmlNode* pm = b.element(domain, "pm");
  b.attribute(b.element(pm, "suspend-to-mem"), "enabled", "no");
  b.attribute(b.element(pm, "suspend-to-disk"), "enabled", "no");
}

void addDisks(Builder& b, xmlNode* devices, const VmDefinition& def) {
  const std::vector<DiskSpec>& disks = def.disks;
  for (size_t i = 0; i < disks.size(); ++i) {
    const DiskSpec& spec = disks[i];
    xmlNode* disk = b.element(devices, "disk");
    b.attribute(disk, "type", "file");
    b.attribute(disk, "device", "disk");
    xmlNode* driver = b.element(disk, "driver");
    b.attribute(driver, "name", "qemu");
    b.attribute(driver, "type", toString(spec.format));
    b.attribute(driver, "cache", toString(spec.cache));
    b.attribute(b.element(disk, "source"), "file", spec.path);
    xmlNode* target = b.element(disk, "target");
    b.attribute(target, "dev", diskTarget(i));
    b.attribute(target, "bus", "virtio");
    if (spec.readonly) b.element(disk, "readonly");
    if (def.boot) {
      const auto& order = def.boot->order;
      auto position = std::find(order.begin(), order.end(), spec.id);
      if (position != order.end()) {
        b.attribute(b.element(disk, "boot"), "order", std::to_string(position - order.begin() + 1));
      }
    }
  }
}

// A network NIC as libvirt writes one on a virtual network; an ifname NIC as an unmanaged tap.
void addNics(Builder& b, xmlNode* devices, const std::vector<NicSpec>& nics) {
  for (const NicSpec& spec : nics) {
    xmlNode* nic = b.element(devices, "interface");
    if (spec.onNetwork()) {
      b.attribute(nic, "type", "network");
      b.attribute(b.element(nic, "mac"), "address", spec.mac);
      b.attribute(b.element(nic, "source"), "network", spec.network);
    } else {
      b.attribute(nic, "type", "ethernet");
      b.attribute(b.element(nic, "mac"), "address", spec.mac);
      xmlNode* target = b.element(nic, "target");
      b.attribute(target, "dev", spec.ifname);
      b.attribute(target, "managed", "no");
    }
    b.attribute(b.element(nic, "model"), "type", "virtio");
  }
}

void addConsoleAndAgent(Builder& b, xmlNode* devices, const VmDefinition& def, const ExportContext& context) {
  if (def.serial) {
    xmlNode* serial = b.element(devices, "serial");
    b.attribute(serial, "type", "pty");
    b.attribute(b.element(serial, "target"), "port", "0");
    xmlNode* console = b.element(devices, "console");
    b.attribute(console, "type", "pty");
    xmlNode* target = b.element(console, "target");
    b.attribute(target, "type", "serial");
    b.attribute(target, "port", "0");
  }
  if (def.agent) {
    xmlNode* channel = b.element(devices, "channel");
    b.attribute(channel, "type", "unix");
    xmlNode* source = b.element(channel, "source");
    b.attribute(source, "mode", "bind");
    if (context.agent_socket) b.attribute(source, "path", *context.agent_socket);
    xmlNode* target = b.element(channel, "target");
    b.attribute(target, "type", "virtio");
    b.attribute(target, "name", "org.qemu.guest_agent.0");
  }
}

}  // namespace

Result<std::string> domainXmlFromDefinition(const VmDefinition& def, const ExportContext& context) {
  // libvirt's schema takes only absolute paths here (a worker found on PATH must be resolved first).
  if (context.emulator.empty() || context.emulator[0] != '/') {
    return Error("domain XML: emulator: '" + context.emulator + "' is not an absolute path");
  }
  if (context.agent_socket && (context.agent_socket->empty() || (*context.agent_socket)[0] != '/')) {
    return Error("domain XML: agent socket: '" + *context.agent_socket + "' is not an absolute path");
  }
  xml::DocPtr doc(xmlNewDoc(xmlText("1.0")));
  if (!doc) return Error("cannot allocate an XML document");
  xmlNode* domain = xmlNewDocNode(doc.get(), nullptr, xmlText("domain"), nullptr);
  xmlDocSetRootElement(doc.get(), domain);
  Builder b(domain);
  b.attribute(domain, "type", "kvm");
  addMachine(b, def);
  xmlNode* devices = b.element(domain, "devices");
  b.element(devices, "emulator", context.emulator);
  addDisks(b, devices, def);
  // No USB controller, no balloon: said explicitly, or libvirt adds both.
  xmlNode* usb = b.element(devices, "controller");
  b.attribute(usb, "type", "usb");
  b.attribute(usb, "model", "none");
  addNics(b, devices, def.nics);
  addConsoleAndAgent(b, devices, def, context);
  b.attribute(b.element(devices, "memballoon"), "model", "none");
  if (b.problem()) return Error("domain XML: " + *b.problem());
  return xml::formatDocument(doc.get());
}

}  // namespace vmmd::daemon
