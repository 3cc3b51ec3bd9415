#include "daemon/definition/libvirt_xml_element.h"

#include "daemon/definition/libvirt_xml_document.h"

namespace vmmd::daemon::xml {
namespace {

bool isElement(const xmlNode* node) { return node->type == XML_ELEMENT_NODE; }
bool named(const xmlNode* node, std::string_view name) { return viewOf(node->name) == name; }
bool named(const xmlAttr* attr, std::string_view name) { return viewOf(attr->name) == name; }

std::string joined(std::initializer_list<std::string_view> words) {
  std::string text;
  size_t i = 0;
  for (std::string_view word : words) {
    if (i > 0) text += i + 1 == words.size() ? " or " : ", ";
    text += word;
    ++i;
  }
  return text;
}

}  // namespace

std::string ElementReader::path() const { return nodePath(node_); }

std::string ElementReader::attributePath(std::string_view name) const { return path() + "/@" + std::string(name); }

Error ElementReader::error(std::string_view message) const { return Error(path() + ": " + std::string(message)); }

Error ElementReader::attributeError(std::string_view name, std::string_view message) const {
  return Error(attributePath(name) + ": " + std::string(message));
}

std::optional<std::string> ElementReader::attribute(std::string_view name) {
  for (const xmlAttr* attr = node_->properties; attr; attr = attr->next) {
    if (attr->ns || !named(attr, name)) continue;
    taken_.insert(attr);
    CharPtr value(xmlNodeListGetString(node_->doc, attr->children, 1));
    return std::string(viewOf(value.get()));
  }
  return std::nullopt;
}

Result<std::string> ElementReader::requiredAttribute(std::string_view name) {
  auto value = attribute(name);
  if (!value) return attributeError(name, "required");
  return std::move(*value);
}

Status ElementReader::expectAttribute(std::string_view name, std::initializer_list<std::string_view> allowed) {
  auto value = attribute(name);
  if (!value) return {};
  for (std::string_view ok : allowed) {
    if (*value == ok) return {};
  }
  return attributeError(name, "'" + *value + "' is not supported by vmm (only " + joined(allowed) + ")");
}

std::vector<const xmlNode*> ElementReader::children(std::string_view name) {
  std::vector<const xmlNode*> found;
  for (const xmlNode* child = node_->children; child; child = child->next) {
    if (!isElement(child) || child->ns || !named(child, name)) continue;
    taken_.insert(child);
    found.push_back(child);
  }
  return found;
}

Result<const xmlNode*> ElementReader::optionalChild(std::string_view name) {
  auto found = children(name);
  if (found.empty()) return static_cast<const xmlNode*>(nullptr);
  if (found.size() > 1) return Error(nodePath(found[1]) + ": more than one <" + std::string(name) + ">");
  return found[0];
}

Result<const xmlNode*> ElementReader::requiredChild(std::string_view name) {
  auto found = optionalChild(name);
  if (!found) return found.error();
  if (!*found) return Error(path() + "/" + std::string(name) + ": required");
  return *found;
}

std::vector<const xmlNode*> ElementReader::childrenInNamespace(std::string_view uri) {
  std::vector<const xmlNode*> found;
  for (const xmlNode* child = node_->children; child; child = child->next) {
    if (!isElement(child) || !child->ns || viewOf(child->ns->href) != uri) continue;
    taken_.insert(child);
    found.push_back(child);
  }
  return found;
}

void ElementReader::ignoreOtherNamespaces(std::string_view uri) {
  for (const xmlNode* child = node_->children; child; child = child->next) {
    if (isElement(child) && child->ns && viewOf(child->ns->href) != uri) taken_.insert(child);
  }
}

void ElementReader::ignoreChildren(std::initializer_list<std::string_view> names) {
  for (std::string_view name : names) children(name);
}

void ElementReader::ignoreAttributes(std::initializer_list<std::string_view> names) {
  for (std::string_view name : names) attribute(name);
}

void ElementReader::ignoreEverything() { all_taken_ = true; }

Status ElementReader::refuseRest() const {
  if (all_taken_) return {};
  for (const xmlNode* child = node_->children; child; child = child->next) {
    if (isElement(child) && !taken_.count(child)) return Error(nodePath(child) + ": not supported by vmm");
  }
  for (const xmlAttr* attr = node_->properties; attr; attr = attr->next) {
    if (!taken_.count(attr)) return Error(xml::attributePath(attr) + ": not supported by vmm");
  }
  return {};
}

}  // namespace vmmd::daemon::xml
