#include "vmm/monitor/event_throttle.h"

#include <array>
#include <utility>

namespace vmmd {

std::optional<EventThrottle::Rule> EventThrottle::ruleFor(std::string_view event) {
  using std::chrono::milliseconds;
  // "Limit guest-triggerable events to 1 per second" (QEMU's monitor_qapi_event_conf); keys from
  // its qapi_event_throttle_hash/equal.
  static constexpr std::array<std::pair<std::string_view, Rule>, 7> kRules{{
      {"RTC_CHANGE", {milliseconds(1000), nullptr}},
      {"WATCHDOG", {milliseconds(1000), nullptr}},
      {"BALLOON_CHANGE", {milliseconds(1000), nullptr}},
      {"QUORUM_REPORT_BAD", {milliseconds(1000), "node-name"}},
      {"QUORUM_FAILURE", {milliseconds(1000), nullptr}},
      {"VSERPORT_CHANGE", {milliseconds(1000), "id"}},
      {"MEMORY_DEVICE_SIZE_CHANGE", {milliseconds(1000), "qom-path"}},
  }};
  for (const auto& [name, rule] : kRules) {
    if (name == event) return rule;
  }
  return std::nullopt;
}

bool EventThrottle::admit(const std::string& key, std::string line) {
  auto [window, opened] = windows_.try_emplace(key);
  if (opened) return true;
  window->second = std::move(line);
  return false;
}

std::optional<std::string> EventThrottle::windowEnded(const std::string& key) {
  auto window = windows_.find(key);
  if (window == windows_.end()) return std::nullopt;
  if (!window->second) {
    windows_.erase(window);
    return std::nullopt;
  }
  return std::exchange(window->second, std::nullopt);
}

}  // namespace vmmd
