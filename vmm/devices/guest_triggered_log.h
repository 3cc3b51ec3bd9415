// Log lines a guest can cause at will, e.g. a driver that breaks its device, resets it and breaks
// it again in a loop: of each source's messages only the 1st, 2nd, 4th, 8th... are written (with
// their number), so N of them cost about log2(N) lines of the worker's log, not N.
#pragma once

#include <bit>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/log.h"

namespace vmmd {

class GuestTriggeredLog {
 public:
  void error(std::string_view message) {
    ++count_;
    if (!std::has_single_bit(count_)) return;
    std::string line(message);
    if (count_ > 1) line += " (message " + std::to_string(count_) + " of its kind; the next at " + std::to_string(count_ * 2) + ")";
    log::error(line);
  }
  uint64_t count() const { return count_; }

 private:
  uint64_t count_ = 0;
};

}  // namespace vmmd
