// The machine's state as sections (machine_state.h): its encoding under hostile input (no KVM),
// and, on a real /dev/kvm (RealKvmMachineState.*), the probe guest counting LAPIC timer ticks,
// paused and saved mid-count, loaded into a second, fresh machine with a copy of its RAM, going
// on from the next count there.
#include "vmm/machine/machine_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <regex>
#include <sys/wait.h>
#include <unistd.h>
#include <string>

#include "tests/support/cannot_run.h"
#include "tests/vmm/machine/no_host.h"
#include "vmm/config/option_parser.h"
#include "vmm/machine/kvm_state.h"
#include "vmm/machine/machine.h"
#include "vmm/sandbox/sandbox.h"

namespace vmmd {
namespace {

using ::testing::HasSubstr;

MachineState sampleState() {
  return MachineState{{{"cpu/0", {"cpu", 1, {1, 2, 3}}}, {"serial/0x3f8", {"isa-serial", 1, {}}}}};
}

TEST(MachineStateEncoding, RoundTrips) {
  auto bytes = encodeMachineState(sampleState());
  auto decoded = decodeMachineState(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message();
  ASSERT_EQ(decoded->sections.size(), 2u);
  EXPECT_EQ(decoded->sections[0].id, "cpu/0");
  EXPECT_EQ(decoded->sections[0].state.bytes, (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_EQ(decoded->find("serial/0x3f8")->state.kind, "isa-serial");
  EXPECT_EQ(decoded->find("cpu/1"), nullptr);
  EXPECT_EQ(encodeMachineState(*decoded), bytes);
}

TEST(MachineStateEncoding, TruncatedGarbageAndHugeCountsAreRefused) {
  auto bytes = encodeMachineState(sampleState());
  for (size_t length = 0; length < bytes.size(); ++length) {
    EXPECT_FALSE(decodeMachineState({bytes.data(), length}).ok()) << length;
  }
  std::vector<uint8_t> huge = {0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0};
  auto refused = decodeMachineState(huge);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message(), HasSubstr("sections in 8 bytes"));
  auto longer = bytes;
  longer.push_back(7);
  EXPECT_THAT(decodeMachineState(longer).error().message(), HasSubstr("left over"));
}

// Serial output collected from the vCPU thread, and waited for.
struct RecordingHost : testing::NoHost {
  void serialOutput(std::span<const uint8_t> bytes) override {
    std::lock_guard lock(mutex);
    output.append(bytes.begin(), bytes.end());
    changed.notify_all();
  }
  bool waitFor(const std::string& text, std::chrono::seconds limit) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, limit, [&] { return output.find(text) != std::string::npos; });
  }
  std::string text() {
    std::lock_guard lock(mutex);
    return output;
  }
  std::mutex mutex;
  std::condition_variable changed;
  std::string output;
};

// The counts the probe printed (`PROBE name=count n=N`), in order.
std::vector<unsigned> counts(const std::string& output) {
  std::vector<unsigned> out;
  std::regex line("name=count n=([0-9]+)");
  for (auto it = std::sregex_iterator(output.begin(), output.end(), line); it != std::sregex_iterator(); ++it) {
    out.push_back(static_cast<unsigned>(std::stoul((*it)[1])));
  }
  return out;
}

Status copyRam(const GuestMemory& from, const GuestMemory& to) {
  if (from.regions().size() != to.regions().size()) return Error("different memory layouts");
  for (size_t i = 0; i < from.regions().size(); ++i) {
    const auto& a = from.regions()[i];
    const auto& b = to.regions()[i];
    if (a.guest_address != b.guest_address || a.size != b.size) return Error("different memory layouts");
    std::memcpy(b.host, a.host, a.size);
  }
  return {};
}

class RealKvmMachineState : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!kvm::Kvm::open()) VMMD_CANNOT_RUN("no usable /dev/kvm");
    configure({"-M", "pc", "-smp", "1", "-device", "virtio-rng-pci"});
  }

  void configure(std::vector<std::string> args, const char* append = "nochecks count") {
    for (const char* arg : {"-m", "64", "-nodefaults", "-kernel", VMMD_PROBE_ELF, "-append", append}) args.push_back(arg);
    auto parsed = config::parseCommandLine(args);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message();
    config_ = std::move(*parsed);
  }

  // Saves a machine mid-count, loads the state into a fresh one with a copy of its RAM, and
  // checks that the guest counts on from the next tick there, without booting again.
  void expectCountsOnAfterLoad(const std::vector<std::string>& expected_sections) {
    RecordingHost source_host;
    std::unique_ptr<Machine> source;
    MachineState state = runAndSave(source_host, source);
    ASSERT_FALSE(state.sections.empty());
    for (const auto& id : expected_sections) EXPECT_NE(state.find(id), nullptr) << id;
    auto saved_counts = counts(source_host.text());
    ASSERT_FALSE(saved_counts.empty());
    unsigned last = saved_counts.back();
    // Through the encoding, as a snapshot file would carry it.
    auto decoded = decodeMachineState(encodeMachineState(state));
    ASSERT_TRUE(decoded.ok()) << decoded.error().message();

    RecordingHost target_host;
    auto target = machine(target_host);
    ASSERT_TRUE(target);
    ASSERT_TRUE(target->powerOn(true).ok());
    ASSERT_TRUE(copyRam(source->memory(), target->memory()).ok());
    source.reset();  // the source is gone before the target runs, as after a migration
    auto loaded = target->loadState(*decoded);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    target->resume();
    unsigned after = last + 3;
    ASSERT_TRUE(target_host.waitFor("name=count n=" + std::to_string(after) + " ", std::chrono::seconds(30)))
        << "saved at n=" << last << "; the target printed:\n" << target_host.text();
    auto target_counts = counts(target_host.text());
    ASSERT_FALSE(target_counts.empty());
    EXPECT_EQ(target_counts.front(), last + 1) << "the count goes on from the saved one, not from a new boot";
    EXPECT_EQ(target_host.text().find("name=ready"), std::string::npos) << "the guest did not boot again";

    // Saved again on the target: the same sections, each of the same kind.
    target->pause();
    auto again = target->saveState();
    ASSERT_TRUE(again.ok()) << again.error().message();
    ASSERT_EQ(again->sections.size(), state.sections.size());
    for (size_t i = 0; i < state.sections.size(); ++i) {
      EXPECT_EQ(again->sections[i].id, state.sections[i].id);
      EXPECT_EQ(again->sections[i].state.kind, state.sections[i].state.kind);
    }
  }

  std::unique_ptr<Machine> machine(RecordingHost& host) {
    auto made = Machine::create(config_, host);
    EXPECT_TRUE(made.ok()) << made.error().message();
    return made.ok() ? std::move(*made) : nullptr;
  }

  // Runs a machine until the probe has counted to `count`, then pauses and saves it.
  MachineState runAndSave(RecordingHost& host, std::unique_ptr<Machine>& source, unsigned count = 3) {
    source = machine(host);
    if (!source) return {};
    auto on = source->powerOn(false);
    EXPECT_TRUE(on.ok()) << on.error().message();
    EXPECT_TRUE(host.waitFor("name=count n=" + std::to_string(count) + " ", std::chrono::seconds(30))) << host.text();
    source->pause();
    source->stopDeviceIo();
    EXPECT_TRUE(source->paused());
    EXPECT_EQ(source->requestsInFlight(), 0u);
    auto state = source->saveState();
    EXPECT_TRUE(state.ok()) << state.error().message();
    return state.ok() ? std::move(*state) : MachineState{};
  }

  config::MachineConfig config_;
};

TEST_F(RealKvmMachineState, AGuestLoadedIntoAFreshMachineCountsOnFromWhereItWasSaved) {
  expectCountsOnAfterLoad({"cpu/0", "kvm/irqchip", "kvm/pit", "kvm/clock", "serial/0x3f8", "cmos/0x70", "acpi-pm/0x600",
                           "pci-host/0xcf8", "pci/0000:00:01.0/virtio-rng-pci"});
}

// microvm: virtio-mmio transports, no PCI; a second vCPU the probe never starts (waiting for
// INIT/SIPI: its MP state comes along).
TEST_F(RealKvmMachineState, AMicrovmWithTwoVcpusCountsOnAfterLoad) {
  configure({"-M", "microvm,rtc=on", "-smp", "2", "-device", "virtio-rng-device"});
  expectCountsOnAfterLoad({"cpu/0", "cpu/1", "kvm/irqchip", "kvm/pit", "kvm/clock", "serial/0x3f8", "cmos/0x70",
                           "acpi-ged/0xfea00000", "virtio-mmio/0xfeb00000/virtio-rng-device"});
}

// The worker saves and loads from its main loop under -sandbox on: every ioctl it needs is in the
// main thread's allowlist (a missing one kills the child by SIGSYS, naming the call on stderr).
TEST_F(RealKvmMachineState, SaveAndLoadRunUnderTheMainLoopsSandbox) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    RecordingHost source_host, target_host;
    auto source = Machine::create(config_, source_host);
    auto target = Machine::create(config_, target_host);  // files are opened before confinement, as in the worker
    if (!source || !target) ::_exit(10);
    if (!sandbox::prepare() || !sandbox::enterProcess() || !sandbox::confineThread(sandbox::Role::Main)) ::_exit(11);
    if (!(*source)->powerOn(false) || !source_host.waitFor("name=count n=2 ", std::chrono::seconds(30))) ::_exit(12);
    (*source)->pause();
    (*source)->stopDeviceIo();
    auto state = (*source)->saveState();
    if (!state) {
      std::fprintf(stderr, "save: %s\n", state.error().message().c_str());
      ::_exit(13);
    }
    if (!(*target)->powerOn(true) || !copyRam((*source)->memory(), (*target)->memory())) ::_exit(14);
    auto loaded = (*target)->loadState(*state);
    if (!loaded) {
      std::fprintf(stderr, "load: %s\n", loaded.error().message().c_str());
      ::_exit(15);
    }
    (*target)->resume();
    unsigned last = counts(source_host.text()).back();
    if (!target_host.waitFor("name=count n=" + std::to_string(last + 2) + " ", std::chrono::seconds(30))) ::_exit(16);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << (WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status)) : "exit " + std::to_string(WEXITSTATUS(status)));
}

// A guest printing without pause is stopped on a port I/O exit (LSR polls and THR writes): KVM
// completes that instruction before the vCPU parks, so the source's output and the target's join
// into whole, consecutive lines, no byte lost or doubled.
TEST_F(RealKvmMachineState, PausedMidLineTheOutputGoesOnWithoutALostOrDoubledByte) {
  configure({"-M", "pc", "-smp", "1"}, "nochecks count busy");
  RecordingHost source_host;
  std::unique_ptr<Machine> source;
  MachineState state = runAndSave(source_host, source, 100);
  ASSERT_FALSE(state.sections.empty());
  RecordingHost target_host;
  auto target = machine(target_host);
  ASSERT_TRUE(target);
  ASSERT_TRUE(target->powerOn(true).ok());
  ASSERT_TRUE(copyRam(source->memory(), target->memory()).ok());
  source->powerOff();
  ASSERT_TRUE(target->loadState(state).ok());
  target->resume();
  unsigned last = counts(source_host.text()).back();
  ASSERT_TRUE(target_host.waitFor("name=count n=" + std::to_string(last + 50) + " ", std::chrono::seconds(30)));
  target->pause();
  std::string joined = source_host.text() + target_host.text();
  joined = joined.substr(joined.find("name=ready"));
  joined = joined.substr(joined.find('\n') + 1);
  joined = joined.substr(0, joined.rfind('\n') + 1);  // the target's last line may be unfinished
  std::regex line("PROBE name=count n=([0-9]+) timer_irqs=[0-9]+\n");
  unsigned expected = 1;
  size_t at = 0;
  for (std::smatch m; at < joined.size(); ++expected) {
    std::string rest = joined.substr(at);
    ASSERT_TRUE(std::regex_search(rest, m, line, std::regex_constants::match_continuous))
        << "line " << expected << " is broken (saved at n=" << last << "): " << rest.substr(0, rest.find('\n'));
    ASSERT_EQ(std::stoul(m[1]), expected);
    at += static_cast<size_t>(m.length(0));
  }
  EXPECT_GT(expected, last + 40);
}

// What this host's KVM offers for saving a vCPU (shown in the log: PVM and old kernels differ).
TEST_F(RealKvmMachineState, TheHostsKvmOffersWhatTheVcpuStateNeeds) {
  auto kvm = kvm::Kvm::open();
  ASSERT_TRUE(kvm.ok());
  auto vm = kvm::Vm::create(*kvm);
  ASSERT_TRUE(vm.ok()) << vm.error().message();
  ASSERT_TRUE(vm->createIrqchip().ok());  // the LAPIC is the in-kernel irqchip's, as in every machine
  auto support = KvmStateSupport::probe(*kvm, *vm);
  ASSERT_TRUE(support.ok()) << support.error().message();
  std::cout << "sregs2=" << support->sregs2 << " xsave=" << support->xsave << " xsave2_size=" << support->xsave_size
            << " xcrs=" << support->xcrs << " tsc_control=" << support->tsc_control << " debugregs=" << support->debug_regs
            << " vcpu_events=" << support->vcpu_events << " msrs=" << support->msrs.size() << "\n";
  EXPECT_GT(support->msrs.size(), 0u);
  auto vcpu = kvm::Vcpu::create(*kvm, *vm, 0);
  ASSERT_TRUE(vcpu.ok()) << vcpu.error().message();
  auto state = saveVcpuState(*vcpu, *support);
  ASSERT_TRUE(state.ok()) << state.error().message();
  auto msrs = vcpu->readMsrs(support->msrs);
  ASSERT_TRUE(msrs.ok());
  std::cout << "vCPU state " << state->bytes.size() << " bytes, " << msrs->size() << " MSRs readable\n";
  // EFER and the APIC base are in the special registers; these are MSRs proper.
  for (uint32_t wanted : {0x10u /* TSC */, 0xC0000081u /* STAR */, 0xC0000082u /* LSTAR */, 0x4B564D01u /* kvmclock */}) {
    bool found = std::any_of(msrs->begin(), msrs->end(), [&](const kvm_msr_entry& e) { return e.index == wanted; });
    EXPECT_TRUE(found) << std::hex << wanted;
  }
  EXPECT_TRUE(loadVcpuState(*vcpu, *state, *support).ok());

  // The paths for an older KVM (no KVM_CAP_SREGS2, no XSAVE: KVM_GET_SREGS and the legacy FPU
  // area) round-trip too; an XSAVE state is refused where XSAVE is missing, naming it.
  KvmStateSupport old = *support;
  old.sregs2 = false;
  old.xsave = false;
  auto old_state = saveVcpuState(*vcpu, old);
  ASSERT_TRUE(old_state.ok()) << old_state.error().message();
  EXPECT_TRUE(loadVcpuState(*vcpu, *old_state, old).ok());
  auto again = saveVcpuState(*vcpu, old);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->bytes.size(), old_state->bytes.size());
  auto refused = loadVcpuState(*vcpu, *state, old);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message(), HasSubstr("KVM_CAP_XSAVE"));
}

TEST_F(RealKvmMachineState, AStateForAnotherConfigurationIsRefusedNamingTheSection) {
  RecordingHost source_host;
  std::unique_ptr<Machine> source;
  MachineState state = runAndSave(source_host, source);
  ASSERT_FALSE(state.sections.empty());

  RecordingHost target_host;
  auto target = machine(target_host);
  ASSERT_TRUE(target);
  auto running = target->loadState(state);
  ASSERT_FALSE(running.ok());
  EXPECT_THAT(running.error().message(), HasSubstr("not powered on"));
  ASSERT_TRUE(target->powerOn(true).ok());

  MachineState missing = state;
  missing.sections.erase(missing.sections.begin());
  EXPECT_THAT(target->loadState(missing).error().message(), HasSubstr("no section for cpu/0"));

  MachineState extra = state;
  extra.sections.push_back({"pci/0000:00:05.0/virtio-blk-pci", {"virtio-blk-pci", 1, {}}});
  EXPECT_THAT(target->loadState(extra).error().message(), HasSubstr("pci/0000:00:05.0/virtio-blk-pci"));

  MachineState swapped = state;
  for (auto& section : swapped.sections) {
    if (section.id == "kvm/pit") section.state = state.find("cpu/0")->state;
  }
  auto refused = target->loadState(swapped);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message(), HasSubstr("kvm/pit"));

  MachineState truncated = state;
  for (auto& section : truncated.sections) {
    if (section.id == "cpu/0") section.state.bytes.resize(section.state.bytes.size() / 2);
  }
  auto cut = target->loadState(truncated);
  ASSERT_FALSE(cut.ok());
  EXPECT_THAT(cut.error().message(), HasSubstr("cpu/0"));
}

}  // namespace
}  // namespace vmmd
