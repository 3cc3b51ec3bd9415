#include "vmm/kvm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "vmm/kvm/diagnosis.h"
#include "vmm/kvm/ioctl_numbers.h"

namespace vmmd::kvm {
namespace {

// Retries an ioctl interrupted by a signal; KVM_RUN is the one caller that must not do this.
template <typename Arg>
int ioctlRetry(int fd, unsigned long request, Arg arg) {
  int rc;
  do {
    rc = ::ioctl(fd, request, arg);
  } while (rc < 0 && errno == EINTR);
  return rc;
}


Status check(int rc, const char* what) {
  if (rc < 0) return Error::fromErrno(what);
  return {};
}

// Read only when /dev/kvm cannot be opened: its flags tell "no VT-x/AMD-V" from "no module".
std::string hostCpuinfo() {
  std::ifstream in("/proc/cpuinfo");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

Result<Kvm> Kvm::open(const char* path, const FileOpener& files) {
  auto opened = files.open(path, O_RDWR);
  if (!opened) {
    int error = opened.error().code();
    if (error == 0) return opened.error();
    return describeKvmFailure(path, {KvmFailure::Step::Open, error}, hostCpuinfo());
  }
  UniqueFd fd = std::move(*opened);
  int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    return describeKvmFailure(path, {KvmFailure::Step::ApiVersion, version < 0 ? errno : 0, version}, {});
  }
  return Kvm(path, std::move(fd));
}

int Kvm::checkExtension(long capability) const {
  int rc = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
  return rc < 0 ? 0 : rc;
}

Result<std::vector<kvm_cpuid_entry2>> Kvm::supportedCpuid() const {
  // The kernel says E2BIG until the buffer is large enough; grow until it fits.
  for (uint32_t capacity = 128; capacity <= 4096; capacity *= 2) {
    std::vector<uint8_t> buffer(sizeof(CpuidHeader) + capacity * sizeof(kvm_cpuid_entry2));
    CpuidHeader header{capacity, 0};
    std::memcpy(buffer.data(), &header, sizeof header);
    if (ioctlRetry(fd_.get(), kGetSupportedCpuid, buffer.data()) == 0) {
      std::memcpy(&header, buffer.data(), sizeof header);
      std::vector<kvm_cpuid_entry2> entries(header.nent);
      std::memcpy(entries.data(), buffer.data() + sizeof header, header.nent * sizeof(kvm_cpuid_entry2));
      return entries;
    }
    if (errno != E2BIG) return Error::fromErrno("KVM_GET_SUPPORTED_CPUID");
  }
  return Error("KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
}

Result<size_t> Kvm::vcpuMmapSize() const {
  int size = ::ioctl(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (size <= 0) return Error::fromErrno("KVM_GET_VCPU_MMAP_SIZE");
  return static_cast<size_t>(size);
}

Result<std::vector<uint32_t>> Kvm::msrIndexList() const {
  // Asked with room for none, the kernel says E2BIG and how many there are.
  MsrListHeader probe{0};
  if (ioctlRetry(fd_.get(), kGetMsrIndexList, &probe) < 0 && errno != E2BIG) return Error::fromErrno("KVM_GET_MSR_INDEX_LIST");
  std::vector<uint32_t> buffer(1 + probe.nmsrs);
  buffer[0] = probe.nmsrs;
  if (ioctlRetry(fd_.get(), kGetMsrIndexList, buffer.data()) < 0) return Error::fromErrno("KVM_GET_MSR_INDEX_LIST");
  buffer.resize(1 + std::min<size_t>(buffer[0], probe.nmsrs));
  return std::vector<uint32_t>(buffer.begin() + 1, buffer.end());
}

Result<Vm> Vm::create(const Kvm& kvm) {
  int fd = ioctlRetry(kvm.fd(), KVM_CREATE_VM, 0);
  if (fd < 0) return describeKvmFailure(kvm.path(), {KvmFailure::Step::CreateVm, errno}, {});
  return Vm(UniqueFd(fd));
}

Status Vm::setMemorySlot(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host, uint32_t flags) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.flags = flags;
  region.guest_phys_addr = guest_phys;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host);
  return check(ioctlRetry(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region), "KVM_SET_USER_MEMORY_REGION");
}

Status Vm::setUserMemoryRegion(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host, bool read_only) {
  return setMemorySlot(slot, guest_phys, size, host, read_only ? KVM_MEM_READONLY : 0);
}

Status Vm::setDirtyLogging(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host, bool on) {
  return setMemorySlot(slot, guest_phys, size, host, on ? KVM_MEM_LOG_DIRTY_PAGES : 0);
}

Status Vm::getDirtyLog(uint32_t slot, std::span<uint64_t> bitmap) {
  kvm_dirty_log log{};
  log.slot = slot;
  log.dirty_bitmap = bitmap.data();
  return check(ioctlRetry(fd_.get(), KVM_GET_DIRTY_LOG, &log), "KVM_GET_DIRTY_LOG");
}

Status Vm::createIrqchip() { return check(ioctlRetry(fd_.get(), KVM_CREATE_IRQCHIP, 0), "KVM_CREATE_IRQCHIP"); }

Status Vm::createPit() {
  kvm_pit_config config{};
  config.flags = KVM_PIT_SPEAKER_DUMMY;
  return check(ioctlRetry(fd_.get(), KVM_CREATE_PIT2, &config), "KVM_CREATE_PIT2");
}

Status Vm::setTssAddress(uint64_t address) {
  return check(ioctlRetry(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(address)), "KVM_SET_TSS_ADDR");
}

Status Vm::setIdentityMapAddress(uint64_t address) {
  return check(ioctlRetry(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &address), "KVM_SET_IDENTITY_MAP_ADDR");
}

Status Vm::setIrqLine(uint32_t irq, bool level) {
  kvm_irq_level line{};
  line.irq = irq;
  line.level = level ? 1 : 0;
  return check(ioctlRetry(fd_.get(), KVM_IRQ_LINE, &line), "KVM_IRQ_LINE");
}

Status Vm::setIrqfd(int eventfd, uint32_t gsi, bool assign) {
  kvm_irqfd irqfd{};
  irqfd.fd = static_cast<uint32_t>(eventfd);
  irqfd.gsi = gsi;
  irqfd.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN;
  return check(ioctlRetry(fd_.get(), KVM_IRQFD, &irqfd), "KVM_IRQFD");
}

Status Vm::setIoeventfd(int eventfd, uint64_t address, uint32_t length, bool pio, bool assign) {
  kvm_ioeventfd ioeventfd{};
  ioeventfd.fd = eventfd;
  ioeventfd.addr = address;
  ioeventfd.len = length;
  ioeventfd.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN);
  return check(ioctlRetry(fd_.get(), KVM_IOEVENTFD, &ioeventfd), "KVM_IOEVENTFD");
}

Status Vm::setIoeventfdMatching(int eventfd, uint64_t address, uint32_t length, uint64_t value, bool assign) {
  kvm_ioeventfd ioeventfd{};
  ioeventfd.fd = eventfd;
  ioeventfd.addr = address;
  ioeventfd.len = length;
  ioeventfd.datamatch = value;
  ioeventfd.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN);
  return check(ioctlRetry(fd_.get(), KVM_IOEVENTFD, &ioeventfd), "KVM_IOEVENTFD");
}

Status Vm::enableCap(uint32_t capability, uint64_t arg0) {
  kvm_enable_cap cap{};
  cap.cap = capability;
  cap.args[0] = arg0;
  return check(ioctlRetry(fd_.get(), KVM_ENABLE_CAP, &cap), "KVM_ENABLE_CAP");
}

Status Vm::setGsiRouting(const std::vector<GsiRoute>& routes) {
  std::vector<uint8_t> buffer(sizeof(RoutingHeader) + routes.size() * sizeof(kvm_irq_routing_entry));
  RoutingHeader header{static_cast<uint32_t>(routes.size()), 0};
  std::memcpy(buffer.data(), &header, sizeof header);
  for (size_t i = 0; i < routes.size(); ++i) {
    kvm_irq_routing_entry entry{};
    entry.gsi = routes[i].gsi;
    if (routes[i].msi) {
      entry.type = KVM_IRQ_ROUTING_MSI;
      entry.u.msi.address_lo = static_cast<uint32_t>(routes[i].msi_address);
      entry.u.msi.address_hi = static_cast<uint32_t>(routes[i].msi_address >> 32);
      entry.u.msi.data = routes[i].msi_data;
    } else {
      entry.type = KVM_IRQ_ROUTING_IRQCHIP;
      entry.u.irqchip.irqchip = routes[i].irqchip;
      entry.u.irqchip.pin = routes[i].pin;
    }
    std::memcpy(buffer.data() + sizeof header + i * sizeof entry, &entry, sizeof entry);
  }
  return check(ioctlRetry(fd_.get(), kSetGsiRouting, buffer.data()), "KVM_SET_GSI_ROUTING");
}

int Vm::checkExtension(long capability) const {
  int rc = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
  return rc < 0 ? 0 : rc;
}

namespace {

// One KVM_GET_* into a value of its type / one KVM_SET_* from it, the errno named after the ioctl.
template <typename T>
Result<T> getStruct(int fd, unsigned long request, const char* what, T value = {}) {
  if (ioctlRetry(fd, request, &value) < 0) return Error::fromErrno(what);
  return value;
}

template <typename T>
Status setStruct(int fd, unsigned long request, const char* what, const T& value) {
  return check(ioctlRetry(fd, request, &value), what);
}

}  // namespace

Result<kvm_clock_data> Vm::clock() const { return getStruct<kvm_clock_data>(fd_.get(), KVM_GET_CLOCK, "KVM_GET_CLOCK"); }

Status Vm::setClock(const kvm_clock_data& clock) {
  kvm_clock_data data{};
  data.clock = clock.clock;  // flags stay 0: the clock is set to this value, not advanced by real time
  return setStruct(fd_.get(), KVM_SET_CLOCK, "KVM_SET_CLOCK", data);
}

Result<kvm_irqchip> Vm::irqchip(uint32_t chip_id) const {
  kvm_irqchip chip{};
  chip.chip_id = chip_id;
  return getStruct(fd_.get(), KVM_GET_IRQCHIP, "KVM_GET_IRQCHIP", chip);
}

Status Vm::setIrqchip(const kvm_irqchip& chip) { return setStruct(fd_.get(), KVM_SET_IRQCHIP, "KVM_SET_IRQCHIP", chip); }

Result<kvm_pit_state2> Vm::pit() const { return getStruct<kvm_pit_state2>(fd_.get(), KVM_GET_PIT2, "KVM_GET_PIT2"); }

Status Vm::setPit(const kvm_pit_state2& pit) { return setStruct(fd_.get(), KVM_SET_PIT2, "KVM_SET_PIT2", pit); }

Result<Vcpu> Vcpu::create(const Kvm& kvm, const Vm& vm, uint32_t id) {
  auto mmap_size = kvm.vcpuMmapSize();
  if (!mmap_size) return mmap_size.error();
  int fd = ioctlRetry(vm.fd(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  if (fd < 0) return Error::fromErrno("KVM_CREATE_VCPU " + std::to_string(id));
  UniqueFd owned(fd);
  auto run = Mapping::file(fd, *mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED);
  if (!run) return run.error().withContext("map kvm_run of vCPU " + std::to_string(id));
  return Vcpu(id, std::move(owned), std::move(*run));
}

Status Vcpu::run() {
  if (::ioctl(fd_.get(), KVM_RUN, 0) < 0) return Error::fromErrno("KVM_RUN");
  return {};
}

Result<kvm_regs> Vcpu::regs() const {
  kvm_regs regs{};
  if (ioctlRetry(fd_.get(), KVM_GET_REGS, &regs) < 0) return Error::fromErrno("KVM_GET_REGS");
  return regs;
}

Status Vcpu::setRegs(const kvm_regs& regs) { return check(ioctlRetry(fd_.get(), KVM_SET_REGS, &regs), "KVM_SET_REGS"); }

Result<kvm_sregs> Vcpu::sregs() const {
  kvm_sregs sregs{};
  if (ioctlRetry(fd_.get(), KVM_GET_SREGS, &sregs) < 0) return Error::fromErrno("KVM_GET_SREGS");
  return sregs;
}

Status Vcpu::setSregs(const kvm_sregs& sregs) {
  return check(ioctlRetry(fd_.get(), KVM_SET_SREGS, &sregs), "KVM_SET_SREGS");
}

Status Vcpu::setFpu(const kvm_fpu& fpu) { return check(ioctlRetry(fd_.get(), KVM_SET_FPU, &fpu), "KVM_SET_FPU"); }

Result<kvm_fpu> Vcpu::fpu() const { return getStruct<kvm_fpu>(fd_.get(), KVM_GET_FPU, "KVM_GET_FPU"); }

Result<kvm_sregs2> Vcpu::sregs2() const { return getStruct<kvm_sregs2>(fd_.get(), KVM_GET_SREGS2, "KVM_GET_SREGS2"); }

Status Vcpu::setSregs2(const kvm_sregs2& sregs) { return setStruct(fd_.get(), KVM_SET_SREGS2, "KVM_SET_SREGS2", sregs); }

Result<std::vector<uint8_t>> Vcpu::xsave(size_t size) const {
  bool extended = size > 0;
  std::vector<uint8_t> area(std::max(size, sizeof(XsaveHeader)));
  const char* what = extended ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE";
  if (ioctlRetry(fd_.get(), extended ? kGetXsave2 : kGetXsave, area.data()) < 0) return Error::fromErrno(what);
  return area;
}

Status Vcpu::setXsave(std::span<const uint8_t> area) {
  if (area.size() < sizeof(XsaveHeader)) return Error("KVM_SET_XSAVE: an area of " + std::to_string(area.size()) + " bytes");
  // The kernel reads as many bytes as KVM_CAP_XSAVE2 says; the copy keeps a short area from being read past.
  std::vector<uint8_t> copy(area.begin(), area.end());
  return check(ioctlRetry(fd_.get(), kSetXsave, copy.data()), "KVM_SET_XSAVE");
}

Result<kvm_xcrs> Vcpu::xcrs() const { return getStruct<kvm_xcrs>(fd_.get(), KVM_GET_XCRS, "KVM_GET_XCRS"); }

Status Vcpu::setXcrs(const kvm_xcrs& xcrs) { return setStruct(fd_.get(), KVM_SET_XCRS, "KVM_SET_XCRS", xcrs); }

Result<std::vector<kvm_msr_entry>> Vcpu::readMsrs(const std::vector<uint32_t>& indices) const {
  std::vector<kvm_msr_entry> out;
  size_t next = 0;
  while (next < indices.size()) {
    size_t count = indices.size() - next;
    std::vector<uint8_t> buffer(sizeof(MsrsHeader) + count * sizeof(kvm_msr_entry));
    MsrsHeader header{static_cast<uint32_t>(count), 0};
    std::memcpy(buffer.data(), &header, sizeof header);
    for (size_t i = 0; i < count; ++i) {
      kvm_msr_entry entry{};
      entry.index = indices[next + i];
      std::memcpy(buffer.data() + sizeof header + i * sizeof entry, &entry, sizeof entry);
    }
    int read = ioctlRetry(fd_.get(), kGetMsrs, buffer.data());
    if (read < 0) return Error::fromErrno("KVM_GET_MSRS");
    for (int i = 0; i < read; ++i) {
      kvm_msr_entry entry;
      std::memcpy(&entry, buffer.data() + sizeof header + static_cast<size_t>(i) * sizeof entry, sizeof entry);
      out.push_back(entry);
    }
    // KVM stops at the first MSR it refuses: skip that one and read on.
    next += static_cast<size_t>(read) + 1;
  }
  return out;
}

Result<kvm_vcpu_events> Vcpu::events() const {
  return getStruct<kvm_vcpu_events>(fd_.get(), KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS");
}

Status Vcpu::setEvents(const kvm_vcpu_events& events) {
  return setStruct(fd_.get(), KVM_SET_VCPU_EVENTS, "KVM_SET_VCPU_EVENTS", events);
}

Result<kvm_debugregs> Vcpu::debugRegs() const {
  return getStruct<kvm_debugregs>(fd_.get(), KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS");
}

Status Vcpu::setDebugRegs(const kvm_debugregs& regs) {
  return setStruct(fd_.get(), KVM_SET_DEBUGREGS, "KVM_SET_DEBUGREGS", regs);
}

Result<uint32_t> Vcpu::tscKhz() const {
  int khz = ioctlRetry(fd_.get(), KVM_GET_TSC_KHZ, 0);
  if (khz < 0) return Error::fromErrno("KVM_GET_TSC_KHZ");
  return static_cast<uint32_t>(khz);
}

Status Vcpu::setTscKhz(uint32_t khz) {
  return check(ioctlRetry(fd_.get(), KVM_SET_TSC_KHZ, static_cast<unsigned long>(khz)), "KVM_SET_TSC_KHZ");
}

Status Vcpu::setCpuid(const std::vector<kvm_cpuid_entry2>& entries) {
  std::vector<uint8_t> buffer(sizeof(CpuidHeader) + entries.size() * sizeof(kvm_cpuid_entry2));
  CpuidHeader header{static_cast<uint32_t>(entries.size()), 0};
  std::memcpy(buffer.data(), &header, sizeof header);
  std::memcpy(buffer.data() + sizeof header, entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  return check(ioctlRetry(fd_.get(), kSetCpuid2, buffer.data()), "KVM_SET_CPUID2");
}

Status Vcpu::setMsrs(const std::vector<kvm_msr_entry>& msrs) {
  std::vector<uint8_t> buffer(sizeof(MsrsHeader) + msrs.size() * sizeof(kvm_msr_entry));
  MsrsHeader header{static_cast<uint32_t>(msrs.size()), 0};
  std::memcpy(buffer.data(), &header, sizeof header);
  std::memcpy(buffer.data() + sizeof header, msrs.data(), msrs.size() * sizeof(kvm_msr_entry));
  int written = ioctlRetry(fd_.get(), kSetMsrs, buffer.data());
  if (written < 0) return Error::fromErrno("KVM_SET_MSRS");
  if (static_cast<size_t>(written) != msrs.size()) {
    return Error("KVM_SET_MSRS: MSR " + std::to_string(msrs[static_cast<size_t>(written)].index) + " refused");
  }
  return {};
}

Result<kvm_lapic_state> Vcpu::lapic() const {
  kvm_lapic_state state{};
  if (ioctlRetry(fd_.get(), KVM_GET_LAPIC, &state) < 0) return Error::fromErrno("KVM_GET_LAPIC");
  return state;
}

Status Vcpu::setLapic(const kvm_lapic_state& lapic) {
  return check(ioctlRetry(fd_.get(), KVM_SET_LAPIC, &lapic), "KVM_SET_LAPIC");
}

Status Vcpu::setXcr0(uint64_t value) {
  kvm_xcrs xcrs{};
  xcrs.nr_xcrs = 1;
  xcrs.xcrs[0].xcr = 0;
  xcrs.xcrs[0].value = value;
  return check(ioctlRetry(fd_.get(), KVM_SET_XCRS, &xcrs), "KVM_SET_XCRS");
}

Result<kvm_mp_state> Vcpu::mpState() const {
  kvm_mp_state state{};
  if (ioctlRetry(fd_.get(), KVM_GET_MP_STATE, &state) < 0) return Error::fromErrno("KVM_GET_MP_STATE");
  return state;
}

Status Vcpu::setMpState(uint32_t state) {
  kvm_mp_state mp{state};
  return check(ioctlRetry(fd_.get(), KVM_SET_MP_STATE, &mp), "KVM_SET_MP_STATE");
}

}  // namespace vmmd::kvm
