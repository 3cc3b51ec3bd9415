// The real worker (vmm/main.cpp is compiled into this test binary) plus one thread that breaks
// the rules: once the worker has confined itself (-sandbox on) and had time to be seen running,
// the thread narrows itself to the I/O pool's role, as pool threads do, and calls socket(2),
// which that role forbids. The real filter kills the worker; seccomp_report.py checks that vmmd
// says which call. vmm itself has no such trigger: this file is only in the test binary.
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "vmm/sandbox/sandbox.h"

namespace {

constexpr auto kSeenRunning = std::chrono::seconds(2);

// Started before main(), so it exists when the process filter is synchronised onto every thread.
const bool violator_started = [] {
  std::thread([] {
    while (!vmmd::sandbox::active()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(kSeenRunning);
    if (vmmd::sandbox::confineThread(vmmd::sandbox::Role::Io)) (void)::socket(AF_INET, SOCK_STREAM, 0);
  }).detach();
  return true;
}();

}  // namespace
