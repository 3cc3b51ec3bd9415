// An InterruptLine whose level changes are recorded, for the device tests.
#pragma once

#include <memory>
#include <vector>

#include "vmm/platform/interrupt_line.h"

namespace vmmd::testing {

struct RecordedLine {
  std::shared_ptr<std::vector<bool>> levels = std::make_shared<std::vector<bool>>();
  uint32_t gsi;

  explicit RecordedLine(uint32_t gsi_number) : gsi(gsi_number) {}
  InterruptLine line() const {
    auto record = levels;
    uint32_t expected_gsi = gsi;
    return InterruptLine(gsi, [record, expected_gsi](uint32_t g, bool level) {
      if (g == expected_gsi) record->push_back(level);
    });
  }
  bool level() const { return !levels->empty() && levels->back(); }
  size_t changes() const { return levels->size(); }
};

}  // namespace vmmd::testing
