#include "vmm/kvm/diagnosis.h"

#include <linux/kvm.h>

#include <cerrno>
#include <cstring>

namespace vmmd::kvm {
namespace {

bool isSpace(char c) { return c == ' ' || c == '\t'; }

Error openFailure(const std::string& device, int error, std::string_view cpuinfo) {
  if (error == EACCES || error == EPERM) {
    return Error("no permission to open " + device + " (" + std::strerror(error) +
                     "): add the user to the kvm group (usermod -aG kvm $USER, then log in again) or run vmm as root",
                 error);
  }
  if (error != ENOENT && error != ENODEV && error != ENXIO) return Error::fromErrno("open " + device, error);
  std::string what = error == ENOENT ? device + " does not exist"
                                     : device + " has no KVM driver behind it (" + std::strerror(error) + ")";
  std::string_view flag = virtualizationFlag(cpuinfo);
  if (flag.empty()) {
    return Error(what + ": this host has no hardware virtualization (no vmx or svm flag in /proc/cpuinfo; it is likely "
                        "a virtual machine itself). Run vmm on a host with Intel VT-x or AMD-V, or enable nested "
                        "virtualization for this VM; the project's tests and demo (scripts/test.sh, scripts/demo.sh) "
                        "fall back by themselves to running guests inside an L1 VM under QEMU TCG",
                 error);
  }
  return Error(what + ", though the CPU has hardware virtualization (" + std::string(flag) +
                   "): the KVM module is not loaded; load it as root with modprobe " +
                   (flag == "vmx" ? "kvm_intel" : "kvm_amd"),
               error);
}

}  // namespace

std::string_view virtualizationFlag(std::string_view cpuinfo) {
  while (!cpuinfo.empty()) {
    size_t eol = cpuinfo.find('\n');
    std::string_view line = cpuinfo.substr(0, eol);
    cpuinfo.remove_prefix(eol == std::string_view::npos ? cpuinfo.size() : eol + 1);
    size_t colon = line.find(':');
    if (!line.starts_with("flags") || colon == std::string_view::npos) continue;
    std::string_view words = line.substr(colon + 1);
    while (!words.empty()) {
      while (!words.empty() && isSpace(words.front())) words.remove_prefix(1);
      size_t end = 0;
      while (end < words.size() && !isSpace(words[end])) ++end;
      std::string_view word = words.substr(0, end);
      if (word == "vmx" || word == "svm") return word;
      words.remove_prefix(end);
    }
  }
  return {};
}

Error describeKvmFailure(std::string_view path, const KvmFailure& failure, std::string_view cpuinfo) {
  std::string device(path);
  int error = failure.error;
  switch (failure.step) {
    case KvmFailure::Step::Open:
      return openFailure(device, error, cpuinfo);
    case KvmFailure::Step::ApiVersion:
      if (error) {
        return Error(device + " is not a usable KVM device: KVM_GET_API_VERSION failed (" + std::strerror(error) +
                         "); it should be the character device 10:232 that the kvm module creates",
                     error);
      }
      return Error(device + " is not a usable KVM device: it reports KVM API version " +
                   std::to_string(failure.api_version) + ", vmm needs " + std::to_string(KVM_API_VERSION));
    case KvmFailure::Step::CreateVm:
      return Error("KVM_CREATE_VM on " + device + " failed (" + std::strerror(error) +
                       "): the kernel refused to create a virtual machine; dmesg says why (often hardware "
                       "virtualization disabled in the firmware, or taken by another hypervisor)",
                   error);
  }
  return Error("KVM: unknown failure", error);
}

}  // namespace vmmd::kvm
