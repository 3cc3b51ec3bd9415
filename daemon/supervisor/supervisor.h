// The supervisor owns every VM's worker: it starts workers (detached, in their own session, so
// they outlive vmmd), is a QMP client of each (tracking STOP/RESUME/SHUTDOWN), relays their
// consoles, notices their death (process exit, or the pidfd of a re-attached worker), applies the
// VM's policy (on_crash: restart with backoff / destroy / preserve; on_poweroff), and keeps each
// VM's runtime record in the Store so that a restarted vmmd re-attaches instead of starting again.
//
// Each supervised VM moves through a VmLifecycle (vm_lifecycle.h). Commands answer with domain
// values or a typed VmError whose message names the VM ("VM 'web1' is not defined"); the control
// server (daemon/server) turns them into QMP. All calls and callbacks on the loop thread.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>

#include "base/uv_handle.h"
#include "daemon/access/owner.h"
#include "daemon/launch/worker_files.h"
#include "daemon/launch/worker_ids.h"
#include "daemon/network/network_manager.h"
#include "daemon/process/cgroup_tree.h"
#include "base/migration_destination.h"
#include "daemon/store/store.h"
#include "daemon/supervisor/agent_channel.h"
#include "daemon/supervisor/vm_error.h"
#include "daemon/supervisor/vm_lifecycle.h"
#include "daemon/supervisor/worker.h"
#include "daemon/supervisor/worker_resources.h"
#include "qmp/json.h"

namespace vmmd::daemon {

struct SupervisorConfig {
  std::string run_dir;   // absolute; VMs live in <run_dir>/vms/<name>/
  std::string vmm_path;  // the worker binary
  // --group: VM directories and console sockets are made accessible to it (the control socket's
  // group), so its members can use `vmctl console`.
  std::optional<gid_t> group;
  // Spawn → QMP negotiated, for a worker that is running but not answering (hung). Its socket
  // listens before it starts, so this bounds no wait for a socket; generous, as a slow host (20
  // guests starting at once in a nested VM) must never fail a start. A worker that exits is
  // reported at once.
  uint32_t qmp_greeting_timeout_ms = 120000;
  // Every request vmmd sends a worker fails after this long without an answer (a wedged worker,
  // or one whose QMP output backed up), so no command waits for ever.
  uint32_t qmp_request_timeout_ms = 30000;
  // A QMP connection lost while its worker still runs (the worker drops a client that does not
  // keep up) is made again: first after this, then twice as long each time up to the max.
  uint32_t qmp_reconnect_first_ms = 100;
  uint32_t qmp_reconnect_max_ms = 5000;
  // How often the workers' logs are checked against their cap (log_rotation.h).
  uint32_t log_check_interval_ms = 1000;
  // Each worker runs as its own uid/gid from this range (a root vmmd, --worker-ids); none: as
  // vmmd's own user (a vmmd that is not root cannot change it).
  std::optional<WorkerIdRange> worker_ids = std::nullopt;
  // Opens the VM's files (kernel, initrd, images, backing chains) for its worker.
  FileOpener open_file = openPlainFile;
  // When set, opens the VM's files with its owner's credentials instead (vmmd: openAsOwner), so a
  // worker gets only what the VM's owner could open; open_file is then unused.
  std::function<FileOpener(const Owner& owner)> open_file_as = nullptr;
  // Snapshot state files live in <snapshot_dir>/<vm>/<tag>.state (vmmd: <state dir>/snapshots).
  std::string snapshot_dir = {};
  // The image tool that reverts and deletes qcow2 internal snapshots of a VM without a worker
  // (`IMG snapshot -a|-d TAG FILE`, as qemu-img): vmm-img. Run as the VM's owner.
  std::string img_tool = "vmm-img";
  // The vmctl a migration over ssh runs on the destination host (`vmctl --socket S stdio-bridge`)
  // unless the destination names one (vmctl=PATH): the path of this host's, as the same package
  // installs it at the same place there; else the first vmctl on the remote PATH.
  std::string remote_vmctl = "vmctl";
  // Opens /dev/kvm for the worker (tests on a host without KVM give a stand-in).
  FileOpener open_device = openPlainFile;
  // vmmd's delegated cgroup v2 tree: each worker runs in vm-<name> with the definition's limits.
  // None: workers stay in vmmd's cgroup, and a VM with limits is started with a warning.
  std::optional<CgroupTree> cgroups = std::nullopt;
  // vmmd's networks: a NIC that names one gets a tap made at each start (attachNic) and given
  // back when the worker ends. None: a definition with such a NIC is refused.
  NetworkManager* networks = nullptr;
};

// One NIC as vm-list and vm-info show it: where it is (a network, or the operator's tap) and the
// guest's IPv4 address on it, when known, with where that came from.
struct NicAddress {
  std::string mac;
  std::string network;  // set for a network NIC
  std::string ifname;   // set for an ifname NIC
  std::optional<std::string> ipv4;
  // "agent" (the guest agent's guest-network-get-interfaces) or "dhcp-lease" (dnsmasq's leases).
  std::optional<std::string> source;
  std::optional<std::string> tap;  // the tap vmmd made for a network NIC, while the VM runs
};

// vm-define's answer.
struct DefinedVm {
  std::string name;
  std::string uuid;
};

// One row of vm-list, and the head of vm-info.
struct VmSummary {
  std::string name;
  Owner owner;
  VmState state = VmState::kShutoff;
  uint32_t vcpus = 0;
  uint64_t memory_mib = 0;
  bool autostart = false;
  std::optional<int64_t> pid;       // while a worker runs
  std::optional<int64_t> uptime_s;  // likewise
  std::vector<NicAddress> nics;     // in the definition's order; addresses while a worker runs
};

// vm-info.
struct VmDetails {
  VmSummary summary;
  bool has_record = false;  // the VM ran at some time: the fields below are known
  std::optional<std::string> console_socket, qmp_socket, qga_socket;  // while a worker runs
  std::optional<AgentChannel::State> agent;  // while a worker runs, for "agent": true
  std::optional<int64_t> exit_status, exit_signal;
  int64_t restart_count = 0;
  std::optional<std::string> operation;  // a snapshot or migration in progress ("migration to ...")
  size_t snapshots = 0;
  VmDefinition definition;
};

// vm-dumpxml's answer: the VM's definition as a libvirt <domain> document.
struct DomainXml {
  std::string text;
};

// vm-migrate's answer.
struct MigrationOutcome {
  std::string destination;
  qmp::Json status;  // the worker's last query-migrate answer (ram statistics, times)
};

// vm-migrate-incoming's answer: where the source's stream goes.
struct IncomingEndpoint {
  std::string name;
  std::string socket;
};

// vm-shutdown's and vm-destroy's answer: whether the worker had to be killed after the timeout.
struct StopOutcome {
  bool forced = false;
};

struct IncomingPlan;

class Supervisor {
 public:
  template <typename T>
  using Completion = std::function<void(VmResult<T>)>;
  // (vm, new state, why): "started", "guest powered off", "crashed: killed by signal 9 (Killed)"...
  using StateListener = std::function<void(const std::string& vm, VmState state, const std::string& reason)>;

  // With the real workers (processes of config.vmm_path).
  Supervisor(uv_loop_t* loop, Store& store, SupervisorConfig config);
  // With workers from `workers` (the tests' fake).
  Supervisor(uv_loop_t* loop, Store& store, SupervisorConfig config, std::unique_ptr<WorkerHost> workers);
  // Workers keep running. Gives the network manager's users query back (the manager may outlive it).
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Once at daemon start: re-attach to recorded workers that still run (same pid and start
  // time), apply the crash policy to those that died meanwhile, then start autostart VMs — the
  // latter only on the first vmmd start since boot (a marker in the run dir), as libvirt does, so
  // a daemon restart never boots a VM the operator had shut down.
  void recover();

  // `definition` is the document vm-define was given (JSON text), for a VM owned by `owner`.
  // The files it names are not opened here: the control server checks them as the owner
  // (access/definition_files.h) off the event loop before it defines.
  VmResult<DefinedVm> define(const std::string& definition, const Owner& owner = Owner::root());
  // A definition already parsed and validated (e.g. from libvirt's domain XML).
  VmResult<DefinedVm> define(const VmDefinition& def, const Owner& owner = Owner::root());
  // Who defined the VM (root for definitions older than owners); kNotFound when it is not defined.
  VmResult<Owner> ownerOf(const std::string& name);
  // A definition with its owner, for checks made outside the supervisor (vm-start's file check).
  VmResult<StoredDefinition> stored(const std::string& name);
  // Dies with the supervisor: work queued off the loop checks it before touching the supervisor.
  std::weak_ptr<const void> lifetime() const { return lifetime_; }
  uv_loop_t* loop() const { return loop_; }
  // The VM's definition as libvirt domain XML (vm-dumpxml), naming the worker binary and, for
  // "agent": true, the agent socket's path.
  VmResult<DomainXml> domainXml(const std::string& name);
  VmResult<Done> undefine(const std::string& name);
  VmResult<std::vector<VmSummary>> list();
  VmResult<VmDetails> info(const std::string& name);

  // Completes once the guest runs (or the start failed).
  void start(const std::string& name, Completion<Done> done);
  // ACPI power button (pressed again every 2 s) or one guest-shutdown through the agent;
  // completes when the worker has exited. After `timeout_s` without power-off: destroy when
  // `force`, else an error (the VM keeps running).
  void shutdown(const std::string& name, uint32_t timeout_s, bool force, ShutdownMode mode, Completion<StopOutcome> done);
  // SIGKILL to the worker; completes when it has exited.
  void destroy(const std::string& name, Completion<StopOutcome> done);
  void reboot(const std::string& name, Completion<Done> done);
  void pause(const std::string& name, Completion<Done> done);
  void resume(const std::string& name, Completion<Done> done);
  // One command passed to the worker's QMP; completes with the worker's own answer (its error as
  // kWorkerRefused, class kept).
  void forward(const std::string& name, const std::string& command, const qmp::JsonValue* args, Completion<qmp::Json> done);

  // One request ({"execute": ..., "arguments": ...}) passed to the VM's guest agent; completes
  // with the agent's "return" value or its error (kWorkerRefused, class kept, message prefixed
  // "guest agent: "), or kAgentNotConnected "VM 'x': guest agent is not connected (...)" when no
  // agent answers in time.
  void agentCommand(const std::string& name, qmp::Json request, uint32_t timeout_ms, Completion<qmp::Json> done);

  // Snapshots (snapshot_dir, img_tool): the guest paused, the qcow2 internal snapshot `tag` on
  // every disk (a raw or read-only disk refuses the save), the memory and device state written by
  // the worker as a migration stream to a file vmmd passes it, the guest resumed.
  void snapshotSave(const std::string& name, const std::string& tag, Completion<SnapshotRecord> done);
  VmResult<std::vector<SnapshotRecord>> snapshots(const std::string& name);
  // The disks reverted to `tag` while no worker has them open, then a new worker loads the state
  // file (-incoming defer + migrate-incoming) and the guest runs from that point; a running
  // worker is destroyed first.
  void snapshotRevert(const std::string& name, const std::string& tag, Completion<Done> done);
  void snapshotDelete(const std::string& name, const std::string& tag, Completion<Done> done);

  // Moves a running VM to the vmmd at `destination` (its control socket, or HOST / ssh://... as
  // parseMigrationDestination reads it, reached through ssh): that vmmd
  // defines it (same owner) and starts a worker waiting for the stream; this worker migrates to
  // it; on completion this worker is stopped and the VM undefined here. Any failure leaves the VM
  // running here and nothing of it there.
  void migrateTo(const std::string& name, const std::string& destination, Completion<MigrationOutcome> done);
  void migrateCancel(const std::string& name, Completion<Done> done);
  // The migration in progress (phase, destination, the worker's query-migrate answer).
  VmResult<qmp::Json> migrationStatus(const std::string& name);
  // The destination side: defines the VM for `owner` and starts its worker waiting for a stream
  // on a socket in its run directory; answers once the worker waits. The VM is undefined again
  // when the stream fails, the worker exits, or abortIncoming is called before it runs.
  // `source`: the id of the control connection that asked (sourceGone ends the arrival); 0: none.
  void acceptIncoming(const VmDefinition& def, const Owner& owner, bool run, Completion<IncomingEndpoint> done, uint64_t source = 0);
  // Control connection `source` has closed: an arrival it asked for and has not committed is
  // dropped (a source vmmd that went away, or an ssh session that died with the link, never
  // commits; its VM runs on at the source).
  void sourceGone(uint64_t source);
  // Completes once the arriving VM's guest runs (or is paused, as the source's was).
  void commitIncoming(const std::string& name, Completion<Done> done);
  void abortIncoming(const std::string& name, Completion<Done> done);

  StateListener onStateChange;

 private:
  struct Vm;
  using StopCompletion = Completion<StopOutcome>;

  Vm* active(const std::string& name);
  // The error for a command on a VM without a worker: not defined, or not running.
  VmError notActive(const std::string& name);
  using WorkerAction = std::function<void(Vm& vm)>;
  using WorkerUnavailable = std::function<void(const VmError& error)>;
  // Runs `action` once the VM's worker has a negotiated QMP connection: at once, or — while the
  // worker is starting or being re-attached after a vmmd restart — when it has one. Calls
  // `unavailable` instead when the VM is not defined, not running, or its worker ends first.
  void withWorker(const std::string& name, WorkerUnavailable unavailable, WorkerAction action);
  void runAwaiting(Vm& vm, const std::optional<VmError>& error);
  std::optional<VmError> launch(Vm& vm);
  std::optional<VmError> spawnWorker(Vm& vm);  // launch's work; launch gives the taps back when it fails
  void schedule(Vm& vm, uint64_t delay_ms, std::function<void()> action);
  void connectQmp(Vm& vm);
  std::unique_ptr<WorkerLink> makeLink(Vm& vm);
  void qmpLost(Vm& vm, const Error& why);
  void scheduleReconnect(Vm& vm);
  void reconnectQmp(Vm& vm);
  // Commits a stop before it is carried out (the SIGKILL, the power button), so a restarted vmmd
  // finishes it: a destroy is never taken for a crash, a shutdown keeps its deadline.
  void commitStop(Vm& vm, StopIntent intent);
  // Why the process described by `facts` is not `vm`'s worker (wrong start time, boot, binary or
  // -uuid), or nullopt when it is. `expected_start` and the boot id are checked for a recorded pid.
  std::optional<std::string> notOurWorker(const Vm& vm, const ProcessFacts& facts, std::optional<uint64_t> expected_start);
  // A restarted vmmd's hold on a VM's worker: the recorded one when it is still that worker, else
  // whatever holds the VM's pidfile lock — adopted when it is the VM's worker and the VM should
  // run, killed otherwise (it holds the VM's image locks).
  std::unique_ptr<Worker> reattach(Vm& vm, bool wants_worker);
  void checkLogs();
  void qmpUnreachable(Vm& vm, const std::string& why);  // fails a start; leaves a re-attached worker alone
  void onQmpReady(Vm& vm);
  void settleRunState(Vm& vm);
  void guestRuns(Vm& vm, VmEvent event, const char* how);
  void onWorkerEvent(Vm& vm, const qmp::Json& event);
  void onWorkerExit(Vm& vm, const WorkerExit& exit);
  void failStart(Vm& vm, const std::string& why);
  void applyCrashPolicy(Vm& vm, const std::string& why);
  void scheduleRestart(Vm& vm, uint32_t delay_ms, const std::string& why);
  // Moves the VM's lifecycle by `event` (ignored when its phase does not accept it) and records
  // the visible state. Returns whether the event was accepted.
  bool advance(Vm& vm, VmEvent event, const std::string& reason, const std::string& event_kind = "state");
  // Saves the VM's visible state with an event ("state", "reset") and tells onStateChange.
  void recordState(Vm& vm, const std::string& reason, const std::string& event_kind);
  // The VM's supervision ends by `event` (to shut-off or crashed); its record is kept.
  void retire(Vm& vm, VmEvent event, const std::string& reason);
  void saveIdle(const std::string& name, VmState state, const std::string& reason, const RuntimeRecord* base);
  void finishStops(Vm& vm, const VmResult<StopOutcome>& result);
  void beginShutdown(Vm& vm, ShutdownPlan plan, StopCompletion done);
  void pressPowerButton(Vm& vm);
  void sendAgentShutdown(Vm& vm);
  AgentChannel& agentOf(Vm& vm);  // made on first use (a command, or the guest opening the port)
  void shutdownRequestFailed(Vm& vm, const VmError& error);
  void shutdownTick(Vm& vm);
  void forget(Vm& vm);
  void claimWorker(Vm& vm, pid_t pid, const ProcessFacts& facts);
  // Networks (supervisor_networks.cpp): a tap per network NIC at launch, given back at the end.
  Result<NetworkTaps> attachNetworks(Vm& vm);
  void detachNetworks(Vm& vm);
  Status checkNetworks(const VmDefinition& def) const;
  // The running VMs with a NIC on `network` (NetworkManager's users query).
  std::vector<std::string> networkUsers(const std::string& network) const;
  std::vector<NicAddress> nicAddresses(const VmDefinition& def, Vm* vm);
  // Asks the guest agent for the guest's addresses in the background when what it said last is
  // old; vm-list and vm-info show what it said, never wait for it.
  void refreshAgentAddresses(Vm& vm);
  Result<std::optional<WorkerIdentity>> workerIdentity(Vm& vm);
  
  std::unique_ptr<Vm> makeVm(const StoredDefinition& stored);
  // start() with the worker loading its state from `plan` instead of booting.
  void startIncoming(const std::string& name, IncomingPlan plan, Completion<Done> done);
  void loadIncoming(Vm& vm);
  void feedIncoming(Vm& vm, UniqueFd stream);
  void pollIncoming(Vm& vm);
  // getfd + migrate to `stream`, then query-migrate until it ends; `done` with the last status.
  // `mapped_ram`: the stream is a state file written with mapped-ram (snapshots: a revert maps
  // its RAM instead of copying it); off for a socket to another host.
  void migrateWorker(Vm& vm, UniqueFd stream, bool mapped_ram, Completion<qmp::Json> done);
  void passAndMigrate(Vm& vm, std::shared_ptr<UniqueFd> held, Completion<qmp::Json> done);
  void pollOutgoing(Vm& vm, std::shared_ptr<Completion<qmp::Json>> done);
  // The VM's definition and its snapshot `tag`, or why not (not defined, no such snapshot).
  VmResult<std::pair<StoredDefinition, SnapshotRecord>> storedSnapshot(const std::string& name, const std::string& tag);
  void takeDiskSnapshots(Vm& vm, const std::string& tag, size_t index, Completion<Done> done);
  void deleteDiskSnapshots(Vm& vm, const std::string& tag, size_t index, Completion<Done> done);
  void finishSnapshotSave(Vm& vm, SnapshotRecord record, bool was_running, VmResult<qmp::Json> migrated,
                          Completion<SnapshotRecord> done);
  void connectToDestination(Vm& vm, const MigrationDestination& destination, std::function<void(Status)> connected);
  void migrationPrepared(Vm& vm, const std::string& socket, Completion<MigrationOutcome> done);
  void migrationEnded(Vm& vm, VmResult<qmp::Json> result, Completion<MigrationOutcome> done);
  void endOperation(Vm& vm);
  // Ends the worker with QMP `quit` (images flushed and closed), SIGKILL after a grace period;
  // completes at its exit. A worker without a QMP connection is destroyed at once.
  void quitWorker(const std::string& name, StopCompletion done);
  void autostart();

  // A VM arriving by migration (destination side), from vm-migrate-incoming until it runs
  // (commitIncoming) or is given up (abortIncoming, a failed load).
  // Its worker loads the state and waits paused: the guest runs only once the source, its own
  // migration completed, commits (so a source that fails or is cancelled at the very end never
  // leaves the guest running on both hosts).
  struct Arrival {
    bool loaded = false;
    bool run = true;  // the guest ran at the source: `cont` at the commit
    std::optional<VmError> failed;
    std::vector<Completion<Done>> commit_waiters;
    uint64_t source = 0;  // the control connection of the source vmmd (0: not tracked)
  };
  void arrivalLoaded(const std::string& name, const VmResult<Done>& outcome);
  void finishArrival(const std::string& name);
  // At recover: VMs whose incoming migration a previous vmmd did not finish are dropped.
  void dropUnfinishedArrivals();
  // Undefines `name` now, or once its supervision ends (a failed start is still killing it).
  void undefineWhenStopped(const std::string& name);
  void finishMigration(const std::string& name, Completion<MigrationOutcome> done, std::shared_ptr<MigrationOutcome> outcome);

  uv_loop_t* loop_;
  Store& store_;
  std::map<std::string, Arrival, std::less<>> arrivals_;
  std::set<std::string, std::less<>> drop_when_retired_;  // undefineWhenStopped
  SupervisorConfig config_;
  std::unique_ptr<WorkerHost> workers_;
  std::optional<WorkerIdAllocator> worker_ids_;  // before vms_: their leases go back to it
  std::map<std::string, std::unique_ptr<Vm>, std::less<>> vms_;  // VMs with a worker or a pending restart
  std::string boot_id_;     // recorded with each worker
  std::string worker_exe_;  // config_.vmm_path made absolute, as /proc/PID/exe shows it
  UvHandle<uv_timer_t> log_timer_;
  std::shared_ptr<const int> lifetime_ = std::make_shared<const int>(0);
};

}  // namespace vmmd::daemon
