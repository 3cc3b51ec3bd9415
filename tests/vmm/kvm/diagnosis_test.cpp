#include "vmm/kvm/diagnosis.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>

namespace vmmd::kvm {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using Step = KvmFailure::Step;

// Shortened /proc/cpuinfo texts: an Intel host, an AMD host, a VM without nested virtualization.
constexpr const char* kIntel =
    "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse tsc msr vmx smx est\n"
    "vmx flags\t: vnmi preemption_timer invvpid ept_x_only\n\nprocessor\t: 1\nflags\t\t: fpu vmx\n";
constexpr const char* kAmd = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu lm svm extapic\n";
constexpr const char* kNoVirtualization =
    "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme pse hypervisor lahf_lm\nbugs\t\t: svm_spoof\n";

TEST(VirtualizationFlag, FindsVmxOrSvmInTheFlagsLine) {
  EXPECT_EQ(virtualizationFlag(kIntel), "vmx");
  EXPECT_EQ(virtualizationFlag(kAmd), "svm");
  EXPECT_EQ(virtualizationFlag("flags\t\t: svm"), "svm");  // last word, no newline
}

TEST(VirtualizationFlag, IgnoresOtherLinesAndPartialWords) {
  EXPECT_EQ(virtualizationFlag(kNoVirtualization), "");
  EXPECT_EQ(virtualizationFlag("flags\t\t: vmxx svm_lock nosvm\n"), "");
  EXPECT_EQ(virtualizationFlag("model name\t: vmx svm\n"), "");
  EXPECT_EQ(virtualizationFlag(""), "");
}

TEST(DescribeKvmFailure, MissingDeviceWithoutHardwareVirtualization) {
  Error error = describeKvmFailure("/dev/kvm", {Step::Open, ENOENT}, kNoVirtualization);
  EXPECT_EQ(error.code(), ENOENT);
  EXPECT_THAT(error.message(), AllOf(HasSubstr("/dev/kvm does not exist"), HasSubstr("no hardware virtualization"),
                                     HasSubstr("no vmx or svm flag in /proc/cpuinfo"), HasSubstr("VT-x or AMD-V"),
                                     HasSubstr("enable nested virtualization"), HasSubstr("scripts/test.sh"),
                                     HasSubstr("L1 VM under QEMU TCG"), Not(HasSubstr("modprobe"))));
}

TEST(DescribeKvmFailure, MissingDeviceWithHardwareVirtualizationMeansNoModule) {
  Error intel = describeKvmFailure("/dev/kvm", {Step::Open, ENOENT}, kIntel);
  EXPECT_EQ(intel.message(),
            "/dev/kvm does not exist, though the CPU has hardware virtualization (vmx): the KVM module is not "
            "loaded; load it as root with modprobe kvm_intel");
  Error amd = describeKvmFailure("/dev/kvm", {Step::Open, ENOENT}, kAmd);
  EXPECT_THAT(amd.message(), AllOf(HasSubstr("(svm)"), HasSubstr("modprobe kvm_amd")));
}

TEST(DescribeKvmFailure, DeviceNodeWithoutDriver) {
  Error error = describeKvmFailure("/dev/kvm", {Step::Open, ENXIO}, kIntel);
  EXPECT_EQ(error.code(), ENXIO);
  EXPECT_THAT(error.message(), AllOf(HasSubstr("/dev/kvm has no KVM driver behind it (No such device or address)"),
                                     HasSubstr("modprobe kvm_intel")));
}

TEST(DescribeKvmFailure, PermissionSaysHowToGetIt) {
  for (int errnum : {EACCES, EPERM}) {
    Error error = describeKvmFailure("/dev/kvm", {Step::Open, errnum}, kIntel);
    EXPECT_EQ(error.code(), errnum);
    EXPECT_THAT(error.message(), AllOf(HasSubstr("no permission to open /dev/kvm"), HasSubstr("usermod -aG kvm $USER"),
                                       HasSubstr("log in again"), HasSubstr("run vmm as root")));
  }
}

TEST(DescribeKvmFailure, OtherOpenErrorsKeepTheErrno) {
  Error error = describeKvmFailure("/dev/kvm", {Step::Open, EMFILE}, kIntel);
  EXPECT_EQ(error.message(), "open /dev/kvm: Too many open files");
  EXPECT_EQ(error.code(), EMFILE);
}

TEST(DescribeKvmFailure, NotAKvmDevice) {
  Error ioctl = describeKvmFailure("/dev/kvm", {Step::ApiVersion, ENOTTY, -1}, "");
  EXPECT_THAT(ioctl.message(), AllOf(HasSubstr("/dev/kvm is not a usable KVM device"),
                                     HasSubstr("KVM_GET_API_VERSION failed (Inappropriate ioctl for device)")));
  EXPECT_EQ(ioctl.code(), ENOTTY);
  Error version = describeKvmFailure("/dev/kvm", {Step::ApiVersion, 0, 11}, "");
  EXPECT_EQ(version.message(), "/dev/kvm is not a usable KVM device: it reports KVM API version 11, vmm needs 12");
}

TEST(DescribeKvmFailure, CreateVmFailure) {
  Error error = describeKvmFailure("/dev/kvm", {Step::CreateVm, EBUSY}, "");
  EXPECT_THAT(error.message(), AllOf(HasSubstr("KVM_CREATE_VM on /dev/kvm failed (Device or resource busy)"),
                                     HasSubstr("dmesg")));
  EXPECT_EQ(error.code(), EBUSY);
}

TEST(DescribeKvmFailure, NamesTheGivenPath) {
  Error error = describeKvmFailure("/tmp/kvm", {Step::Open, ENOENT}, kAmd);
  EXPECT_THAT(error.message(), HasSubstr("/tmp/kvm does not exist"));
}

}  // namespace
}  // namespace vmmd::kvm
