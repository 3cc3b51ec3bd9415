#include "vmm/monitor/qmp_fds.h"

#include "qmp/session.h"
#include "vmm/monitor/monitored_vm.h"

namespace vmmd {

void registerFdCommands(qmp::CommandRegistry& registry, MonitoredVm& vm) {
  registry.addSync({"getfd", {{"fdname", qmp::ArgType::Str}}}, [&vm](const qmp::JsonValue& args, qmp::Session& session) -> qmp::CommandResult {
    std::string name(qmp::jsonStringView(args["fdname"]));
    // QEMU's own checks and words: fd:N means the inherited descriptor N, never a name.
    if (!name.empty() && name[0] >= '0' && name[0] <= '9') {
      return qmp::QmpError::generic("Parameter 'fdname' expects a name not starting with a digit");
    }
    auto fd = session.takePassedFd();
    if (!fd) return qmp::QmpError::generic("No file descriptor supplied via SCM_RIGHTS");
    vm.migration().addFd(name, std::move(*fd));
    return qmp::jsonObject();
  });
  registry.addSync({"closefd", {{"fdname", qmp::ArgType::Str}}}, [&vm](const qmp::JsonValue& args, qmp::Session&) -> qmp::CommandResult {
    std::string name(qmp::jsonStringView(args["fdname"]));
    if (!vm.migration().closeFd(name)) return qmp::QmpError::generic("File descriptor named '" + name + "' not found");
    return qmp::jsonObject();
  });
}

}  // namespace vmmd
