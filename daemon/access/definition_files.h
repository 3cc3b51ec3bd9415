// Every file a VM definition names, opened as its owner would open it (open_as_owner.h): the
// kernel and initrd read-only, each disk read-only or read-write as the definition says, and a
// qcow2 disk's backing chain read-only, file by file (the header read from the opened descriptor
// through storage/'s parser, relative names resolved against the image's folder as QEMU does, the
// backing format required: never probed). Blocking: run it off the event loop.
//
// Errors name the field: "disks[0].path: /etc/shadow: permission denied for uid 1000",
// "disks[1].path: /img/top.qcow2: backing file /etc/shadow: permission denied for uid 1000".
#pragma once

#include "base/result.h"
#include "daemon/access/owner.h"
#include "daemon/definition/vm_definition.h"

namespace vmmd::daemon {

// Also the NICs' taps (checkTapsAsOwner).
Status checkDefinitionFilesAsOwner(const VmDefinition& def, const Owner& owner);

// A non-root owner may name only taps that the kernel would let it attach itself: the tap's owner
// is its uid or the tap's group one of its groups. A tap that does not exist yet is not checked.
Status checkTapsAsOwner(const VmDefinition& def, const Owner& owner);

}  // namespace vmmd::daemon
