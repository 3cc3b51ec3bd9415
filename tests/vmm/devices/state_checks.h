// What every device's saved state must do, for the device tests: a round trip into a fresh device
// gives the same bytes again, and a hostile state (truncated at any byte, garbage, another kind
// or version) is an error, never a crash or a half-loaded device that then saves differently.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "vmm/devices/device_state.h"

namespace vmmd::testing {

// Saves `source`, loads it into `target` (a fresh device) and saves `target`: the same state.
template <typename Source, typename Target>
DeviceState expectRoundTrip(const Source& source, Target& target) {
  auto saved = source.saveState();
  EXPECT_TRUE(saved.ok()) << saved.error().message();
  if (!saved.ok()) return {};
  auto loaded = target.loadState(*saved);
  EXPECT_TRUE(loaded.ok()) << loaded.error().message();
  auto again = target.saveState();
  EXPECT_TRUE(again.ok()) << again.error().message();
  if (!again.ok()) return *saved;
  EXPECT_EQ(again->kind, saved->kind);
  EXPECT_EQ(again->version, saved->version);
  EXPECT_EQ(again->bytes, saved->bytes) << saved->kind << ": the loaded device saves other bytes";
  return *saved;
}

// Every truncation of `good`, a wrong kind, a newer version and bytes of garbage are refused by
// `target` with an error that names something; appended bytes too.
template <typename Target>
void expectHostileStatesRefused(Target& target, const DeviceState& good) {
  for (size_t length = 0; length < good.bytes.size(); ++length) {
    DeviceState truncated{good.kind, good.version, {good.bytes.begin(), good.bytes.begin() + static_cast<long>(length)}};
    auto st = target.loadState(truncated);
    EXPECT_FALSE(st.ok()) << good.kind << " truncated to " << length << " bytes was taken";
  }
  DeviceState longer = good;
  longer.bytes.push_back(0);
  EXPECT_FALSE(target.loadState(longer).ok()) << good.kind << ": a byte left over was taken";
  auto other_kind = target.loadState({good.kind + "-other", good.version, good.bytes});
  ASSERT_FALSE(other_kind.ok());
  EXPECT_NE(other_kind.error().message().find("state is for"), std::string::npos) << other_kind.error().message();
  auto newer = target.loadState({good.kind, good.version + 1, good.bytes});
  ASSERT_FALSE(newer.ok());
  EXPECT_NE(newer.error().message().find("state version"), std::string::npos) << newer.error().message();
  // Garbage of the right kind: whatever it says, never a crash (the loaded fields may be odd).
  uint32_t seed = 12345;
  for (int round = 0; round < 64; ++round) {
    DeviceState garbage{good.kind, good.version, good.bytes};
    for (auto& byte : garbage.bytes) {
      seed = seed * 1103515245 + 12345;
      if ((seed >> 16) % 4 == 0) byte = static_cast<uint8_t>(seed >> 8);
    }
    (void)target.loadState(garbage);
  }
}

}  // namespace vmmd::testing
