// QEMU's "key=value,key=value" option syntax: ",," is a literal comma, and a leading bare word
// may stand for an implied key ("-netdev tap,id=n0" means type=tap; "-cpu host,-cx16" means
// model=host plus a feature flag). Every key must be consumed, so a misspelt key is an error
// rather than silently ignored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace vmmd::config {

class KeyValues {
 public:
  // `option` names the command-line option for error messages ("-chardev").
  // When `implied_key` is non-empty, a first item without '=' is stored under that key.
  static Result<KeyValues> parse(std::string_view option, std::string_view text, std::string_view implied_key = {});

  bool has(std::string_view key) const;
  // Returns and consumes a value.
  std::optional<std::string> take(std::string_view key);
  // on/off, yes/no, true/false; absent → `fallback`.
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

// "512", "512M", "2G", "64k"; a bare number is in units of `default_unit` bytes.
Result<uint64_t> parseSize(std::string_view text, uint64_t default_unit);
Result<uint64_t> parseUnsigned(std::string_view text);

}  // namespace vmmd::config
