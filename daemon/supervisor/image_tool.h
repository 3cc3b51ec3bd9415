// Runs the image tool (vmm-img, or any tool with qemu-img's `snapshot -a|-d TAG FILE`) on a VM's
// disk while no worker has it open, as the VM's owner (its files are opened with the owner's
// rights, never vmmd's), without blocking the loop. Its output becomes the error's message.
#pragma once

#include <uv.h>

#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "daemon/access/owner.h"

namespace vmmd::daemon {

void runImageTool(uv_loop_t* loop, const std::string& tool, const std::vector<std::string>& args, const Owner& owner,
                  std::function<void(Status)> done);

}  // namespace vmmd::daemon
