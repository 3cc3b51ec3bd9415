// Snapshots: qcow2 internal snapshots on the disks plus the guest state as a migration stream in
// a file, written with mapped-ram so that a revert maps the RAM instead of copying it
// (docs/migration-stream.md) (vmctl snapshot save/list/revert/delete).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "base/log.h"
#include "daemon/supervisor/image_tool.h"
#include "daemon/supervisor/supervisor.h"
#include "daemon/supervisor/supervisor_vm.h"

namespace vmmd::daemon {
namespace {

// A tag names a file too (<tag>.state): letters, digits, '.', '_', '-', not starting with '.'.
std::optional<std::string> badTag(const std::string& tag) {
  if (tag.empty() || tag.size() > 64) return "a snapshot tag has 1 to 64 characters";
  if (tag[0] == '.') return "a snapshot tag cannot start with '.'";
  for (char c : tag) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return "a snapshot tag holds only letters, digits, '.', '_' and '-' ('" + tag + "')";
  }
  return std::nullopt;
}

const DiskSpec* diskById(const VmDefinition& def, const std::string& id) {
  for (const DiskSpec& disk : def.disks) {
    if (disk.id == id) return &disk;
  }
  return nullptr;
}

qmp::Json internalSnapshotArgs(const std::string& device, const std::string& tag) {
  qmp::Json args = qmp::jsonObject();
  auto& a = args.GetAllocator();
  args.AddMember("device", qmp::jsonString(device, a), a);
  args.AddMember("name", qmp::jsonString(tag, a), a);
  return args;
}

}  // namespace

std::string snapshotStatePath(const std::string& snapshot_dir, const std::string& vm, const std::string& tag) {
  return snapshot_dir + "/" + vm + "/" + tag + ".state";
}

void Supervisor::snapshotSave(const std::string& name, const std::string& tag, Completion<SnapshotRecord> done) {
  if (auto bad = badTag(tag)) return done(vmError(VmErrorCode::kInvalidArgument, vmText(name) + ": " + *bad));
  withWorker(name, failTo(done), [this, name, tag, done](Vm& vm) {
    if (!vm.operation.empty()) return done(vmError(VmErrorCode::kWrongState, vmText(name) + ": " + vm.operation + " is in progress"));
    if (vm.state() != VmState::kRunning && vm.state() != VmState::kPaused) {
      return done(vmError(VmErrorCode::kWrongState, vmText(name) + " is " + std::string(toString(vm.state()))));
    }
    SnapshotRecord record{name, tag, unixTimeUs(), snapshotStatePath(config_.snapshot_dir, name, tag), 0, {}};
    for (const DiskSpec& disk : vm.def.disks) {
      if (disk.format != DiskFormat::kQcow2) {
        return done(vmError(VmErrorCode::kInvalidArgument, vmText(name) + ": disk '" + disk.id + "' (" + disk.path +
                                                               ") is raw: snapshots need qcow2 disks (internal snapshots)"));
      }
      if (disk.readonly) {
        return done(vmError(VmErrorCode::kInvalidArgument, vmText(name) + ": disk '" + disk.id + "' (" + disk.path +
                                                               ") is read-only: an internal snapshot writes to the image"));
      }
      record.disks.push_back(disk.id);
    }
    auto existing = store_.snapshot(name, tag);
    if (!existing) return done(vmError(VmErrorCode::kInternal, vmText(name) + ": " + existing.error().message()));
    if (*existing) return done(vmError(VmErrorCode::kAlreadyExists, vmText(name) + " has a snapshot '" + tag + "' already"));
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(record.state_file).parent_path(), ec);
    if (ec) return done(vmError(VmErrorCode::kInternal, vmText(name) + ": create the snapshot directory: " + ec.message()));
    UniqueFd file(::open(record.state_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!file) return done(vmError(VmErrorCode::kInternal, vmText(name) + ": " + Error::fromErrno("create " + record.state_file).message()));

    vm.operation = "snapshot save '" + tag + "'";
    bool was_running = vm.state() == VmState::kRunning;
    auto stream = std::make_shared<UniqueFd>(std::move(file));
    vm.on_worker_exit = [record, done](const VmError& why) {
      ::unlink(record.state_file.c_str());
      done(why);
    };
    auto save = [this, &vm, record, was_running, stream, done] {
      takeDiskSnapshots(vm, record.tag, 0, [this, &vm, record, was_running, stream, done](VmResult<Done> taken) {
        if (!taken) return finishSnapshotSave(vm, record, was_running, taken.error(), done);
        // mapped-ram: a revert (or a start from the snapshot) maps the guest's RAM from the file.
        migrateWorker(vm, std::move(*stream), /*mapped_ram=*/true, [this, &vm, record, was_running, done](VmResult<qmp::Json> migrated) {
          finishSnapshotSave(vm, record, was_running, std::move(migrated), done);
        });
      });
    };
    if (!was_running) return save();
    // Paused first: the disks and the memory are then of one instant.
    vm.qmp->execute("stop", nullptr, [this, &vm, name, save, record, done](Result<qmp::CommandResult>&& reply) {
      auto stopped = fromWorker(name, std::move(reply));
      if (!stopped) {
        endOperation(vm);
        ::unlink(record.state_file.c_str());
        return done(stopped.error());
      }
      save();
    });
  });
}

// Each disk in turn; a failure removes the snapshots taken before it.
void Supervisor::takeDiskSnapshots(Vm& vm, const std::string& tag, size_t index, Completion<Done> done) {
  if (index == vm.def.disks.size()) return done(Done{});
  const std::string device = vm.def.disks[index].id;
  auto args = std::make_shared<qmp::Json>(internalSnapshotArgs(device, tag));
  vm.qmp->execute("blockdev-snapshot-internal-sync", args.get(), [this, &vm, tag, index, device, args, done](Result<qmp::CommandResult>&& reply) {
    auto taken = fromWorker(vm.name(), std::move(reply));
    if (!taken) {
      VmError why = taken.error();
      why.message = vmText(vm.name()) + ": snapshot of disk '" + device + "': " + why.message;
      return deleteDiskSnapshots(vm, tag, index, [why, done](VmResult<Done>) { done(why); });
    }
    takeDiskSnapshots(vm, tag, index + 1, done);
  });
}

// The internal snapshot `tag` off the first `count` disks, through the running worker.
void Supervisor::deleteDiskSnapshots(Vm& vm, const std::string& tag, size_t count, Completion<Done> done) {
  if (count == 0) return done(Done{});
  const std::string device = vm.def.disks[count - 1].id;
  auto args = std::make_shared<qmp::Json>(internalSnapshotArgs(device, tag));
  vm.qmp->execute("blockdev-snapshot-delete-internal-sync", args.get(), [this, &vm, tag, count, device, args, done](Result<qmp::CommandResult>&& reply) {
    auto deleted = fromWorker(vm.name(), std::move(reply));
    if (!deleted) {
      VmError why = deleted.error();
      why.message = vmText(vm.name()) + ": delete snapshot '" + tag + "' of disk '" + device + "': " + why.message;
      return done(why);
    }
    deleteDiskSnapshots(vm, tag, count - 1, done);
  });
}

void Supervisor::finishSnapshotSave(Vm& vm, SnapshotRecord record, bool was_running, VmResult<qmp::Json> migrated,
                                    Completion<SnapshotRecord> done) {
  std::optional<VmError> failure;
  if (migrated) {
    struct stat st {};
    if (::stat(record.state_file.c_str(), &st) == 0) record.state_bytes = st.st_size;
    if (auto stored = store_.addSnapshot(record); !stored) {
      failure = vmError(VmErrorCode::kInternal, vmText(vm.name()) + ": record snapshot '" + record.tag + "': " + stored.error().message());
    }
  } else {
    failure = migrated.error();
    failure->message = vmText(vm.name()) + ": saving the guest state failed: " + failure->message;
  }
  auto resume = [this, &vm, was_running, record, failure, done] {
    endOperation(vm);
    auto answer = [record, failure, done] {
      if (failure) return done(*failure);
      done(record);
    };
    if (!was_running) return answer();
    vm.qmp->execute("cont", nullptr, [&vm, answer](Result<qmp::CommandResult>&& reply) {
      if (auto resumed = fromWorker(vm.name(), std::move(reply)); !resumed) {
        log::error(vmText(vm.name()) + ": resume after the snapshot: " + resumed.error().message);
      }
      answer();
    });
  };
  if (!failure) return resume();
  ::unlink(record.state_file.c_str());
  deleteDiskSnapshots(vm, record.tag, record.disks.size(), [resume](VmResult<Done> deleted) {
    if (!deleted) log::warning(deleted.error().message);
    resume();
  });
}

void Supervisor::endOperation(Vm& vm) {
  vm.operation.clear();
  vm.on_worker_exit = nullptr;
}

VmResult<std::vector<SnapshotRecord>> Supervisor::snapshots(const std::string& name) {
  auto stored = store_.definition(name);
  if (!stored) return vmError(VmErrorCode::kInternal, vmText(name) + ": " + stored.error().message());
  if (!*stored) return vmError(VmErrorCode::kNotFound, vmText(name) + " is not defined");
  auto all = store_.snapshots(name);
  if (!all) return vmError(VmErrorCode::kInternal, vmText(name) + ": " + all.error().message());
  return std::move(*all);
}

namespace {

// Runs the image tool on each disk of `paths` in turn.
void imageToolEach(uv_loop_t* loop, const std::string& tool, std::vector<std::string> args, std::vector<std::string> paths,
                   size_t index, const Owner& owner, std::function<void(Status)> done) {
  if (index == paths.size()) return done({});
  std::vector<std::string> argv = args;
  argv.push_back(paths[index]);
  runImageTool(loop, tool, argv, owner, [loop, tool, args, paths, index, owner, done](Status st) {
    if (!st) return done(st);
    imageToolEach(loop, tool, args, paths, index + 1, owner, done);
  });
}

}  // namespace

VmResult<std::pair<StoredDefinition, SnapshotRecord>> Supervisor::storedSnapshot(const std::string& name, const std::string& tag) {
  auto stored = store_.definition(name);
  if (!stored) return vmError(VmErrorCode::kInternal, vmText(name) + ": " + stored.error().message());
  if (!*stored) return vmError(VmErrorCode::kNotFound, vmText(name) + " is not defined");
  auto record = store_.snapshot(name, tag);
  if (!record) return vmError(VmErrorCode::kInternal, vmText(name) + ": " + record.error().message());
  if (!*record) return vmError(VmErrorCode::kNotFound, vmText(name) + " has no snapshot '" + tag + "'");
  return std::pair(std::move(**stored), std::move(**record));
}

void Supervisor::snapshotRevert(const std::string& name, const std::string& tag, Completion<Done> done) {
  auto found = storedSnapshot(name, tag);
  if (!found) return done(found.error());
  auto& [stored, record] = *found;
  std::vector<std::string> paths;
  for (const std::string& id : record.disks) {
    const DiskSpec* disk = diskById(stored.definition, id);
    if (!disk || disk->format != DiskFormat::kQcow2) {
      return done(vmError(VmErrorCode::kInvalidArgument, vmText(name) + ": snapshot '" + tag + "' has disk '" + id +
                                                             "', which the VM's definition no longer has as a qcow2 disk"));
    }
    paths.push_back(disk->path);
  }
  if (stored.definition.disks.size() != paths.size()) {
    return done(vmError(VmErrorCode::kInvalidArgument, vmText(name) + ": the VM has disks that snapshot '" + tag + "' does not cover"));
  }
  if (Vm* vm = active(name); vm && !vm->operation.empty()) {
    return done(vmError(VmErrorCode::kWrongState, vmText(name) + ": " + vm->operation + " is in progress"));
  }
  auto state = std::make_shared<UniqueFd>(::open(record.state_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!*state) return done(vmError(VmErrorCode::kInternal, vmText(name) + ": " + Error::fromErrno("open " + record.state_file).message()));
  Owner owner = stored.owner;
  auto revert = [this, name, tag, paths, owner, state, done] {
    imageToolEach(loop_, config_.img_tool, {"snapshot", "-a", tag}, paths, 0, owner, [this, name, state, done](Status reverted) {
      if (!reverted) return done(vmError(VmErrorCode::kWorkerFailed, vmText(name) + ": revert the disks: " + reverted.error().message()));
      IncomingPlan plan;
      plan.stream = std::move(*state);
      plan.run = true;
      startIncoming(name, std::move(plan), done);
    });
  };
  if (active(name)) {
    // The running worker holds the images: it goes first (nothing of its state is kept).
    quitWorker(name, [revert, done](VmResult<StopOutcome> stopped) {
      if (!stopped) return done(stopped.error());
      revert();
    });
    return;
  }
  revert();
}

void Supervisor::snapshotDelete(const std::string& name, const std::string& tag, Completion<Done> done) {
  auto found = storedSnapshot(name, tag);
  if (!found) return done(found.error());
  auto& [stored, record] = *found;
  auto forget_record = [this, name, tag, file = record.state_file, done](VmResult<Done> disks) {
    if (!disks) return done(disks.error());
    ::unlink(file.c_str());
    if (auto st = store_.removeSnapshot(name, tag); !st) return done(vmError(VmErrorCode::kInternal, vmText(name) + ": " + st.error().message()));
    done(Done{});
  };
  Vm* vm = active(name);
  if (vm && vm->process) {
    if (!vm->operation.empty()) return done(vmError(VmErrorCode::kWrongState, vmText(name) + ": " + vm->operation + " is in progress"));
    // The worker has the images open: it deletes the internal snapshots itself.
    withWorker(name, failTo(done), [this, tag, forget_record](Vm& w) { deleteDiskSnapshots(w, tag, w.def.disks.size(), forget_record); });
    return;
  }
  std::vector<std::string> paths;
  for (const std::string& id : record.disks) {
    if (const DiskSpec* disk = diskById(stored.definition, id)) paths.push_back(disk->path);
  }
  imageToolEach(loop_, config_.img_tool, {"snapshot", "-d", tag}, paths, 0, stored.owner, [name, forget_record](Status st) {
    if (!st) return forget_record(vmError(VmErrorCode::kWorkerFailed, vmText(name) + ": " + st.error().message()));
    forget_record(Done{});
  });
}

}  // namespace vmmd::daemon
