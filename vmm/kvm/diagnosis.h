// Why the KVM device cannot be used, said so that the user knows what to do: a host without
// hardware virtualization, the module not loaded, no permission, or a device that is not KVM.
// Pure: the caller passes the errno and /proc/cpuinfo's text in, so every case is testable.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace vmmd::kvm {

struct KvmFailure {
  enum class Step {
    Open,        // open() of the device failed
    ApiVersion,  // KVM_GET_API_VERSION failed or answered something other than 12
    CreateVm,    // KVM_CREATE_VM failed
  };
  Step step;
  int error = 0;        // errno of the failed call; 0 when it succeeded with a wrong answer
  int api_version = 0;  // what KVM_GET_API_VERSION answered (Step::ApiVersion without error)
};

// "vmx" (Intel VT-x) or "svm" (AMD-V) when a "flags" line of /proc/cpuinfo's text lists it, else "".
std::string_view virtualizationFlag(std::string_view cpuinfo);

// The error for `failure` on the device at `path`, its code the failure's errno.
Error describeKvmFailure(std::string_view path, const KvmFailure& failure, std::string_view cpuinfo);

}  // namespace vmmd::kvm
