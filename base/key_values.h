// QEMU's "key=value,key=value" option syntax: ",," is a literal comma, and a leading bare word
// may stand for an implied key ("-netdev tap,id=n0" means type=tap; "-cpu host,-cx16" means
// model=host plus a feature flag). Every key must be consumed, so a misspelt key is an error
// rather than silently ignored. The values themselves are read with base/parse.h. Used by vmm's
// command line and -device properties, and by vmm-img's -o.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace vmmd {

class KeyValues {
 public:
  // `option` names the command-line option for error messages ("-chardev").
  // When `implied_key` is non-empty, a first item without '=' is stored under that key.
  static Result<KeyValues> parse(std::string_view option, std::string_view text, std::string_view implied_key = {});
  // Pairs already split (a -device's properties), to be taken and finished the same way.
  static KeyValues fromPairs(std::string_view option, const std::map<std::string, std::string>& pairs);

  bool has(std::string_view key) const;
  // Returns and consumes a value.
  std::optional<std::string> take(std::string_view key);
  // parseOnOff's on/off, yes/no, true/false, y/n; absent → `fallback`.
  Result<bool> takeBool(std::string_view key, bool fallback);
  // Items without '=' (like "+cx16" in -cpu), consumed.
  std::vector<std::string> takeFlags();
  // Every key=value pair not yet taken, consumed (for options whose keys are open-ended).
  std::vector<std::pair<std::string, std::string>> takeRemaining();
  // Fails naming the first key nobody took.
  Status finish() const;

  const std::string& option() const { return option_; }

 private:
  struct Item {
    std::string key;  // empty for a bare flag
    std::string value;
    bool taken = false;
  };
  std::string option_;
  std::vector<Item> items_;
};

}  // namespace vmmd
