// Reads one element of a domain XML the way JsonObjectReader reads a JSON object: every child
// element and attribute that the caller takes or explicitly ignores is marked, and whatever is
// left is refused with its path ("/domain/devices/graphics: not supported by vmm"). So a new
// libvirt element is refused by default, never silently dropped. Internal to the XML import.
#pragma once

#include <libxml/tree.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "base/result.h"

namespace vmmd::daemon::xml {

class ElementReader {
 public:
  explicit ElementReader(const xmlNode* node) : node_(node) {}

  const xmlNode* node() const { return node_; }
  std::string path() const;
  std::string attributePath(std::string_view name) const;
  Error error(std::string_view message) const;
  Error attributeError(std::string_view name, std::string_view message) const;

  // An attribute without a namespace; taken (marked as read) when present.
  std::optional<std::string> attribute(std::string_view name);
  Result<std::string> requiredAttribute(std::string_view name);
  // Takes the attribute; absent is fine, any other value than one of `allowed` is refused.
  Status expectAttribute(std::string_view name, std::initializer_list<std::string_view> allowed);

  // Child elements without a namespace, in document order; all taken.
  std::vector<const xmlNode*> children(std::string_view name);
  // At most one such child (a second one is refused); nullptr when absent.
  Result<const xmlNode*> optionalChild(std::string_view name);
  Result<const xmlNode*> requiredChild(std::string_view name);
  // Child elements in namespace `uri`; all taken.
  std::vector<const xmlNode*> childrenInNamespace(std::string_view uri);
  // Child elements in any namespace other than `uri` (foreign application metadata); all taken.
  void ignoreOtherNamespaces(std::string_view uri);

  // Accepted and ignored: what libvirt itself adds (addresses, aliases, placement...).
  void ignoreChildren(std::initializer_list<std::string_view> names);
  void ignoreAttributes(std::initializer_list<std::string_view> names);
  // Everything inside: an element that is accepted and ignored as a whole.
  void ignoreEverything();

  // Refuses the first child element, then the first attribute, that nobody took.
  Status refuseRest() const;

  // Reads the child `name` if there is one (a second is refused) with `read(ElementReader&)`,
  // which returns a Status, then refuses what `read` left in it.
  template <typename Read>
  Status withChild(std::string_view name, Read&& read) {
    auto node = optionalChild(name);
    if (!node) return node.error();
    if (!*node) return {};
    return readWhole(*node, read);
  }
  // The same for a child that must be there: "PATH/NAME: required (WHY)" when it is not.
  template <typename Read>
  Status withRequiredChild(std::string_view name, Read&& read, std::string_view why = {}) {
    auto node = optionalChild(name);
    if (!node) return node.error();
    if (!*node) return Error(path() + "/" + std::string(name) + ": required" + (why.empty() ? "" : " (" + std::string(why) + ")"));
    return readWhole(*node, read);
  }
  // The same for every child `name`, in document order.
  template <typename Read>
  Status withChildren(std::string_view name, Read&& read) {
    for (const xmlNode* node : children(name)) {
      if (auto st = readWhole(node, read); !st) return st;
    }
    return {};
  }

 private:
  template <typename Read>
  static Status readWhole(const xmlNode* node, Read& read) {
    ElementReader element(node);
    if (auto st = read(element); !st) return st;
    return element.refuseRest();
  }

  const xmlNode* node_;
  std::unordered_set<const void*> taken_;
  bool all_taken_ = false;
};

}  // namespace vmmd::daemon::xml
