// The -machine properties of the chosen machine type, checked once the whole command line is read
// (the type may come after its properties). pc/q35: the properties that describe what that
// machine already is are accepted so QEMU argv carries over. microvm: QEMU 7.2's microvm
// properties, each honoured (MicrovmConfig) or refused with the reason vmm cannot build it.
#pragma once

#include "base/result.h"
#include "vmm/config/machine_config.h"

namespace vmmd::config {

Status resolveMachineProperties(MachineConfig& config);

}  // namespace vmmd::config
