// Rate limits for guest-triggerable QMP events, as QEMU's monitor applies them
// (monitor/monitor.c: monitor_qapi_event_conf and monitor_qapi_event_queue_no_reenter): the first
// event of a kind (and, for some kinds, of one key such as a port id) goes out at once and opens
// a window of `period`; events arriving in the window are held, each replacing the one held
// before, and the last one goes out when the window ends, opening a new window. A window that
// ends with nothing held closes. A guest that opens and closes a port in a loop so sends vmmd
// at most one VSERPORT_CHANGE per port and second, the last state always arriving.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace vmmd {

class EventThrottle {
 public:
  struct Rule {
    std::chrono::milliseconds period;
    const char* key_member;  // the data member whose value keys the throttle, or nullptr
  };
  // QEMU 7.2's table; nullopt for events sent unthrottled (BLOCK_IO_ERROR among them: QEMU does
  // not throttle it, and vmm sends it only for the host's own I/O errors).
  static std::optional<Rule> ruleFor(std::string_view event);

  // An event to send under `key` (the event's name and its key member's value): true when it
  // goes out now, which opens a window the caller times and ends with windowEnded(); false when
  // it is held until then.
  bool admit(const std::string& key, std::string line);
  // The window of `key` is over: the held line to send now (the caller opens a new window), or
  // nullopt when nothing was held (the window closes; the next event goes out at once).
  std::optional<std::string> windowEnded(const std::string& key);
  size_t openWindows() const { return windows_.size(); }

 private:
  std::map<std::string, std::optional<std::string>> windows_;  // key -> line held
};

}  // namespace vmmd
