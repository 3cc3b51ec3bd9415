#include "net/nftables.h"

#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

namespace vmmd::net {
namespace {

// Exit codes of the child below; libnftables' own exit on a failed netlink open is 1.
constexpr int kRefusedWithAnError = 42;
constexpr int kOpenedAnyway = 43;
constexpr int kNoFilter = 44;

// A kernel without nf_tables, as a process sees it: socket(AF_NETLINK, ..., NETLINK_NETFILTER)
// fails with EPROTONOSUPPORT (a seccomp filter in a child says so). Nftables::open() must return
// an error naming the cause; libnftables by itself would exit() the process.
TEST(Nftables, AKernelWithoutNfTablesIsAnErrorNotAnExit) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    scmp_filter_ctx filter = seccomp_init(SCMP_ACT_ALLOW);
    if (!filter || seccomp_rule_add(filter, SCMP_ACT_ERRNO(EPROTONOSUPPORT), SCMP_SYS(socket), 2,
                                    SCMP_A0(SCMP_CMP_EQ, AF_NETLINK), SCMP_A2(SCMP_CMP_EQ, NETLINK_NETFILTER)) != 0 ||
        seccomp_load(filter) != 0) {
      ::_exit(kNoFilter);
    }
    Result<Nftables> nft = Nftables::open();
    if (nft.ok()) ::_exit(kOpenedAnyway);
    std::fprintf(stderr, "%s\n", nft.error().message().c_str());
    bool named = nft.error().message().find("nf_tables") != std::string::npos &&
                 nft.error().message().find("Protocol not supported") != std::string::npos;
    ::_exit(named ? kRefusedWithAnError : kOpenedAnyway);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), kRefusedWithAnError);
}

// Where the kernel has it (every host the net tests run on), the probe passes.
TEST(Nftables, TheProbePassesWhereTheKernelHasNfTables) {
  Status usable = Nftables::netfilterNetlinkAvailable();
  EXPECT_TRUE(usable.ok()) << usable.error().message();
}

}  // namespace
}  // namespace vmmd::net
