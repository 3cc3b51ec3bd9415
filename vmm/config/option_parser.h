// Parses the QEMU-compatible subset of qemu-system-x86_64's command line into a MachineConfig.
// The same argv can be handed to qemu-system-x86_64 or to vmm. Unknown or malformed options are
// errors naming the option; nothing is silently ignored.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/config/machine_config.h"

namespace vmmd::config {

// `args` excludes argv[0].
Result<MachineConfig> parseCommandLine(const std::vector<std::string>& args);

// One line per accepted option, for `vmm -help`.
std::string usageText();

}  // namespace vmmd::config
