// definitionFromDomainXml: the domain level (name, uuid, memory, vcpus, <os>, <cpu>, <features>,
// <clock>, <pm>, the life-cycle actions and vmmd's metadata). <devices> is in
// libvirt_xml_import_devices.cpp.
#include <algorithm>
#include <charconv>
#include <optional>
#include <vector>

#include "daemon/definition/definition_json.h"
#include "daemon/definition/libvirt_xml.h"
#include "daemon/definition/libvirt_xml_document.h"
#include "daemon/definition/libvirt_xml_element.h"
#include "daemon/definition/libvirt_xml_import.h"

namespace vmmd::daemon {
namespace xml {

Result<uint64_t> parseDecimal(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Error("'" + std::string(text) + "' is not a whole number");
  }
  return value;
}

namespace {

constexpr uint64_t kMiB = 1024 * 1024;

// libvirt's memory units (virScaleInteger): b/bytes, then k, M, G, T, P, E as powers of 1024
// (also written KiB, MiB...) or, followed by a plain B (KB, MB...), powers of 1000; any case.
// No unit is KiB.
Result<uint64_t> unitBytes(std::string_view unit) {
  auto lower = [](char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c); };
  std::string u;
  for (char c : unit) u += lower(c);
  if (u.empty()) return uint64_t{1024};
  if (u == "b" || u == "byte" || u == "bytes") return uint64_t{1};
  uint64_t base = 0;
  if (u.size() == 1 || u.substr(1) == "ib") base = 1024;
  else if (u.substr(1) == "b") base = 1000;
  else return Error("unknown unit '" + std::string(unit) + "'");
  static constexpr std::string_view kPowers = "kmgtpe";
  size_t power = kPowers.find(u[0]);
  if (power == std::string_view::npos) return Error("unknown unit '" + std::string(unit) + "'");
  uint64_t scale = 1;
  for (size_t i = 0; i <= power; ++i) scale *= base;
  return scale;
}

// <memory unit='KiB'>524288</memory> → MiB; it must come to a whole number of MiB.
Result<uint64_t> memoryMib(ElementReader& element) {
  auto unit = unitBytes(element.attribute("unit").value_or(""));
  if (!unit) return element.attributeError("unit", unit.error().message());
  auto count = parseDecimal(textOf(element.node()));
  if (!count) return element.error(count.error().message());
  if (*count > UINT64_MAX / *unit) return element.error("too large");
  uint64_t bytes = *count * *unit;
  if (bytes % kMiB != 0) return element.error("must be a whole number of MiB (vmm sizes guest memory in MiB)");
  return bytes / kMiB;
}

Status importMemory(ElementReader& domain, DraftObject out) {
  auto memory_node = domain.requiredChild("memory");
  if (!memory_node) return memory_node.error();
  ElementReader memory(*memory_node);
  auto mib = memoryMib(memory);
  if (!mib) return mib.error();
  if (auto st = memory.refuseRest(); !st) return st;
  // parseDefinition's range check sees any overflow as "too large" rather than a wrapped value.
  out.set("memory", static_cast<int64_t>(std::min<uint64_t>(*mib, INT64_MAX)), memory.path());
  return domain.withChild("currentMemory", [&](ElementReader& current) -> Status {
    auto current_mib = memoryMib(current);
    if (!current_mib) return current_mib.error();
    if (*current_mib != *mib) return current.error("must equal <memory> (vmm has no memory balloon)");
    return {};
  });
}

Status importVcpus(ElementReader& domain, DraftObject out) {
  return domain.withChild("vcpu", [&](ElementReader& vcpu) -> Status {
    auto count = parseDecimal(textOf(vcpu.node()));
    if (!count) return vcpu.error(count.error().message());
    if (auto st = vcpu.expectAttribute("placement", {"static"}); !st) return st;
    if (auto current = vcpu.attribute("current"); current && *current != textOf(vcpu.node())) {
      return vcpu.attributeError("current", "must equal the vCPU count (vmm has no vCPU hotplug)");
    }
    out.set("vcpus", static_cast<int64_t>(std::min<uint64_t>(*count, INT64_MAX)), vcpu.path());
    return {};
  });
}

// <type arch='x86_64' machine='q35'>hvm</type>: vmm's pc machine is q35 (libvirt may expand the
// name to a versioned one, pc-q35-7.2); machine='microvm' is vmm's microvm ("machine": "microvm").
Status importOsType(ElementReader& type, DraftObject out) {
  if (textOf(type.node()) != "hvm") return type.error("must be hvm");
  if (auto st = type.expectAttribute("arch", {"x86_64"}); !st) return st;
  auto machine = type.attribute("machine");
  if (machine == "microvm") {
    out.set("machine", *machine, type.attributePath("machine"));
  } else if (machine && *machine != "q35" && machine->rfind("pc-q35-", 0) != 0) {
    return type.attributeError("machine", "'" + *machine + "' is not supported by vmm (q35 or microvm)");
  }
  return {};
}

// What <os> says about booting; finished by importBoot once the disks' <boot order> are known.
struct OsBoot {
  std::string path;  // of <os>
  bool kernel = false;
  std::optional<std::string> loader;
  std::string loader_path;
  bool from_disk = false;  // <boot dev='hd'/>
};

Result<OsBoot> importOs(ElementReader& domain, DraftObject out) {
  auto node = domain.requiredChild("os");
  if (!node) return node.error();
  ElementReader os(*node);
  if (auto st = os.withRequiredChild("type", [&](ElementReader& type) { return importOsType(type, out); }); !st) {
    return st.error();
  }
  OsBoot boot;
  boot.path = os.path();
  out.expect("kernel", os.path() + "/kernel");
  for (std::string_view field : {"kernel", "initrd", "cmdline"}) {
    auto st = os.withChild(field, [&](ElementReader& element) -> Status {
      out.set(field, textOf(element.node()), element.path());
      if (field == "kernel") boot.kernel = true;
      return {};
    });
    if (!st) return st.error();
  }
  // <loader readonly='yes' type='rom'>: a BIOS image (vmm -bios); UEFI's pflash is not there.
  auto st = os.withChild("loader", [&](ElementReader& loader) -> Status {
    if (auto st = loader.expectAttribute("type", {"rom"}); !st) return st;
    if (auto st = loader.expectAttribute("readonly", {"yes"}); !st) return st;
    boot.loader = textOf(loader.node());
    boot.loader_path = loader.path();
    return {};
  });
  if (!st) return st.error();
  // libvirt adds <boot dev='hd'/>: with a kernel given directly no other boot device is used,
  // without one the firmware boots the disks.
  st = os.withChildren("boot", [&](ElementReader& element) -> Status {
    boot.from_disk = true;
    return element.expectAttribute("dev", {"hd"});
  });
  if (!st) return st.error();
  if (auto st = os.refuseRest(); !st) return st.error();
  return boot;
}

// Firmware boot: "boot" in the draft when there is no kernel, the disks' <boot order> as its order
// (none: every disk, as parseDefinition takes it).
Status importBoot(const OsBoot& os, DiskBootOrders orders, DraftObject out) {
  if (os.kernel) {
    if (os.loader) return Error(os.loader_path + ": not with <kernel> (vmm boots a kernel directly, without firmware)");
    if (!orders.empty()) return Error(orders[0].xml_path + ": not with <kernel> (vmm boots a kernel directly)");
    return {};
  }
  if (!os.from_disk && !os.loader && orders.empty()) {
    return Error(os.path + "/kernel: required, or <boot dev='hd'/> to boot from the disks through firmware");
  }
  DraftObject boot = out.object("boot", os.path + "/boot");
  boot.set("firmware", std::string_view("bios"), os.path + "/type");  // not the bool overload
  if (os.loader) boot.set("loader", *os.loader, os.loader_path);
  if (!orders.empty()) {
    std::sort(orders.begin(), orders.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
    std::vector<std::string> ids;
    for (const DiskBootOrder& entry : orders) ids.push_back(entry.disk_id);
    boot.set("order", ids, orders[0].xml_path);
  }
  return {};
}

// <cpu mode='host-passthrough'/>: what vmm gives every guest (-cpu host). Absent is fine too.
Status importCpu(ElementReader& cpu) {
  auto mode = cpu.attribute("mode");
  if (!mode) return cpu.attributeError("mode", "required: vmm runs host-passthrough only (no custom CPU models)");
  if (*mode != "host-passthrough") return cpu.attributeError("mode", "'" + *mode + "' is not supported by vmm (only host-passthrough)");
  cpu.ignoreAttributes({"check", "migratable"});  // libvirt's defaults for host-passthrough
  return {};
}

Status acceptEmpty(ElementReader&) { return {}; }

// Empty flag elements that describe what vmm has anyway; virt-install writes vmport state='off'.
Status importFeatures(ElementReader& features) {
  for (std::string_view name : {"acpi", "apic", "pae"}) {
    if (auto st = features.withChild(name, acceptEmpty); !st) return st;
  }
  return features.withChild("vmport", [](ElementReader& vmport) { return vmport.expectAttribute("state", {"off"}); });
}

Status importTimer(ElementReader& timer) {
  auto name = timer.requiredAttribute("name");
  if (!name) return name.error();
  if (*name == "rtc" || *name == "pit") {
    timer.ignoreAttributes({"tickpolicy"});  // a tuning of lost ticks; KVM's in-kernel timers decide
    return {};
  }
  if (*name == "hpet") {
    if (timer.attribute("present").value_or("") != "no") return timer.attributeError("present", "must be no (vmm has no HPET)");
    return {};
  }
  return timer.attributeError("name", "'" + *name + "' is not supported by vmm");
}

// <clock offset='utc'> (vmm's RTC runs in UTC) with the timers virt-install writes.
Status importClock(ElementReader& clock) {
  if (clock.attribute("offset").value_or("") != "utc") return clock.attributeError("offset", "must be utc (vmm's RTC runs in UTC)");
  return clock.withChildren("timer", importTimer);
}

Status importPowerManagement(ElementReader& pm) {
  for (std::string_view name : {"suspend-to-mem", "suspend-to-disk"}) {
    auto st = pm.withChild(name, [](ElementReader& state) -> Status {
      if (state.attribute("enabled").value_or("") != "no") return state.attributeError("enabled", "must be no (vmm has no S3/S4)");
      return {};
    });
    if (!st) return st;
  }
  return {};
}

Status importLifecycle(ElementReader& domain, DraftObject out) {
  for (std::string_view name : {"on_poweroff", "on_crash"}) {
    auto st = domain.withChild(name, [&](ElementReader& action) -> Status {
      out.set(name, textOf(action.node()), action.path());
      return {};
    });
    if (!st) return st;
  }
  return domain.withChild("on_reboot", [](ElementReader& action) -> Status {
    std::string text = textOf(action.node());
    if (text != "restart") return action.error("'" + text + "' is not supported by vmm (a guest reboot resets it: restart)");
    return {};
  });
}

// <metadata><vmmd:settings xmlns:vmmd=kVmmdXmlNamespace>: autostart, restart backoff, limits, disk ids.
// Other applications' metadata (virt-install's libosinfo) is theirs and ignored.
Status importMetadata(ElementReader& domain, DraftObject out, DiskIds& disk_ids) {
  auto node = domain.optionalChild("metadata");
  if (!node) return node.error();
  if (!*node) return {};
  ElementReader metadata(*node);
  metadata.ignoreOtherNamespaces(kVmmdXmlNamespace);
  auto ours = metadata.childrenInNamespace(kVmmdXmlNamespace);
  if (auto st = metadata.refuseRest(); !st) return st;
  if (ours.empty()) return {};
  if (ours.size() > 1 || viewOf(ours[0]->name) != "settings") {
    return Error(nodePath(ours.back()) + ": vmmd's metadata is one <settings> element");
  }
  ElementReader settings(ours[0]);
  for (const xmlNode* child : settings.childrenInNamespace(kVmmdXmlNamespace)) {
    ElementReader element(child);
    std::string_view name = viewOf(child->name);
    if (name == "autostart") {
      std::string value = textOf(child);
      if (value != "yes" && value != "no") return element.error("must be yes or no");
      out.set("autostart", value == "yes", element.path());
    } else if (name == "restart-backoff") {
      DraftObject backoff = out.object("restart_backoff", element.path());
      for (auto [attribute, field] : {std::pair{"initial-ms", "initial_ms"}, {"max-ms", "max_ms"},
                                      {"max-attempts", "max_attempts"}, {"reset-after-s", "reset_after_s"}}) {
        auto text = element.attribute(attribute);
        if (!text) continue;
        auto value = parseDecimal(*text);
        if (!value) return element.attributeError(attribute, value.error().message());
        backoff.set(field, static_cast<int64_t>(std::min<uint64_t>(*value, INT64_MAX)), element.attributePath(attribute));
      }
    } else if (name == "limits") {
      // Not <cputune>/<memtune>: libvirt's quota is per vCPU thread and hard_limit the whole
      // process, neither what a worker's cgroup gets from these.
      DraftObject limits = out.object("limits", element.path());
      for (auto [attribute, field] : {std::pair{"cpu-percent", "cpu_percent"}, {"memory-overhead-mib", "memory_overhead_mib"}}) {
        auto text = element.attribute(attribute);
        if (!text) continue;
        auto value = parseDecimal(*text);
        if (!value) return element.attributeError(attribute, value.error().message());
        limits.set(field, static_cast<int64_t>(std::min<uint64_t>(*value, INT64_MAX)), element.attributePath(attribute));
      }
    } else if (name == "disk") {
      auto target = element.requiredAttribute("target");
      if (!target) return target.error();
      auto id = element.requiredAttribute("id");
      if (!id) return id.error();
      if (!disk_ids.emplace(*target, DiskIdEntry{*id, element.attributePath("id"), element.attributePath("target")}).second) {
        return element.attributeError("target", "a second id for disk '" + *target + "'");
      }
    } else {
      return element.error("not understood by this vmmd");
    }
    if (auto st = element.refuseRest(); !st) return st;
  }
  return settings.refuseRest();
}

Status importDomain(const xmlNode* root, Draft& draft) {
  ElementReader domain(root);
  if (root->ns || viewOf(root->name) != "domain") return domain.error("not a libvirt <domain>");
  if (auto type = domain.attribute("type"); type != "kvm") {
    return domain.attributeError("type", type ? "'" + *type + "' is not supported by vmm (only kvm)" : "required (kvm)");
  }
  domain.ignoreAttributes({"id"});  // a running domain's number
  DraftObject out = draft.top();
  out.expect("name", domain.path() + "/name");
  out.expect("memory", domain.path() + "/memory");
  for (std::string_view field : {"name", "uuid"}) {
    auto st = domain.withChild(field, [&](ElementReader& element) -> Status {
      out.set(field, textOf(element.node()), element.path());
      return {};
    });
    if (!st) return st;
  }
  DiskIds disk_ids;
  DiskBootOrders boot_orders;
  if (auto st = importMetadata(domain, out, disk_ids); !st) return st;
  if (auto st = importMemory(domain, out); !st) return st;
  if (auto st = importVcpus(domain, out); !st) return st;
  auto os = importOs(domain, out);
  if (!os) return os.error();
  if (auto st = domain.withChild("features", importFeatures); !st) return st;
  if (auto st = domain.withChild("cpu", importCpu); !st) return st;
  if (auto st = domain.withChild("clock", importClock); !st) return st;
  if (auto st = domain.withChild("pm", importPowerManagement); !st) return st;
  if (auto st = importLifecycle(domain, out); !st) return st;
  // Placement and security labels: libvirt's, for the host it runs the domain on.
  domain.ignoreChildren({"resource", "seclabel"});
  auto devices = domain.optionalChild("devices");
  if (!devices) return devices.error();
  if (*devices) {
    if (auto st = importDevices(*devices, draft, disk_ids, boot_orders); !st) return st;
  } else {
    out.set("serial", false, domain.path() + "/devices");  // no <serial>: no COM1
    out.set("agent", false, domain.path() + "/devices");
  }
  if (auto st = importBoot(*os, std::move(boot_orders), out); !st) return st;
  for (const auto& [target, entry] : disk_ids) {
    if (!entry.used) return Error(entry.target_path + ": no disk with target '" + target + "'");
  }
  return domain.refuseRest();
}

}  // namespace
}  // namespace xml

Result<VmDefinition> definitionFromDomainXml(std::string_view text) {
  auto doc = xml::parseDocument(text, kMaxDefinitionBytes);
  if (!doc) return doc.error().withContext("domain XML");
  xml::Draft draft;
  if (auto st = xml::importDomain(xmlDocGetRootElement(doc->get()), draft); !st) return st.error();
  auto def = parseDefinition(draft.text());
  if (!def) return draft.translate(def.error());
  return def;
}

}  // namespace vmmd::daemon
