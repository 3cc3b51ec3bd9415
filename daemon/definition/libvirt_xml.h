// libvirt's domain XML as a second form of a VM definition, beside the JSON of definition_json.h.
//
// Import maps what vmm can run and refuses the rest, naming the element or attribute
// ("/domain/devices/graphics: not supported by vmm"). What libvirt's own normalisation adds to a
// document (addresses, aliases, implicit controllers and ps2 inputs, <boot dev='hd'/>, placement,
// seclabels) is accepted and ignored, so `virsh dumpxml` output imports. The result goes through
// parseDefinition, so an imported definition is validated (and defaulted) exactly like a JSON one.
//
// Export writes what vmm runs, explicitly: type='kvm', host-passthrough CPU, q35, ACPI, the
// emulator path, no USB controller and no memory balloon (model='none', which libvirt would
// otherwise invent). vmmd-only settings (autostart, restart backoff, disk ids) travel in
// <metadata> under kVmmdXmlNamespace. import(export(d)) == d for every valid definition, also
// after libvirt has defined and dumped the document (tests/daemon/libvirt_xml_roundtrip.py).
//
// The XML library is libxml2 (the one libvirt itself parses with): a hardened parse (no network,
// no DTD or entities, 1 MiB cap) and its tree writer, which does all escaping.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "daemon/definition/vm_definition.h"

namespace vmmd::daemon {

// The namespace of vmmd's element in <metadata>.
inline constexpr std::string_view kVmmdXmlNamespace = "urn:x-vmmd:domain:1";

// Absolute paths (libvirt's schema takes no other).
struct ExportContext {
  std::string emulator;                     // the vmm binary: <emulator>
  std::optional<std::string> agent_socket;  // the guest-agent channel's host end, when known
};

// Parses, maps and validates a <domain> document (at most kMaxDefinitionBytes). Errors name the
// XML path ("/domain/devices/disk[2]/driver/@cache: ..."), or the line and column of malformed XML.
Result<VmDefinition> definitionFromDomainXml(std::string_view xml);

// The domain XML of `def` (formatted, no XML declaration, ending in a newline). Fails only for
// text XML 1.0 cannot carry (control characters a JSON definition may hold) and relative paths
// in `context`.
Result<std::string> domainXmlFromDefinition(const VmDefinition& def, const ExportContext& context);

}  // namespace vmmd::daemon
