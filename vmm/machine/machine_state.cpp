#include "vmm/machine/machine_state.h"

namespace vmmd {

const SectionState* MachineState::find(const std::string& id) const {
  for (const auto& section : sections) {
    if (section.id == id) return &section;
  }
  return nullptr;
}

std::vector<uint8_t> encodeMachineState(const MachineState& state) {
  StateWriter out;
  out.u32(static_cast<uint32_t>(state.sections.size()));
  for (const auto& section : state.sections) {
    out.string(section.id);
    out.state(section.state);
  }
  return out.take();
}

Result<MachineState> decodeMachineState(std::span<const uint8_t> bytes) {
  StateReader in(bytes);
  uint32_t count = in.u32();
  MachineState state;
  // Each section takes at least 16 bytes (three lengths and a version): a count the input cannot
  // hold is refused before anything is reserved for it.
  if (count > bytes.size() / 16) in.reject(std::to_string(count) + " sections in " + std::to_string(bytes.size()) + " bytes");
  for (uint32_t i = 0; i < count && !in.failed(); ++i) {
    SectionState section;
    section.id = in.string();
    section.state = in.state();
    state.sections.push_back(std::move(section));
  }
  if (auto st = in.finish("machine state"); !st) return st.error();
  return state;
}

}  // namespace vmmd
