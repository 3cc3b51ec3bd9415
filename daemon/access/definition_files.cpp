#include "daemon/access/definition_files.h"

#include "daemon/access/open_as_owner.h"
#include "daemon/launch/worker_files.h"

namespace vmmd::daemon {

// Exactly what the launch will open for the worker, opened the same way (and closed again).
Status checkDefinitionFilesAsOwner(const VmDefinition& def, const Owner& owner) {
  auto files = openWorkerFiles(def, ownerFileOpener(owner));
  if (!files) return files.error();
  return {};
}

}  // namespace vmmd::daemon
