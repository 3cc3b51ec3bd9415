// Every phase × event of the VM lifecycle, against a table written out by hand.
#include "daemon/supervisor/vm_lifecycle.h"

#include <gtest/gtest.h>

#include <map>
#include <utility>

namespace vmmd::daemon {
namespace {

using P = VmPhase;
using E = VmEvent;

// The accepted (phase, event) pairs and where they lead, before = kRunning unless said.
// Everything not listed is refused.
const std::map<std::pair<P, E>, VmLifecycle>& expectedTable() {
  static const std::map<std::pair<P, E>, VmLifecycle> table = {
      {{P::kShutoff, E::kLaunched}, {P::kStarting}},
      {{P::kRestartPending, E::kLaunched}, {P::kStarting}},

      {{P::kStarting, E::kGuestRunning}, {P::kRunning}},
      {{P::kRunning, E::kGuestRunning}, {P::kRunning}},
      {{P::kPaused, E::kGuestRunning}, {P::kRunning}},
      {{P::kShuttingDown, E::kGuestRunning}, {P::kShuttingDown}},

      {{P::kStarting, E::kGuestFoundPaused}, {P::kPaused}},
      {{P::kRunning, E::kGuestFoundPaused}, {P::kPaused}},
      {{P::kPaused, E::kGuestFoundPaused}, {P::kPaused}},
      {{P::kShuttingDown, E::kGuestFoundPaused}, {P::kShuttingDown}},

      {{P::kRunning, E::kPaused}, {P::kPaused}},
      {{P::kPaused, E::kResumed}, {P::kRunning}},

      {{P::kRunning, E::kShutdownRequested}, {P::kShuttingDown, P::kRunning}},
      {{P::kPaused, E::kShutdownRequested}, {P::kShuttingDown, P::kPaused}},
      {{P::kShuttingDown, E::kShutdownAbandoned}, {P::kRunning}},

      {{P::kStarting, E::kDestroyRequested}, {P::kDestroying, P::kStarting}},
      {{P::kRunning, E::kDestroyRequested}, {P::kDestroying, P::kRunning}},
      {{P::kPaused, E::kDestroyRequested}, {P::kDestroying, P::kPaused}},
      {{P::kShuttingDown, E::kDestroyRequested}, {P::kDestroying, P::kShuttingDown}},
      {{P::kDestroying, E::kDestroyRequested}, {P::kDestroying}},

      {{P::kShutoff, E::kStopped}, {P::kShutoff}},
      {{P::kStarting, E::kStopped}, {P::kShutoff}},
      {{P::kRunning, E::kStopped}, {P::kShutoff}},
      {{P::kPaused, E::kStopped}, {P::kShutoff}},
      {{P::kShuttingDown, E::kStopped}, {P::kShutoff}},
      {{P::kDestroying, E::kStopped}, {P::kShutoff}},
      {{P::kRestartPending, E::kStopped}, {P::kShutoff}},

      {{P::kStarting, E::kCrashedRestarting}, {P::kRestartPending}},
      {{P::kRunning, E::kCrashedRestarting}, {P::kRestartPending}},
      {{P::kPaused, E::kCrashedRestarting}, {P::kRestartPending}},
      {{P::kRestartPending, E::kCrashedRestarting}, {P::kRestartPending}},

      {{P::kStarting, E::kCrashedKept}, {P::kCrashed}},
      {{P::kRunning, E::kCrashedKept}, {P::kCrashed}},
      {{P::kPaused, E::kCrashedKept}, {P::kCrashed}},
      {{P::kRestartPending, E::kCrashedKept}, {P::kCrashed}},
  };
  return table;
}

TEST(VmLifecycle, EveryPhaseAndEventMatchesTheTable) {
  int accepted = 0;
  for (P phase : kAllPhases) {
    for (E event : kAllEvents) {
      auto next = transition(VmLifecycle{phase}, event);
      auto it = expectedTable().find({phase, event});
      SCOPED_TRACE(std::string(toString(phase)) + " + " + std::string(toString(event)));
      if (it == expectedTable().end()) {
        EXPECT_FALSE(next) << "accepted, to " << toString(next->phase);
        continue;
      }
      ++accepted;
      ASSERT_TRUE(next) << "refused";
      EXPECT_EQ(next->phase, it->second.phase);
      // `before` matters only while a stop is in progress (shutting-down keeps its own).
      if (next->phase == P::kDestroying || (next->phase == P::kShuttingDown && phase != P::kShuttingDown)) {
        EXPECT_EQ(next->before, it->second.before);
      }
    }
  }
  EXPECT_EQ(accepted, static_cast<int>(expectedTable().size()));
}

TEST(VmLifecycle, AnAbandonedShutdownReturnsWhereItCameFrom) {
  for (P from : {P::kRunning, P::kPaused}) {
    auto down = transition(VmLifecycle{from}, E::kShutdownRequested);
    ASSERT_TRUE(down);
    auto back = transition(*down, E::kShutdownAbandoned);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->phase, from);
  }
}

TEST(VmLifecycle, VisibleStatesAreTheSixWireStates) {
  EXPECT_EQ(visibleState({P::kShutoff}), VmState::kShutoff);
  EXPECT_EQ(visibleState({P::kStarting}), VmState::kStarting);
  EXPECT_EQ(visibleState({P::kRunning}), VmState::kRunning);
  EXPECT_EQ(visibleState({P::kPaused}), VmState::kPaused);
  EXPECT_EQ(visibleState({P::kShuttingDown}), VmState::kShuttingDown);
  EXPECT_EQ(visibleState({P::kRestartPending}), VmState::kCrashed);
  EXPECT_EQ(visibleState({P::kCrashed}), VmState::kCrashed);
  // A VM being destroyed shows where it was until its worker is gone.
  EXPECT_EQ(visibleState({P::kDestroying, P::kPaused}), VmState::kPaused);
  EXPECT_EQ(visibleState({P::kDestroying, P::kShuttingDown}), VmState::kShuttingDown);
  EXPECT_EQ(visibleState({P::kDestroying, P::kStarting}), VmState::kStarting);
}

TEST(VmLifecycle, RecordedStatesComeBackAsThePhaseOfTheSameName) {
  for (VmState state : {VmState::kShutoff, VmState::kStarting, VmState::kRunning, VmState::kPaused,
                        VmState::kShuttingDown, VmState::kCrashed}) {
    EXPECT_EQ(visibleState(lifecycleOf(state)), state) << toString(state);
  }
}

}  // namespace
}  // namespace vmmd::daemon
