// One thread per vCPU running the KVM_RUN loop. Port and MMIO exits go to the buses; everything
// that concerns the whole machine (power-off, reset, a fatal error) is reported to the owner.
// Pausing is a state change plus a kick (immediate_exit + signal), never a polled flag.
#pragma once

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "vmm/devices/acpi_pm.h"
#include "vmm/devices/io_bus.h"
#include "vmm/kvm/kvm.h"
#include "vmm/machine/exit_stats.h"

namespace vmmd {

// Shared by all vCPU threads of one machine: the state they should be in.
class VcpuControl {
 public:
  enum class Target { Run, Pause, Stop };

  void set(Target target);
  // For a new set of vCPU threads: no thread is parked yet.
  void restart(Target target);
  Target target() const;
  // Parks the calling vCPU thread while the target is Pause; returns the target it woke to. A
  // thread that may not park yet (`may_park` false: an I/O exit to complete first) gets Pause
  // back at once, decided under the same lock as the park, so no pause slips in between.
  Target parkWhilePaused(bool may_park = true);
  // Waits until `count` vCPU threads are parked (or gone).
  void waitParked(size_t count);
  // The target is Pause and `count` vCPU threads are parked (or gone).
  bool allParked(size_t count) const;
  void threadExited();

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  Target target_ = Target::Run;
  size_t parked_ = 0;
};

struct VcpuExitHandlers {
  std::function<void(PowerRequest)> power;
  std::function<void(const std::string& report)> fatal;  // emulation failure, internal error
};

class VcpuRunner {
 public:
  // `stats` (this vCPU's exit counters) outlives the runner: it counts across resets.
  VcpuRunner(kvm::Vcpu vcpu, const IoBus& pio, const IoBus& mmio, VcpuControl& control, VcpuExitHandlers handlers,
             ExitStats& stats);
  ~VcpuRunner();
  VcpuRunner(const VcpuRunner&) = delete;
  VcpuRunner& operator=(const VcpuRunner&) = delete;

  void start();
  void join();
  // Makes KVM_RUN return promptly so the thread sees a new target.
  void kick();

  uint32_t id() const { return vcpu_.id(); }
  int threadId() const { return thread_id_.load(); }
  kvm::Vcpu& vcpu() { return vcpu_; }

  // Installs the no-op signal handler used for kicks (once per process).
  static void installKickSignal();

 private:
  void loop();
  bool handleExit();  // false: this vCPU stops
  std::string describeState(const std::string& what);

  kvm::Vcpu vcpu_;
  const IoBus& pio_;
  const IoBus& mmio_;
  VcpuControl& control_;
  VcpuExitHandlers handlers_;
  ExitStats& stats_;
  std::thread thread_;
  std::atomic<pthread_t> native_{};
  std::atomic<int> thread_id_{0};
  std::atomic<bool> running_{false};
  // The last exit was port I/O or MMIO: KVM finishes that instruction only at the next KVM_RUN,
  // and keeps what it needs for that nowhere userspace can save it, so a pause (a saved state)
  // must not come in between (KVM API: "userspace should ensure that the operation is
  // completed before performing a live migration").
  bool exit_to_complete_ = false;
};

}  // namespace vmmd
