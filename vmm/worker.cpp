#include "vmm/worker.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/log.h"
#include "qmp/unix_socket.h"
#include "vmm/backends/io_executor.h"
#include "vmm/backends/socket_port.h"
#include "vmm/backends/tap_backend.h"
#include "vmm/machine/device_factory.h"
#include "vmm/sandbox/sandbox.h"

namespace vmmd {

Worker::Worker(config::MachineConfig config, FdSets fd_sets) : config_(std::move(config)), fd_sets_(std::move(fd_sets)) {
  uv_loop_init(&loop_);
}

Worker::~Worker() {
  migration_.reset();
  drain_timer_.reset();
  if (machine_) machine_->powerOff();
  machine_.reset();
  monitor_.reset();
  quit_timer_.reset();
  fd_watches_.clear();
  chardevs_.clear();
  events_async_.reset();
  sigterm_.reset();
  sigint_.reset();
  sighup_.reset();
  // Let the loop finish closing every handle before it goes away.
  uv_run(&loop_, UV_RUN_NOWAIT);
  uv_loop_close(&loop_);
}

Status Worker::start() {
  auto async = std::make_unique<uv_async_t>();
  uv_async_init(&loop_, async.get(), [](uv_async_t* handle) { static_cast<Worker*>(handle->data)->drainEvents(); });
  events_async_.reset(async.release());
  events_async_->data = this;

  auto watch_signal = [&](UvHandle<uv_signal_t>& slot, int signal_number) {
    auto handle = std::make_unique<uv_signal_t>();
    uv_signal_init(&loop_, handle.get());
    slot.reset(handle.release());
    slot->data = this;
    uv_signal_start(
        slot.get(),
        [](uv_signal_t* h, int signum) {
          auto* self = static_cast<Worker*>(h->data);
          if (self->monitor_) self->monitor_->causeEvent("SHUTDOWN", false, "host-signal");
          self->quit(0, "terminating on signal " + std::to_string(signum));
        },
        signal_number);
    uv_unref(reinterpret_cast<uv_handle_t*>(slot.get()));
  };
  watch_signal(sigterm_, SIGTERM);
  watch_signal(sigint_, SIGINT);
  watch_signal(sighup_, SIGHUP);
  std::signal(SIGPIPE, SIG_IGN);

  // Monitors and virtio-serial ports own their chardevs' sockets; every other chardev is made here.
  for (const auto& chardev : config_.chardevs) {
    bool is_monitor = false;
    for (const auto& monitor : config_.monitors) is_monitor |= monitor.chardev_id == chardev.id;
    for (const auto& device : config_.devices) {
      auto it = device.properties.find("chardev");
      is_monitor |= isSerialPort(device) && it != device.properties.end() && it->second == chardev.id;
    }
    if (is_monitor) continue;
    auto created = createChardev(&loop_, chardev, [this] { quit(0, "quit from the console (Ctrl-A x)"); }, fd_sets_);
    if (!created) return created.error();
    chardevs_[chardev.id] = std::move(*created);
  }
  // QMP monitors listen before the machine exists, so a client can connect as early as possible.
  migration_ = std::make_unique<migration::MigrationManager>(*this);
  monitor_ = std::make_unique<QmpMonitor>(&loop_, *this);
  for (const auto& monitor : config_.monitors) {
    const config::ChardevConfig* chardev = config_.findChardev(monitor.chardev_id);
    if (!chardev || chardev->backend != config::ChardevConfig::Backend::Socket) {
      return Error("monitor on chardev '" + monitor.chardev_id + "': only unix socket monitors are supported");
    }
    socket_paths_[chardev->id] = chardev->fd >= 0 ? qmp::boundPath(chardev->fd) : chardev->path;
    if (auto st = monitor_->listen(*chardev, monitor.pretty); !st) return st;
  }

  if (!config_.serials.empty()) console_ = chardevs_.at(config_.serials[0].chardev_id).get();
  io_executor_ = uvIoExecutor(&loop_);
  // Every file and socket the command line names is checked here, before /dev/kvm is opened.
  log::debug("building the machine");
  auto machine = Machine::create(config_, *this);
  if (!machine) return machine.error();
  machine_ = std::move(*machine);
  log::debug("machine built: guest RAM mapped, kernel opened, devices created, /dev/kvm open");
  // Every file the command line names is open now: from here on the process is confined.
  if (config_.sandbox) {
    if (auto st = enterSandbox(); !st) return st;
  }
  if (console_) console_->setReceiver([this](std::span<const uint8_t> bytes) { machine_->serial().receive(bytes); });

  // server=on,wait=on: like QEMU, start the guest only once a client is attached (and only once
  // the command line is known to be good, so bad input never waits for a client).
  for (const auto& chardev : config_.chardevs) {
    auto it = chardevs_.find(chardev.id);
    if (it == chardevs_.end() || chardev.backend != config::ChardevConfig::Backend::Socket || !chardev.wait) continue;
    log::info("waiting for connection on: " + it->second->filename());
    while (!it->second->connected() && !exit_status_) uv_run(&loop_, UV_RUN_ONCE);
    if (exit_status_) return Error("interrupted while waiting for a connection on chardev '" + chardev.id + "'");
  }

  if (!config_.incoming.empty()) {
    // A destination: the machine is built with its vCPUs parked, and runs only once the stream
    // has loaded (unless -S). The boot setup powerOn writes is overwritten by the stream.
    if (auto st = machine_->powerOn(true); !st) return st;
    state_ = RunState::Inmigrate;
    autostart_ = !config_.start_paused;
    if (config_.incoming != "defer") {
      if (auto st = migration_->startIncoming(config_.incoming); !st) return st.error().withContext("-incoming " + config_.incoming);
    }
    return sandbox::confineThread(sandbox::Role::Main);
  }
  if (auto st = machine_->powerOn(config_.start_paused); !st) return st;
  state_ = config_.start_paused ? RunState::Prelaunch : RunState::Running;
  // Last, once the vCPU and I/O pool threads exist: they took the process filter from here.
  return sandbox::confineThread(sandbox::Role::Main);
}

Status Worker::enterSandbox() {
  if (auto st = sandbox::prepare(); !st) return st;
  if (auto st = sandbox::enterProcess(); !st) return st;
  // Pool threads start now, while the main thread still has the process filter they inherit.
  if (auto st = startConfinedIoPool(&loop_); !st) return st;
  log::debug("seccomp filters installed (-sandbox on)");
  return {};
}

int Worker::run() {
  while (!exit_status_) {
    uv_run(&loop_, UV_RUN_ONCE);
  }
  writeExitStats();
  return *exit_status_;
}

// VMM_EXIT_STATS=FILE: the VM-exit counters, in `info stats` shape, when the worker exits (a
// debug aid for boot profiles, like QEMU's -trace; query-stats gives the same while it runs).
void Worker::writeExitStats() const {
  const char* path = std::getenv("VMM_EXIT_STATS");
  if (!path || !*path || !machine_) return;
  std::string text = formatExitStats(machine_->exitStats(), kExitStatsTopAddresses);
  std::FILE* file = std::fopen(path, "we");
  if (!file || std::fwrite(text.data(), 1, text.size(), file) != text.size()) {
    log::warning(std::string("VMM_EXIT_STATS: cannot write ") + path + ": " + std::strerror(errno));
  }
  if (file) std::fclose(file);
}

void Worker::powerRequest(PowerRequest request) { post({EventKind::Power, request, {}}); }

void Worker::vcpuFailed(const std::string& report) { post({EventKind::Fatal, PowerRequest::PowerOff, report}); }

void Worker::serialOutput(std::span<const uint8_t> bytes) {
  if (console_) console_->write(bytes);
}

void Worker::runIo(std::function<void()> work, std::function<void()> done) { io_executor_(std::move(work), std::move(done)); }

void Worker::blockIoError(const std::string& device, const std::string& operation, const std::string& reason) {
  qmp::Json data = qmp::jsonObject();
  auto& alloc = data.GetAllocator();
  data.AddMember("device", qmp::jsonString(device, alloc), alloc);
  data.AddMember("node-name", qmp::jsonString(device, alloc), alloc);
  data.AddMember("operation", qmp::jsonString(operation, alloc), alloc);
  data.AddMember("action", "report", alloc);
  data.AddMember("nospace", reason.find("No space") != std::string::npos, alloc);
  data.AddMember("reason", qmp::jsonString(reason, alloc), alloc);
  if (monitor_) monitor_->event("BLOCK_IO_ERROR", &data);
}

void Worker::portChanged(const std::string& port_id, bool open) {
  qmp::Json data = qmp::jsonObject();
  data.AddMember("id", qmp::jsonString(port_id, data.GetAllocator()), data.GetAllocator());
  data.AddMember("open", open, data.GetAllocator());
  if (monitor_) monitor_->event("VSERPORT_CHANGE", &data);
}

Result<std::unique_ptr<virtio::PortBackend>> Worker::openPort(const std::string& id) {
  const config::ChardevConfig* chardev = config_.findChardev(id);
  if (!chardev) return Error("chardev '" + id + "' not found");
  if (chardev->backend != config::ChardevConfig::Backend::Socket) return Error("chardev '" + id + "': virtio-serial ports need a unix socket chardev");
  auto port = SocketPort::listen(&loop_, *chardev);
  if (!port) return port.error();
  socket_paths_[id] = (*port)->path();  // where it is bound, also when the socket was passed as fd=N
  return std::unique_ptr<virtio::PortBackend>(std::move(*port));
}

Result<std::unique_ptr<virtio::NetBackend>> Worker::openNetdev(const config::NetdevConfig& netdev) {
  auto tap = netdev.fd >= 0 ? net::Tap::adopt(netdev.fd) : net::Tap::open(netdev.ifname);
  if (!tap) return tap.error().withContext("netdev " + netdev.id);
  auto backend = TapBackend::create(&loop_, std::move(*tap));
  if (!backend) return backend.error();
  return std::unique_ptr<virtio::NetBackend>(std::move(*backend));
}

void Worker::watchFd(int fd, std::function<void()> on_readable) {
  auto watch = std::make_unique<FdWatch>();
  watch->on_readable = std::move(on_readable);
  auto poll = std::make_unique<uv_poll_t>();
  if (uv_poll_init(&loop_, poll.get(), fd) != 0) return;
  watch->poll.reset(poll.release());
  watch->poll->data = watch.get();
  uv_poll_start(watch->poll.get(), UV_READABLE, [](uv_poll_t* handle, int status, int) {
    if (status == 0) static_cast<FdWatch*>(handle->data)->on_readable();
  });
  fd_watches_.push_back(std::move(watch));
}

void Worker::post(Event event) {
  {
    std::lock_guard lock(events_mutex_);
    events_.push_back(std::move(event));
  }
  uv_async_send(events_async_.get());
}

void Worker::drainEvents() {
  std::deque<Event> pending;
  {
    std::lock_guard lock(events_mutex_);
    pending.swap(events_);
  }
  for (auto& event : pending) {
    if (exit_status_) return;
    if (event.kind == EventKind::Task) {
      event.task();
      continue;
    }
    if (event.kind == EventKind::Fatal) {
      log::error(event.text);
      state_ = RunState::InternalError;
      quit(2, "stopping after a fatal vCPU error");
      return;
    }
    handlePower(event.power);
  }
}

void Worker::handlePower(PowerRequest request) {
  if (state_ == RunState::Shutdown) return;  // already off; late requests from other vCPUs
  if (request == PowerRequest::PowerOff) {
    monitor_->causeEvent("SHUTDOWN", true, "guest-shutdown");
    if (config_.no_shutdown) {
      // As QEMU: the guest is off but the process stays, paused, until reset or quit.
      machine_->pause();
      state_ = RunState::Shutdown;
      monitor_->event("STOP");
      return;
    }
    quit(0, "guest powered off (ACPI S5)");
    return;
  }
  if (config_.no_reboot) {
    monitor_->causeEvent("SHUTDOWN", true, "guest-reset");
    quit(0, "guest requested a reset; exiting because of -no-reboot");
    return;
  }
  monitor_->causeEvent("RESET", true, "guest-reset");
  if (auto st = machine_->reset(false); !st) {
    log::error("reset failed: " + st.error().message());
    quit(1, "could not reset the machine");
    return;
  }
  state_ = RunState::Running;
}

void Worker::stop() {
  if (state_ == RunState::Inmigrate) autostart_ = false;  // QEMU: the destination stays paused
  if (state_ != RunState::Running) return;  // QEMU: nothing happens, no event
  machine_->pause();
  state_ = RunState::Paused;
  monitor_->event("STOP");
}

Status Worker::cont() {
  if (state_ == RunState::Shutdown) return Error("Resetting the Virtual Machine is required");
  if (state_ == RunState::InternalError) return Error("the machine stopped after an internal error");
  if (state_ == RunState::Inmigrate) {
    autostart_ = true;  // QEMU: the destination runs once the stream has loaded
    return {};
  }
  if (state_ == RunState::FinishMigrate) return Error("the guest is stopping for the end of a migration");
  if (machine_->disksReleased()) {  // postmigrate: the disks went to the destination (QEMU: activate them)
    if (auto st = machine_->acquireDisks(); !st) return st.error().withContext("Could not reactivate the disks");
  }
  if (device_io_stopped_) {  // cont after a completed migration (postmigrate), as QEMU allows
    machine_->resumeDeviceIo();
    device_io_stopped_ = false;
  }
  if (state_ == RunState::Running) {
    monitor_->event("STOP");  // QEMU 7.2 announces a stop and a resume even when already running
    monitor_->event("RESUME");
    return {};
  }
  machine_->resume();
  state_ = RunState::Running;
  monitor_->event("RESUME");
  return {};
}

void Worker::powerButton() {
  monitor_->event("POWERDOWN");
  machine_->pressPowerButton();
}

Status Worker::systemReset() {
  bool paused = state_ == RunState::Paused || state_ == RunState::Prelaunch || state_ == RunState::Shutdown;
  monitor_->causeEvent("RESET", false, "host-qmp-system-reset");
  if (auto st = machine_->reset(paused); !st) return st;
  if (state_ == RunState::Shutdown) state_ = RunState::Paused;
  return {};
}

void Worker::requestQuit() {
  monitor_->causeEvent("SHUTDOWN", false, "host-qmp-quit");
  // Next loop turn: the {"return": {}} is written before the sockets close.
  quitLater(0, 0, "quit requested over QMP");
}

void Worker::quitLater(int exit_status, uint64_t delay_ms, std::string why) {
  if (quit_timer_) return;
  auto timer = std::make_unique<uv_timer_t>();
  uv_timer_init(&loop_, timer.get());
  quit_timer_.reset(timer.release());
  quit_timer_->data = this;
  quit_status_ = exit_status;
  quit_why_ = std::move(why);
  uv_timer_start(
      quit_timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<Worker*>(t->data);
        self->quit(self->quit_status_, self->quit_why_);
      },
      delay_ms, 0);
}

std::vector<ChardevInfo> Worker::chardevInfo() const {
  std::vector<ChardevInfo> out;
  for (const auto& chardev : config_.chardevs) {
    auto it = chardevs_.find(chardev.id);
    if (it != chardevs_.end()) {
      out.push_back({chardev.id, it->second->filename(), true});
    } else {
      auto bound = socket_paths_.find(chardev.id);
      const std::string& path = bound != socket_paths_.end() ? bound->second : chardev.path;
      out.push_back({chardev.id, "unix:" + path + ",server=on", true});  // a monitor's or port's socket
    }
  }
  return out;
}

void Worker::quit(int exit_status, const std::string& why) {
  if (exit_status_) return;
  log::info(why);
  exit_status_ = exit_status;
  if (migration_) migration_->shutdown();
  if (machine_) machine_->powerOff();
  if (monitor_) monitor_->close();
  uv_stop(&loop_);
}

void Worker::runOnLoop(std::function<void()> task) { post({EventKind::Task, PowerRequest::PowerOff, {}, std::move(task)}); }

void Worker::migrationEvent(std::string_view name, const qmp::JsonValue& data) {
  if (monitor_) monitor_->event(name, &data);
}

void Worker::stopForCompletion(std::function<void(Result<MachineState>)> done) {
  if (state_ == RunState::Shutdown || state_ == RunState::InternalError) {
    done(Error(std::string("the guest is in state ") + runStateName(state_)));
    return;
  }
  state_before_stop_ = state_;
  machine_->pause();
  state_ = RunState::FinishMigrate;
  if (state_before_stop_ == RunState::Running) monitor_->event("STOP");
  machine_->stopDeviceIo();
  device_io_stopped_ = true;
  stop_done_ = std::move(done);
  abandon_stop_ = false;
  finishStopWhenDrained();
}

// Block completions run on this loop: look again each millisecond until none is in flight.
void Worker::finishStopWhenDrained() {
  if (machine_->requestsInFlight() > 0 && !abandon_stop_) {
    if (!drain_timer_) {
      auto timer = std::make_unique<uv_timer_t>();
      uv_timer_init(&loop_, timer.get());
      drain_timer_.reset(timer.release());
      drain_timer_->data = this;
    }
    uv_timer_start(drain_timer_.get(), [](uv_timer_t* t) { static_cast<Worker*>(t->data)->finishStopWhenDrained(); }, 1, 0);
    return;
  }
  auto done = std::move(stop_done_);
  stop_done_ = nullptr;
  if (abandon_stop_) {  // the migration ended meanwhile (cancelled): nobody waits for the state
    resumeAfterMigration();
    return;
  }
  auto state = machine_->saveState();
  // The destination takes the disks over once it has the stream's end: before that the images
  // must hold everything this side wrote, and their locks must be free (QEMU inactivates them
  // at this point too).
  if (state) {
    if (auto released = machine_->releaseDisks(); !released) state = released.error().withContext("handing the disks over");
  }
  if (!state) resumeAfterMigration();
  done(std::move(state));
}

void Worker::resumeAfterMigration() {
  if (state_ != RunState::FinishMigrate) return;
  if (machine_->disksReleased()) {
    if (auto st = machine_->acquireDisks(); !st) {
      // Another process has the disks (a destination that took them over): running the guest
      // here too would corrupt them. It stays stopped, as QEMU's does.
      log::error("migration: the guest stays paused, its disks could not be taken back: " + st.error().message());
      state_ = RunState::Paused;
      return;
    }
  }
  if (device_io_stopped_) {
    machine_->resumeDeviceIo();
    device_io_stopped_ = false;
  }
  state_ = state_before_stop_;
  if (state_ == RunState::Running) {
    machine_->resume();
    monitor_->event("RESUME");
  }
}

void Worker::outgoingEnded(bool completed) {
  if (stop_done_) {  // still draining: give up on the stop once drained
    abandon_stop_ = true;
    return;
  }
  if (completed) {
    state_ = RunState::Postmigrate;  // the guest now runs on the destination; this one stays stopped
    return;
  }
  resumeAfterMigration();
}

Status Worker::incomingLoaded(const MachineState& state) {
  if (state_ != RunState::Inmigrate) return Error(std::string("the guest is in state ") + runStateName(state_));
  auto start = std::chrono::steady_clock::now();
  if (auto st = machine_->loadState(state); !st) return st;
  // The source has released the disks (before the stream's end): take their locks and read
  // their metadata as the source left it.
  if (auto st = machine_->acquireDisks(); !st) return st;
  log::debug("migration: machine state loaded in " +
             std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count()) +
             " us");
  if (autostart_) {
    machine_->resume();
    state_ = RunState::Running;
    monitor_->event("RESUME");
  } else {
    state_ = RunState::Paused;
  }
  return {};
}

void Worker::incomingFailed(const std::string& why) {
  // As QEMU: the destination reports why and exits with status 1; its guest never ran. The exit
  // waits one loop turn so the MIGRATION event and any reply in flight go out first.
  log::error(why);
  quitLater(1, 10, "load of migration failed");
}

}  // namespace vmmd
