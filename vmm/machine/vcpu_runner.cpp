#include "vmm/machine/vcpu_runner.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>

#include "base/hex.h"
#include "base/log.h"
#include "vmm/sandbox/sandbox.h"

namespace vmmd {
namespace {

constexpr int kKickSignal = SIGUSR1;  // as QEMU's SIG_IPI

}  // namespace

void VcpuControl::set(Target target) {
  std::lock_guard lock(mutex_);
  target_ = target;
  changed_.notify_all();
}

void VcpuControl::restart(Target target) {
  std::lock_guard lock(mutex_);
  target_ = target;
  parked_ = 0;
  changed_.notify_all();
}

VcpuControl::Target VcpuControl::target() const {
  std::lock_guard lock(mutex_);
  return target_;
}

VcpuControl::Target VcpuControl::parkWhilePaused(bool may_park) {
  std::unique_lock lock(mutex_);
  if (target_ != Target::Pause || !may_park) return target_;
  ++parked_;
  changed_.notify_all();
  changed_.wait(lock, [&] { return target_ != Target::Pause; });
  --parked_;
  return target_;
}

void VcpuControl::waitParked(size_t count) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return parked_ >= count || target_ != Target::Pause; });
}

bool VcpuControl::allParked(size_t count) const {
  std::lock_guard lock(mutex_);
  return target_ == Target::Pause && parked_ >= count;
}

void VcpuControl::threadExited() {
  std::lock_guard lock(mutex_);
  ++parked_;  // a vCPU that stopped for good counts as parked for a pause in progress
  changed_.notify_all();
}

VcpuRunner::VcpuRunner(kvm::Vcpu vcpu, const IoBus& pio, const IoBus& mmio, VcpuControl& control, VcpuExitHandlers handlers,
                       ExitStats& stats)
    : vcpu_(std::move(vcpu)), pio_(pio), mmio_(mmio), control_(control), handlers_(std::move(handlers)), stats_(stats) {}

VcpuRunner::~VcpuRunner() { join(); }

void VcpuRunner::installKickSignal() {
  struct sigaction action {};
  action.sa_handler = [](int) {};
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
  ::sigaction(kKickSignal, &action, nullptr);
}

void VcpuRunner::start() {
  running_ = true;
  thread_ = std::thread([this] {
    native_ = pthread_self();
    thread_id_ = static_cast<int>(::syscall(SYS_gettid));
    char name[16];
    std::snprintf(name, sizeof name, "CPU %u/KVM", vcpu_.id());  // QEMU's thread naming
    pthread_setname_np(pthread_self(), name);
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, kKickSignal);
    pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
    // Before the first KVM_RUN: from here the thread may only run the guest (-sandbox on).
    if (auto st = sandbox::confineThread(sandbox::Role::Vcpu); !st) {
      handlers_.fatal("vCPU " + std::to_string(vcpu_.id()) + ": " + st.error().message());
      running_ = false;
      control_.threadExited();
      return;
    }
    loop();
    running_ = false;
    control_.threadExited();
  });
}

void VcpuRunner::join() {
  if (thread_.joinable()) thread_.join();
}

void VcpuRunner::kick() {
  vcpu_.runState()->immediate_exit = 1;
  if (running_) {
    pthread_t native = native_.load();
    if (native) pthread_kill(native, kKickSignal);
  }
}

void VcpuRunner::loop() {
  kvm_run* run = vcpu_.runState();
  for (;;) {
    // Clear immediate_exit only after reading the target: a kick that lands after this read
    // sets it again and KVM_RUN returns at once.
    VcpuControl::Target target = control_.parkWhilePaused(!exit_to_complete_);
    if (target == VcpuControl::Target::Stop) return;
    if (target == VcpuControl::Target::Pause) {
      // Completes the I/O instruction and returns before the guest runs another one.
      run->immediate_exit = 1;
      (void)vcpu_.run();
      exit_to_complete_ = false;
      continue;
    }
    run->immediate_exit = 0;
    if (control_.target() != VcpuControl::Target::Run) continue;
    auto status = vcpu_.run();
    exit_to_complete_ = false;
    if (!status) {
      if (status.error().code() == EINTR) stats_.count(ExitReason::Intr);  // a kick
      if (status.error().code() == EINTR || status.error().code() == EAGAIN) continue;
      handlers_.fatal(describeState("KVM_RUN failed: " + status.error().message()));
      return;
    }
    exit_to_complete_ = run->exit_reason == KVM_EXIT_IO || run->exit_reason == KVM_EXIT_MMIO;
    if (!handleExit()) return;
  }
}

bool VcpuRunner::handleExit() {
  kvm_run* run = vcpu_.runState();
  switch (run->exit_reason) {
    case KVM_EXIT_IO: {
      stats_.countIo(run->io.port);
      uint8_t* data = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
      for (uint32_t i = 0; i < run->io.count; ++i) {
        std::span<uint8_t> chunk(data + i * run->io.size, run->io.size);
        if (run->io.direction == KVM_EXIT_IO_OUT) {
          pio_.write(run->io.port, chunk);
        } else {
          pio_.read(run->io.port, chunk);
        }
      }
      return true;
    }
    case KVM_EXIT_MMIO: {
      stats_.countMmio(run->mmio.phys_addr);
      std::span<uint8_t> data(run->mmio.data, std::min<uint32_t>(run->mmio.len, sizeof run->mmio.data));
      if (run->mmio.is_write) {
        mmio_.write(run->mmio.phys_addr, data);
      } else {
        mmio_.read(run->mmio.phys_addr, data);
      }
      return true;
    }
    case KVM_EXIT_INTR:
      stats_.count(ExitReason::Intr);
      return true;
    case KVM_EXIT_HLT:  // only without the in-kernel irqchip; nothing to do but run again
      stats_.count(ExitReason::Hlt);
      return true;
    case KVM_EXIT_SHUTDOWN:  // triple fault: a PC resets
      stats_.count(ExitReason::Shutdown);
      log::debug(describeState("triple fault"));
      handlers_.power(PowerRequest::Reset);
      return false;
    case KVM_EXIT_SYSTEM_EVENT:
      stats_.count(ExitReason::SystemEvent);
      if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
        handlers_.power(PowerRequest::PowerOff);
      } else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
        handlers_.power(PowerRequest::Reset);
      } else {
        handlers_.fatal(describeState("guest crashed (system event " + std::to_string(run->system_event.type) + ")"));
      }
      return false;
    case KVM_EXIT_INTERNAL_ERROR:
      stats_.count(ExitReason::InternalError);
      handlers_.fatal(describeState(run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
                                        ? "KVM emulation failure"
                                        : "KVM internal error, suberror " + std::to_string(run->internal.suberror)));
      return false;
    case KVM_EXIT_FAIL_ENTRY:
      stats_.count(ExitReason::FailEntry);
      handlers_.fatal(describeState("KVM entry failed, hardware reason " +
                                    hex(run->fail_entry.hardware_entry_failure_reason)));
      return false;
    default:
      stats_.count(ExitReason::Other);
      handlers_.fatal(describeState("unexpected KVM exit reason " + std::to_string(run->exit_reason)));
      return false;
  }
}

std::string VcpuRunner::describeState(const std::string& what) {
  std::string report = "vCPU " + std::to_string(vcpu_.id()) + ": " + what + "\n";
  auto regs = vcpu_.regs();
  auto sregs = vcpu_.sregs();
  if (!regs || !sregs) return report + "  (registers unavailable)\n";
  char line[512];
  std::snprintf(line, sizeof line,
                "  RAX=%016llx RBX=%016llx RCX=%016llx RDX=%016llx\n"
                "  RSI=%016llx RDI=%016llx RBP=%016llx RSP=%016llx\n"
                "  R8 =%016llx R9 =%016llx R10=%016llx R11=%016llx\n"
                "  R12=%016llx R13=%016llx R14=%016llx R15=%016llx\n",
                regs->rax, regs->rbx, regs->rcx, regs->rdx, regs->rsi, regs->rdi, regs->rbp, regs->rsp, regs->r8,
                regs->r9, regs->r10, regs->r11, regs->r12, regs->r13, regs->r14, regs->r15);
  report += line;
  std::snprintf(line, sizeof line,
                "  RIP=%016llx RFL=%08llx CS=%04x CR0=%08llx CR2=%016llx CR3=%016llx CR4=%08llx EFER=%llx\n",
                regs->rip, regs->rflags, sregs->cs.selector, sregs->cr0, sregs->cr2, sregs->cr3, sregs->cr4, sregs->efer);
  report += line;
  return report;
}

}  // namespace vmmd
