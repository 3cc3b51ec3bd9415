// The supervisor driven with scripted workers (fake_worker.h) on a real libuv loop and a real
// SQLite store: start, shutdown, destroy, reboot, pause/resume, crashes and their policies, and a
// restarted vmmd re-attaching. The loop is run until the expected answer has come, never slept on.
#include "daemon/supervisor/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <uv.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "tests/daemon/fake_worker.h"
#include "tests/support/temp_dir.h"

namespace vmmd::daemon {
namespace {

using testing::FakeProcess;
using testing::FakeWorkerHost;

// One command's answer, once it has come.
template <typename T>
struct Answer {
  std::optional<VmResult<T>> result;
  Supervisor::Completion<T> completion() {
    return [this](VmResult<T> r) { result.emplace(std::move(r)); };
  }
  bool came() const { return result.has_value(); }
  const VmError& error() const { return result->error(); }
};

void expectError(const VmError& error, VmErrorCode code, const std::string& message) {
  EXPECT_EQ(error.code, code) << error.message;
  EXPECT_EQ(error.message, message);
}

struct StateChange {
  std::string vm;
  VmState state;
  std::string reason;
};

class SupervisorTest : public ::testing::Test {
 protected:
  SupervisorTest() {
    uv_loop_init(&loop_);
    std::ofstream(dir_.file("kernel")) << "a kernel";
    auto store = Store::open(dir_.file("vmmd.db"));
    EXPECT_TRUE(store.ok()) << store.error().message();
    store_.emplace(std::move(*store));
    std::filesystem::create_directories(runDir());
    startVmmd();
  }
  ~SupervisorTest() override {
    supervisor_.reset();
    uv_run(&loop_, UV_RUN_NOWAIT);  // the handles' close callbacks
    uv_loop_close(&loop_);
  }

  std::string runDir() const { return dir_.file("run"); }

  // vmmd (re)starting: a fresh supervisor and fresh workers over the same store and run dir.
  void startVmmd() {
    supervisor_.reset();
    auto host = std::make_unique<FakeWorkerHost>(&loop_);
    workers_ = host.get();
    workers_->boot_id = boot_id_;
    SupervisorConfig config{runDir(), "/nonexistent/vmm", std::nullopt, 100};
    config.qmp_request_timeout_ms = request_timeout_ms_;
    config.worker_ids = worker_ids_;
    // No KVM needed: the fake workers never use what stands in for /dev/kvm.
    config.open_device = [](const std::string&, int flags) { return openPlainFile("/dev/null", flags); };
    supervisor_ = std::make_unique<Supervisor>(&loop_, *store_, config, std::move(host));
    supervisor_->onStateChange = [this](const std::string& vm, VmState state, const std::string& reason) {
      changes_.push_back({vm, state, reason});
    };
  }

  // `extra`: more members of the definition (",\"on_crash\": \"preserve\"").
  void define(const std::string& name, const std::string& extra = "") {
    auto defined = supervisor_->define(R"({"schema": 1, "name": ")" + name + R"(", "memory": 64, "kernel": ")" +
                                       dir_.file("kernel") + "\"" + extra + "}");
    ASSERT_TRUE(defined.ok()) << defined.error().message;
  }

  bool runUntil(const std::function<bool()>& done) {
    // A short repeating timer wakes the loop, so that a condition no callback announces is seen too.
    auto tick = makeUvHandle<uv_timer_t>();
    uv_timer_init(&loop_, tick.get());
    uv_timer_start(tick.get(), [](uv_timer_t*) {}, 5, 5);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done() && std::chrono::steady_clock::now() < deadline) uv_run(&loop_, UV_RUN_ONCE);
    return done();
  }
  template <typename T>
  bool await(Answer<T>& answer) {
    return runUntil([&] { return answer.came(); });
  }

  VmState state(const std::string& name) {
    auto info = supervisor_->info(name);
    EXPECT_TRUE(info.ok());
    return info ? info->summary.state : VmState::kShutoff;
  }
  bool reaches(const std::string& name, VmState wanted) {
    return runUntil([&] { return state(name) == wanted; });
  }

  // Starts a defined VM and waits until it runs.
  std::shared_ptr<FakeProcess> startRunning(const std::string& name) {
    Answer<Done> started;
    supervisor_->start(name, started.completion());
    EXPECT_TRUE(await(started));
    EXPECT_TRUE(started.result && started.result->ok()) << (started.result && !started.result->ok() ? started.error().message : "");
    EXPECT_EQ(state(name), VmState::kRunning);
    return workers_->last();
  }

  // "a" is shut down (`timeout_s`, `force`) by a guest that ignores the button, and vmmd restarts
  // meanwhile: the survivor, re-attached (it ignores the button too).
  std::shared_ptr<FakeProcess> restartDuringShutdown(uint32_t timeout_s, bool force) {
    define("a");
    workers_->script.powers_off_on_button = false;
    auto worker = startRunning("a");
    supervisor_->shutdown("a", timeout_s, force, ShutdownMode::kAcpi, [](VmResult<StopOutcome>) {});
    EXPECT_EQ(state("a"), VmState::kShuttingDown);
    startVmmd();
    auto survivor = workers_->addSurvivor(*worker, "running");
    survivor->script.powers_off_on_button = false;
    supervisor_->recover();
    return survivor;
  }

  // The store says `name` is in `state` with no worker recorded: what a vmmd killed after
  // committing a start but before committing its worker's pid leaves (kStarting), or one whose
  // VM is off.
  void forgetWorker(const std::string& name, VmState state) {
    RuntimeRecord record = **store_->runtime(name);
    record.state = state;
    record.pid.reset();
    record.start_time.reset();
    ASSERT_TRUE(store_->saveRuntime(record).ok());
  }

  bool changedTo(VmState state, const std::string& reason) const {
    for (const StateChange& c : changes_) {
      if (c.state == state && c.reason == reason) return true;
    }
    return false;
  }

  ::vmmd::test_support::TempDir dir_;
  uv_loop_t loop_{};
  std::optional<Store> store_;
  std::unique_ptr<Supervisor> supervisor_;
  FakeWorkerHost* workers_ = nullptr;
  std::vector<StateChange> changes_;
  uint32_t request_timeout_ms_ = 30000;
  std::optional<WorkerIdRange> worker_ids_;
  std::string boot_id_ = "boot-1";  // the fake machine's boot, for the next startVmmd
};

// --- definitions ---

TEST_F(SupervisorTest, DefineRefusesTakenNamesAndUuidsWithTypedErrors) {
  define("a");
  auto again = supervisor_->define(R"({"schema": 1, "name": "a", "memory": 64, "kernel": ")" + dir_.file("kernel") + "\"}");
  ASSERT_FALSE(again.ok());
  expectError(again.error(), VmErrorCode::kAlreadyExists, "VM 'a' is already defined");

  auto info = supervisor_->info("a");
  ASSERT_TRUE(info.ok());
  auto clone = supervisor_->define(R"({"schema": 1, "name": "b", "memory": 64, "uuid": ")" + info->definition.uuid +
                                   R"(", "kernel": ")" + dir_.file("kernel") + "\"}");
  ASSERT_FALSE(clone.ok());
  expectError(clone.error(), VmErrorCode::kAlreadyExists, "VM 'b': uuid " + info->definition.uuid + " is already used by vm 'a'");

  auto invalid = supervisor_->define(R"({"schema": 1})");
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.error().code, VmErrorCode::kInvalidArgument);
}

// A supervisor without a network manager (tests, a vmmd that manages none) refuses network NICs
// at define time, naming the NIC; tap NICs are its operator's business.
TEST_F(SupervisorTest, ANetworkNicNeedsANetworkManager) {
  auto refused = supervisor_->define(R"({"schema": 1, "name": "n", "memory": 64, "kernel": ")" + dir_.file("kernel") +
                                     R"(", "nics": [{"ifname": "tap0"}, {"network": "default"}]})");
  ASSERT_FALSE(refused.ok());
  expectError(refused.error(), VmErrorCode::kInvalidArgument,
              "invalid definition: nics[1].network: this vmmd manages no networks");
  EXPECT_FALSE(supervisor_->stored("n").ok());
}

TEST_F(SupervisorTest, UnknownVmsAreNotFound) {
  Answer<Done> started;
  supervisor_->start("ghost", started.completion());
  ASSERT_TRUE(started.came());
  expectError(started.error(), VmErrorCode::kNotFound, "VM 'ghost' is not defined");
  Answer<StopOutcome> destroyed;
  supervisor_->destroy("ghost", destroyed.completion());
  ASSERT_TRUE(destroyed.came());
  EXPECT_EQ(destroyed.error().code, VmErrorCode::kNotFound);
  EXPECT_EQ(supervisor_->undefine("ghost").error().code, VmErrorCode::kNotFound);
  EXPECT_EQ(supervisor_->info("ghost").error().code, VmErrorCode::kNotFound);
}

TEST_F(SupervisorTest, AnActiveVmCannotBeUndefined) {
  define("a");
  startRunning("a");
  auto undefined = supervisor_->undefine("a");
  ASSERT_FALSE(undefined.ok());
  expectError(undefined.error(), VmErrorCode::kWrongState, "VM 'a' is active; destroy or shut it down first");
}

// --- start ---

TEST_F(SupervisorTest, StartLetsThePrelaunchedGuestRunAndRecordsTheWorker) {
  define("a");
  auto worker = startRunning("a");
  ASSERT_TRUE(worker);
  EXPECT_EQ(worker->commands, (std::vector<std::string>{"query-status", "cont"}));
  EXPECT_NE(std::find(worker->args.begin(), worker->args.end(), "-S"), worker->args.end());
  EXPECT_TRUE(changedTo(VmState::kStarting, "worker pid " + std::to_string(worker->pid)));
  EXPECT_TRUE(changedTo(VmState::kRunning, "started"));
  auto record = store_->runtime("a");
  ASSERT_TRUE(record.ok() && *record);
  EXPECT_EQ((*record)->state, VmState::kRunning);
  EXPECT_EQ((*record)->pid, worker->pid);
  EXPECT_EQ((*record)->start_time, static_cast<int64_t>(worker->start_time));
  auto list = supervisor_->list();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].pid, worker->pid);

  Answer<Done> again;
  supervisor_->start("a", again.completion());
  ASSERT_TRUE(again.came());
  expectError(again.error(), VmErrorCode::kWrongState, "VM 'a' is already running");
}

TEST_F(SupervisorTest, AWorkerThatExitsWhileStartingFailsTheStartWithItsLastLogLine) {
  define("a");
  workers_->script.exits_at_start = 1;
  workers_->script.log_line = "vmm: -kernel: not a bzImage";
  Answer<Done> started;
  supervisor_->start("a", started.completion());
  ASSERT_TRUE(await(started));
  ASSERT_FALSE(started.result->ok());
  expectError(started.error(), VmErrorCode::kWorkerFailed, "VM 'a': worker exited with status 1: vmm: -kernel: not a bzImage");
  EXPECT_EQ(state("a"), VmState::kShutoff);
  EXPECT_TRUE(changedTo(VmState::kShutoff, "start failed: exited with status 1"));
}

TEST_F(SupervisorTest, ASpawnThatFailsLeavesTheVmShutOff) {
  define("a");
  workers_->script.spawn_fails = true;
  Answer<Done> started;
  supervisor_->start("a", started.completion());
  ASSERT_TRUE(started.came());
  expectError(started.error(), VmErrorCode::kWorkerFailed, "VM 'a': spawn vmm: No such file or directory");
  EXPECT_EQ(state("a"), VmState::kShutoff);
}

TEST_F(SupervisorTest, AWorkerThatNeverGreetsIsKilledAfterTheGreetingTimeout) {
  define("a");
  workers_->script.greets = false;
  Answer<Done> started;
  supervisor_->start("a", started.completion());
  ASSERT_TRUE(await(started));
  ASSERT_FALSE(started.result->ok());
  EXPECT_NE(started.error().message.find("did not answer on its QMP socket"), std::string::npos) << started.error().message;
  auto worker = workers_->last();
  EXPECT_EQ(worker->signals, std::vector<int>{SIGKILL});
  EXPECT_TRUE(reaches("a", VmState::kShutoff));
}

TEST_F(SupervisorTest, CommandsThatComeWhileStartingRunOnceTheGuestRuns) {
  define("a");
  Answer<Done> started, paused;
  supervisor_->start("a", started.completion());
  supervisor_->pause("a", paused.completion());
  EXPECT_FALSE(paused.came());
  ASSERT_TRUE(await(paused));
  EXPECT_TRUE(started.came() && started.result->ok());
  EXPECT_TRUE(paused.result->ok());
  EXPECT_EQ(state("a"), VmState::kPaused);
}

// --- shutdown and destroy ---

TEST_F(SupervisorTest, AcpiShutdownEndsWhenTheWorkerExits) {
  define("a");
  auto worker = startRunning("a");
  Answer<StopOutcome> stopped;
  supervisor_->shutdown("a", 60, false, ShutdownMode::kAcpi, stopped.completion());
  EXPECT_EQ(state("a"), VmState::kShuttingDown);
  ASSERT_TRUE(await(stopped));
  ASSERT_TRUE(stopped.result->ok());
  EXPECT_FALSE((*stopped.result)->forced);
  EXPECT_EQ(worker->commands.back(), "system_powerdown");
  EXPECT_EQ(state("a"), VmState::kShutoff);
  EXPECT_TRUE(changedTo(VmState::kShutoff, "shut down"));
  auto record = store_->runtime("a");
  EXPECT_FALSE((*record)->pid);
  EXPECT_EQ((*record)->exit_status, 0);
}

TEST_F(SupervisorTest, AShutdownThatTimesOutWithoutForceLeavesTheVmAsItWas) {
  define("a");
  workers_->script.powers_off_on_button = false;
  for (bool paused : {false, true}) {
    SCOPED_TRACE(paused ? "paused" : "running");
    auto worker = startRunning("a");
    if (paused) {
      Answer<Done> done;
      supervisor_->pause("a", done.completion());
      ASSERT_TRUE(await(done));
    }
    Answer<StopOutcome> stopped;
    supervisor_->shutdown("a", 0, false, ShutdownMode::kAcpi, stopped.completion());
    ASSERT_TRUE(await(stopped));
    ASSERT_FALSE(stopped.result->ok());
    EXPECT_EQ(stopped.error().code, VmErrorCode::kTimedOut);
    EXPECT_EQ(stopped.error().message, "VM 'a' did not power off within 0 s (use force to destroy it)");
    EXPECT_EQ(state("a"), paused ? VmState::kPaused : VmState::kRunning);
    EXPECT_TRUE(worker->signals.empty());
    Answer<StopOutcome> destroyed;
    supervisor_->destroy("a", destroyed.completion());
    ASSERT_TRUE(await(destroyed));
  }
}

TEST_F(SupervisorTest, AForcedShutdownDestroysAtTheTimeout) {
  define("a");
  workers_->script.powers_off_on_button = false;
  auto worker = startRunning("a");
  Answer<StopOutcome> stopped;
  supervisor_->shutdown("a", 0, true, ShutdownMode::kAcpi, stopped.completion());
  ASSERT_TRUE(await(stopped));
  ASSERT_TRUE(stopped.result->ok());
  EXPECT_TRUE((*stopped.result)->forced);
  EXPECT_EQ(worker->signals, std::vector<int>{SIGKILL});
  EXPECT_EQ(state("a"), VmState::kShutoff);
  EXPECT_TRUE(changedTo(VmState::kShutoff, "destroyed after the shutdown timeout"));
}

TEST_F(SupervisorTest, ARefusedPowerButtonEndsTheShutdown) {
  define("a");
  workers_->script.refuses = {"system_powerdown"};
  startRunning("a");
  Answer<StopOutcome> stopped;
  supervisor_->shutdown("a", 60, true, ShutdownMode::kAcpi, stopped.completion());
  ASSERT_TRUE(await(stopped));
  ASSERT_FALSE(stopped.result->ok());
  EXPECT_EQ(stopped.error().code, VmErrorCode::kWorkerRefused);
  EXPECT_EQ(stopped.error().remote_class, "GenericError");
  EXPECT_EQ(state("a"), VmState::kRunning);
  EXPECT_TRUE(changedTo(VmState::kRunning, "shutdown failed"));
}

TEST_F(SupervisorTest, AgentShutdownNeedsTheAgentChannel) {
  define("a");
  startRunning("a");
  Answer<StopOutcome> stopped;
  supervisor_->shutdown("a", 60, false, ShutdownMode::kAgent, stopped.completion());
  ASSERT_TRUE(stopped.came());
  expectError(stopped.error(), VmErrorCode::kInvalidArgument, "VM 'a' has no guest agent channel (\"agent\": true in its definition)");
}

TEST_F(SupervisorTest, DestroyKillsTheWorkerAndAnswersEveryStopWaiter) {
  define("a");
  workers_->script.powers_off_on_button = false;
  auto worker = startRunning("a");
  Answer<StopOutcome> shutdown, destroyed;
  supervisor_->shutdown("a", 60, true, ShutdownMode::kAcpi, shutdown.completion());
  supervisor_->destroy("a", destroyed.completion());
  ASSERT_TRUE(await(destroyed));
  ASSERT_TRUE(shutdown.came());
  EXPECT_FALSE((*shutdown.result)->forced);
  EXPECT_FALSE((*destroyed.result)->forced);
  EXPECT_EQ(worker->signals, std::vector<int>{SIGKILL});
  EXPECT_TRUE(changedTo(VmState::kShutoff, "destroyed"));

  Answer<StopOutcome> again;
  supervisor_->destroy("a", again.completion());
  ASSERT_TRUE(again.came());
  expectError(again.error(), VmErrorCode::kWrongState, "VM 'a' is not running");
}

TEST_F(SupervisorTest, ADestroyCommittedBeforeVmmdDiedIsNotACrash) {
  define("a", R"(, "on_crash": "restart", "restart_backoff": {"initial_ms": 1, "max_ms": 1})");
  startRunning("a");
  Answer<StopOutcome> destroyed;
  supervisor_->destroy("a", destroyed.completion());
  startVmmd();  // killed right after the SIGKILL: the worker is gone, its exit never seen
  supervisor_->recover();
  EXPECT_TRUE(reaches("a", VmState::kShutoff));
  EXPECT_TRUE(changedTo(VmState::kShutoff, "destroyed"));
  EXPECT_FALSE(runUntil([&] { return state("a") != VmState::kShutoff; }));  // and no restart follows
  EXPECT_EQ(workers_->processes().size(), 0u);
}

TEST_F(SupervisorTest, ADestroyWhoseSignalNeverWentIsFinishedByTheNextVmmd) {
  define("a");
  auto worker = startRunning("a");
  auto record = store_->runtime("a");
  ASSERT_TRUE(record.ok() && *record);
  RuntimeRecord committed = **record;
  committed.stop_intent = StopIntent::kDestroy;  // as destroy commits it before the SIGKILL
  ASSERT_TRUE(store_->saveRuntime(committed).ok());
  startVmmd();
  auto survivor = workers_->addSurvivor(*worker, "running");
  supervisor_->recover();
  EXPECT_TRUE(reaches("a", VmState::kShutoff));
  EXPECT_EQ(survivor->signals, std::vector<int>{SIGKILL});
  EXPECT_TRUE(changedTo(VmState::kShutoff, "destroyed"));
}

TEST_F(SupervisorTest, AShutdownDeadlineSurvivesAVmmdRestart) {
  auto survivor = restartDuringShutdown(1, false);
  // A vm-shutdown now joins the recovered one, which ends at its committed deadline (1 s after
  // the first request), not never.
  Answer<StopOutcome> second;
  supervisor_->shutdown("a", 60, false, ShutdownMode::kAcpi, second.completion());
  ASSERT_TRUE(await(second));
  expectError(second.error(), VmErrorCode::kTimedOut, "VM 'a' did not power off within 1 s (use force to destroy it)");
  EXPECT_EQ(state("a"), VmState::kRunning);
  EXPECT_TRUE(survivor->signals.empty());
}

TEST_F(SupervisorTest, AForcedShutdownDeadlineSurvivesAVmmdRestart) {
  auto survivor = restartDuringShutdown(1, true);
  EXPECT_TRUE(reaches("a", VmState::kShutoff));
  EXPECT_EQ(survivor->signals, std::vector<int>{SIGKILL});
  EXPECT_TRUE(changedTo(VmState::kShutoff, "destroyed after the shutdown timeout"));
}

// vmmd killed between the spawn and the commit of the worker's pid: the record says "starting"
// without a pid, and the worker holds the VM's pidfile.
TEST_F(SupervisorTest, AWorkerWhosePidWasNeverCommittedIsAdoptedThroughItsPidfile) {
  define("a");
  auto worker = startRunning("a");
  forgetWorker("a", VmState::kStarting);
  startVmmd();
  auto survivor = workers_->addSurvivor(*worker, "prelaunch");
  supervisor_->recover();
  EXPECT_TRUE(reaches("a", VmState::kRunning));
  EXPECT_TRUE(survivor->signals.empty());
  EXPECT_EQ(survivor->commands, (std::vector<std::string>{"query-status", "cont"}));
  EXPECT_EQ((*store_->runtime("a"))->pid, worker->pid);
}

TEST_F(SupervisorTest, APidfileHolderThatMustNotRunIsKilled) {
  define("a");
  define("b");
  auto a = startRunning("a");
  auto b = startRunning("b");
  // "a": shut off as far as the store knows. "b": starting, but its pidfile is held by a process
  // with another VM's -uuid.
  forgetWorker("a", VmState::kShutoff);
  forgetWorker("b", VmState::kStarting);
  FakeProcess stranger = *b;
  auto uuid = std::find(stranger.args.begin(), stranger.args.end(), "-uuid");
  ASSERT_NE(uuid, stranger.args.end());
  *(uuid + 1) = "00000000-0000-4000-8000-000000000000";
  startVmmd();
  auto survivor_a = workers_->addSurvivor(*a, "running");
  auto survivor_b = workers_->addSurvivor(stranger, "running");
  supervisor_->recover();
  EXPECT_EQ(survivor_a->signals, std::vector<int>{SIGKILL});
  EXPECT_EQ(survivor_b->signals, std::vector<int>{SIGKILL});
  EXPECT_EQ(state("a"), VmState::kShutoff);
  EXPECT_EQ(state("b"), VmState::kShutoff);
  EXPECT_TRUE(changedTo(VmState::kShutoff, "start interrupted by a vmmd restart"));
}

TEST_F(SupervisorTest, AWorkerStartedThroughAWrapperIsReattached) {
  define("a");
  workers_->script.execs = "/usr/lib/vmmd/vmm";  // --vmm names a script that execs the worker
  auto worker = startRunning("a");
  startVmmd();
  auto survivor = workers_->addSurvivor(*worker, "running");
  supervisor_->recover();
  ASSERT_TRUE(runUntil([&] { return !survivor->commands.empty(); }));
  EXPECT_EQ(survivor->commands, std::vector<std::string>{"query-status"});
  EXPECT_EQ(state("a"), VmState::kRunning);
  EXPECT_TRUE(survivor->signals.empty());
}

// pid and start time repeat across reboots; another binary, or another VM's worker, can hold the pid.
TEST_F(SupervisorTest, ReattachRefusesAnotherBootAnotherBinaryOrAnotherUuid) {
  define("boot", R"(, "on_crash": "preserve")");
  define("exe", R"(, "on_crash": "preserve")");
  define("uuid", R"(, "on_crash": "preserve")");
  auto boot = startRunning("boot");
  auto exe = startRunning("exe");
  auto uuid = startRunning("uuid");
  boot_id_ = "boot-2";  // the machine rebooted
  startVmmd();
  // Not holding the pidfiles: unrelated processes that happen to match the pid and start time.
  FakeProcess other_boot = *boot, other_exe = *exe, other_uuid = *uuid;
  for (FakeProcess* p : {&other_boot, &other_exe, &other_uuid}) p->holds_pidfile = false;
  other_exe.exe = "/usr/bin/sleep";
  *(std::find(other_uuid.args.begin(), other_uuid.args.end(), "-uuid") + 1) = "00000000-0000-4000-8000-000000000000";
  std::vector<std::shared_ptr<FakeProcess>> survivors = {workers_->addSurvivor(other_boot, "running"),
                                                         workers_->addSurvivor(other_exe, "running"),
                                                         workers_->addSurvivor(other_uuid, "running")};
  // Only "boot" differs in boot id: the others were recorded in boot-1 too, so give them this one.
  for (const std::string name : {"exe", "uuid"}) {
    RuntimeRecord r = **store_->runtime(name);
    r.boot_id = "boot-2";
    ASSERT_TRUE(store_->saveRuntime(r).ok());
  }
  supervisor_->recover();
  for (const std::string name : {"boot", "exe", "uuid"}) {
    EXPECT_EQ(state(name), VmState::kCrashed) << name;
  }
  for (const auto& survivor : survivors) {
    EXPECT_TRUE(survivor->signals.empty());
    EXPECT_TRUE(survivor->commands.empty());
  }
}

// --- the QMP connection ---

TEST_F(SupervisorTest, ALostQmpConnectionIsMadeAgainWithBackoff) {
  define("a");
  auto worker = startRunning("a");
  worker->refuse_connects = 3;  // 100, 200, 400 ms apart
  int connects_before = worker->connects;
  auto lost = std::chrono::steady_clock::now();
  workers_->dropLink(worker);  // the worker dropped vmmd (its backlog past the limit) and runs on
  ASSERT_TRUE(runUntil([&] { return worker->link == nullptr; }));
  Answer<Done> paused;
  supervisor_->pause("a", paused.completion());
  ASSERT_TRUE(await(paused));
  EXPECT_TRUE(paused.result->ok()) << paused.error().message;
  EXPECT_EQ(worker->connects - connects_before, 4);
  EXPECT_GE(std::chrono::steady_clock::now() - lost, std::chrono::milliseconds(100 + 200 + 400 + 800));
  EXPECT_EQ(state("a"), VmState::kPaused);
}

TEST_F(SupervisorTest, ARequestTheWorkerNeverAnswersTimesOut) {
  request_timeout_ms_ = 200;
  startVmmd();
  define("a");
  auto worker = startRunning("a");
  worker->script.answers = false;  // wedged: takes commands, never replies
  Answer<Done> paused;
  supervisor_->pause("a", paused.completion());
  ASSERT_TRUE(await(paused));
  expectError(paused.error(), VmErrorCode::kWorkerFailed, "VM 'a': worker did not answer: no answer to 'stop' within 200 ms");
  Answer<qmp::Json> forwarded;
  supervisor_->forward("a", "query-status", nullptr, forwarded.completion());
  ASSERT_TRUE(await(forwarded));
  EXPECT_EQ(forwarded.error().code, VmErrorCode::kWorkerFailed);
}

TEST_F(SupervisorTest, AWorkerThatGreetsButNeverAnswersFailsItsStartAfterTheRequestTimeout) {
  request_timeout_ms_ = 200;
  startVmmd();
  define("a");
  workers_->script.answers = false;
  Answer<Done> started;
  supervisor_->start("a", started.completion());
  ASSERT_TRUE(await(started));
  EXPECT_EQ(started.error().code, VmErrorCode::kWorkerFailed);
  EXPECT_EQ(started.error().message, "query-status: no answer to 'query-status' within 200 ms");
  EXPECT_EQ(workers_->last()->signals, std::vector<int>{SIGKILL});
  EXPECT_TRUE(reaches("a", VmState::kShutoff));
}

// --- pause, resume, reboot, pass-through ---

TEST_F(SupervisorTest, PauseAndResumeFollowTheWorker) {
  define("a");
  startRunning("a");
  Answer<Done> paused, paused_again, resumed, resumed_again;
  supervisor_->pause("a", paused.completion());
  ASSERT_TRUE(await(paused));
  EXPECT_EQ(state("a"), VmState::kPaused);
  supervisor_->pause("a", paused_again.completion());
  ASSERT_TRUE(paused_again.came());
  EXPECT_EQ(paused_again.error().message, "VM 'a' is already paused");
  supervisor_->resume("a", resumed.completion());
  ASSERT_TRUE(await(resumed));
  EXPECT_EQ(state("a"), VmState::kRunning);
  supervisor_->resume("a", resumed_again.completion());
  ASSERT_TRUE(resumed_again.came());
  expectError(resumed_again.error(), VmErrorCode::kWrongState, "VM 'a' is not paused");
}

TEST_F(SupervisorTest, AStopEventFromTheWorkerPausesTheVm) {
  define("a");
  auto worker = startRunning("a");
  workers_->emit(worker, "STOP");
  EXPECT_TRUE(reaches("a", VmState::kPaused));
  workers_->emit(worker, "RESUME");
  EXPECT_TRUE(reaches("a", VmState::kRunning));
}

TEST_F(SupervisorTest, RebootResetsTheGuestAndRecordsIt) {
  define("a");
  auto worker = startRunning("a");
  Answer<Done> rebooted;
  supervisor_->reboot("a", rebooted.completion());
  ASSERT_TRUE(await(rebooted));
  EXPECT_TRUE(rebooted.result->ok());
  EXPECT_EQ(worker->commands.back(), "system_reset");
  EXPECT_TRUE(changedTo(VmState::kRunning, "reset"));
}

TEST_F(SupervisorTest, ForwardPassesTheWorkersOwnErrorClassOn) {
  define("a");
  startRunning("a");
  Answer<qmp::Json> forwarded;
  supervisor_->forward("a", "no-such-command", nullptr, forwarded.completion());
  ASSERT_TRUE(await(forwarded));
  ASSERT_FALSE(forwarded.result->ok());
  EXPECT_EQ(forwarded.error().code, VmErrorCode::kWorkerRefused);
  EXPECT_EQ(forwarded.error().remote_class, "CommandNotFound");
}

TEST_F(SupervisorTest, AQuitThroughTheWorkersQmpIsAStopNotACrash) {
  define("a", R"(, "on_crash": "preserve")");
  startRunning("a");
  Answer<qmp::Json> quit;
  supervisor_->forward("a", "quit", nullptr, quit.completion());
  ASSERT_TRUE(await(quit));
  EXPECT_TRUE(reaches("a", VmState::kShutoff));
  EXPECT_TRUE(changedTo(VmState::kShutoff, "worker quit on request"));
}

TEST_F(SupervisorTest, AWorkerThatStopsAnsweringFailsTheCommandWhenItDies) {
  define("a", R"(, "on_crash": "destroy")");
  auto worker = startRunning("a");
  worker->script.answers = false;
  Answer<Done> paused;
  supervisor_->pause("a", paused.completion());
  workers_->exit(worker, WorkerExit{std::nullopt, SIGSEGV});
  ASSERT_TRUE(await(paused));
  EXPECT_EQ(paused.error().code, VmErrorCode::kWorkerFailed);
  EXPECT_NE(paused.error().message.find("VM 'a': worker did not answer"), std::string::npos) << paused.error().message;
}

// --- the worker's end ---

TEST_F(SupervisorTest, AGuestPowerOffFollowsOnPoweroff) {
  define("a");
  auto worker = startRunning("a");
  workers_->emit(worker, "SHUTDOWN", R"({"guest": true})");
  workers_->exit(worker, WorkerExit{0, std::nullopt});
  EXPECT_TRUE(reaches("a", VmState::kShutoff));
  EXPECT_TRUE(changedTo(VmState::kShutoff, "guest powered off"));

  changes_.clear();
  define("b", R"(, "on_poweroff": "restart")");
  auto first = startRunning("b");
  workers_->exit(first, WorkerExit{0, std::nullopt});  // no SHUTDOWN event seen: a clean exit counts
  ASSERT_TRUE(runUntil([&] { return workers_->last() != first && state("b") == VmState::kRunning; }));
  EXPECT_FALSE(changedTo(VmState::kShutoff, "guest powered off"));
}

TEST_F(SupervisorTest, ACrashFollowsOnCrash) {
  define("d", R"(, "on_crash": "destroy")");
  workers_->exit(startRunning("d"), WorkerExit{std::nullopt, SIGSEGV});
  EXPECT_TRUE(reaches("d", VmState::kShutoff));
  EXPECT_TRUE(changedTo(VmState::kShutoff, "crashed (killed by signal 11 (Segmentation fault)); policy destroy"));

  define("p", R"(, "on_crash": "preserve")");
  workers_->exit(startRunning("p"), WorkerExit{std::nullopt, SIGSEGV});
  EXPECT_TRUE(reaches("p", VmState::kCrashed));
  auto events = store_->events(EventQuery{"p"});
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(std::any_of(events->begin(), events->end(), [](const EventRecord& e) { return e.kind == "crash"; }));
}

// A worker that its seccomp filter killed (vmm -sandbox on) wrote which call as it died; the crash
// reason and the crash event carry that line.
TEST_F(SupervisorTest, ASeccompKillNamesTheForbiddenCall) {
  define("s", R"(, "on_crash": "preserve")");
  const std::string violation = "seccomp: vCPU thread made a forbidden system call 59 (execve)";
  workers_->script.log_line = "vmm: " + violation;
  workers_->exit(startRunning("s"), WorkerExit{std::nullopt, SIGSYS});
  EXPECT_TRUE(reaches("s", VmState::kCrashed));
  EXPECT_TRUE(changedTo(VmState::kCrashed, "crashed (killed by signal 31 (Bad system call) after " + violation + "); policy preserve"));
  auto events = store_->events(EventQuery{"s"});
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(std::any_of(events->begin(), events->end(), [&](const EventRecord& e) {
    return e.kind == "crash" && e.detail.find(violation) != std::string::npos;
  }));
}

TEST_F(SupervisorTest, ACrashedVmIsRestartedWithBackoffUntilItGivesUp) {
  define("a", R"(, "on_crash": "restart", "restart_backoff": {"initial_ms": 1, "max_ms": 2, "max_attempts": 2})");
  auto first = startRunning("a");
  workers_->exit(first, WorkerExit{1, std::nullopt});
  ASSERT_TRUE(runUntil([&] { return workers_->processes().size() == 2 && state("a") == VmState::kRunning; }));
  EXPECT_EQ(supervisor_->info("a")->restart_count, 1);
  workers_->exit(workers_->last(), WorkerExit{1, std::nullopt});
  ASSERT_TRUE(runUntil([&] { return workers_->processes().size() == 3 && state("a") == VmState::kRunning; }));
  workers_->exit(workers_->last(), WorkerExit{1, std::nullopt});
  EXPECT_TRUE(reaches("a", VmState::kCrashed));
  EXPECT_TRUE(changedTo(VmState::kCrashed, "crashed (exited with status 1); gave up after 2 restarts"));
  EXPECT_EQ(workers_->processes().size(), 3u);
}

TEST_F(SupervisorTest, DestroyCancelsAPendingRestart) {
  define("a", R"(, "on_crash": "restart", "restart_backoff": {"initial_ms": 3600000, "max_ms": 3600000})");
  workers_->exit(startRunning("a"), WorkerExit{1, std::nullopt});
  ASSERT_TRUE(reaches("a", VmState::kCrashed));
  Answer<StopOutcome> destroyed;
  supervisor_->destroy("a", destroyed.completion());
  ASSERT_TRUE(destroyed.came());
  EXPECT_FALSE((*destroyed.result)->forced);
  EXPECT_EQ(state("a"), VmState::kShutoff);
  EXPECT_TRUE(changedTo(VmState::kShutoff, "destroyed (pending restart cancelled)"));
}

TEST_F(SupervisorTest, StartDuringARestartBackoffStartsAtOnce) {
  define("a", R"(, "on_crash": "restart", "restart_backoff": {"initial_ms": 3600000, "max_ms": 3600000})");
  workers_->exit(startRunning("a"), WorkerExit{1, std::nullopt});
  ASSERT_TRUE(reaches("a", VmState::kCrashed));
  startRunning("a");
  EXPECT_EQ(workers_->processes().size(), 2u);
}

// --- a restarted vmmd ---

TEST_F(SupervisorTest, ARestartedVmmdReattachesToItsWorkers) {
  define("a");
  auto worker = startRunning("a");
  startVmmd();  // the old supervisor lets go of its workers without killing them
  EXPECT_TRUE(worker->signals.empty());
  auto survivor = workers_->addSurvivor(*worker, "running");
  supervisor_->recover();
  EXPECT_TRUE(reaches("a", VmState::kRunning));
  ASSERT_TRUE(runUntil([&] { return !survivor->commands.empty(); }));
  EXPECT_EQ(survivor->commands, std::vector<std::string>{"query-status"});  // no cont: it was running
  Answer<Done> paused;
  supervisor_->pause("a", paused.completion());
  ASSERT_TRUE(await(paused));
  EXPECT_TRUE(paused.result->ok());
  EXPECT_EQ(state("a"), VmState::kPaused);
}

TEST_F(SupervisorTest, AWorkerThatDiedWhileVmmdWasDownIsACrash) {
  define("a", R"(, "on_crash": "preserve")");
  startRunning("a");
  startVmmd();  // and no survivor: the worker is gone
  supervisor_->recover();
  EXPECT_EQ(state("a"), VmState::kCrashed);
  EXPECT_TRUE(changedTo(VmState::kCrashed, "crashed (died while vmmd was down); policy preserve"));
}

TEST_F(SupervisorTest, AShutdownInProgressWhenVmmdStoppedCompletes) {
  auto survivor = restartDuringShutdown(60, false);
  ASSERT_TRUE(runUntil([&] { return !survivor->commands.empty(); }));
  EXPECT_EQ(state("a"), VmState::kShuttingDown);
  workers_->exit(survivor, WorkerExit{});
  EXPECT_TRUE(reaches("a", VmState::kShutoff));
  EXPECT_TRUE(changedTo(VmState::kShutoff, "shut down"));
}

TEST_F(SupervisorTest, ARestartPendingWhenVmmdStoppedIsResumed) {
  define("a", R"(, "on_crash": "restart", "restart_backoff": {"initial_ms": 1, "max_ms": 1})");
  RuntimeRecord record;
  record.name = "a";
  record.state = VmState::kCrashed;
  record.started_us = unixTimeUs();
  record.restart_count = 1;
  ASSERT_TRUE(store_->saveRuntime(record).ok());
  supervisor_->recover();
  EXPECT_TRUE(reaches("a", VmState::kRunning));
  EXPECT_EQ(workers_->processes().size(), 1u);
}

TEST_F(SupervisorTest, AutostartStartsOnlyOnTheFirstRecoverSinceBoot) {
  define("a", R"(, "autostart": true)");
  supervisor_->recover();
  EXPECT_TRUE(reaches("a", VmState::kRunning));
  Answer<StopOutcome> destroyed;
  supervisor_->destroy("a", destroyed.completion());
  ASSERT_TRUE(await(destroyed));
  startVmmd();
  supervisor_->recover();
  EXPECT_EQ(state("a"), VmState::kShutoff);
  EXPECT_EQ(workers_->processes().size(), 0u);
}

TEST_F(SupervisorTest, AReattachedWorkerThatWillNotTalkIsLeftAloneAndCommandsFail) {
  define("a");
  auto worker = startRunning("a");
  startVmmd();
  auto survivor = workers_->addSurvivor(*worker, "running");
  survivor->script.greets = false;
  supervisor_->recover();
  Answer<Done> paused;
  supervisor_->pause("a", paused.completion());
  ASSERT_TRUE(await(paused));
  EXPECT_EQ(paused.error().code, VmErrorCode::kWorkerFailed);
  EXPECT_NE(paused.error().message.find("did not answer on its QMP socket"), std::string::npos) << paused.error().message;
  EXPECT_TRUE(survivor->signals.empty());
  Answer<Done> again;
  supervisor_->pause("a", again.completion());
  ASSERT_TRUE(again.came());
  EXPECT_EQ(again.error().message, "VM 'a': no QMP connection to its worker");
}

// A root vmmd gives each VM's worker its own uid/gid; a restarted vmmd learns the uid of every
// worker it re-attaches to and hands it to no other VM.
TEST_F(SupervisorTest, EachWorkerRunsAsItsOwnIdAndReattachedWorkersKeepTheirs) {
  worker_ids_ = WorkerIdRange{1879048192, 2};
  startVmmd();
  define("a");
  define("b");
  auto a = startRunning("a");
  auto b = startRunning("b");
  EXPECT_EQ(a->uid, 1879048192u);
  EXPECT_EQ(b->uid, 1879048193u);
  Answer<StopOutcome> destroyed;
  supervisor_->destroy("b", destroyed.completion());
  ASSERT_TRUE(await(destroyed));
  startVmmd();
  auto survivor = workers_->addSurvivor(*a, "running");
  supervisor_->recover();
  EXPECT_TRUE(reaches("a", VmState::kRunning));
  define("c");
  auto c = startRunning("c");
  EXPECT_EQ(c->uid, 1879048193u) << "the re-attached worker's uid is taken";
  define("d");
  Answer<Done> refused;
  supervisor_->start("d", refused.completion());
  ASSERT_TRUE(await(refused));
  ASSERT_TRUE(refused.result && !refused.result->ok());
  EXPECT_NE(refused.error().message.find("no free worker uid in 1879048192:2"), std::string::npos) << refused.error().message;
}

}  // namespace
}  // namespace vmmd::daemon
