// libxml2 underneath the domain-XML import and export: RAII owners for its objects, the hardened
// parse and the serialiser. Internal to libvirt_xml_*.cpp.
#pragma once

#include <libxml/tree.h>

#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"

namespace vmmd::daemon::xml {

struct DocDeleter {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};
struct CharDeleter {
  void operator()(xmlChar* text) const { xmlFree(text); }
};
using DocPtr = std::unique_ptr<xmlDoc, DocDeleter>;
using CharPtr = std::unique_ptr<xmlChar, CharDeleter>;

// Parses `text` as a standalone document: no network, no DTD (a DOCTYPE is refused before its
// declarations are read, so no entity can expand or load), no XInclude, at most `max_bytes`, and
// libxml2's default depth limit. Errors: "line 3, column 7: Opening and ending tag mismatch ...".
Result<DocPtr> parseDocument(std::string_view text, size_t max_bytes);

// The whole document, formatted with two-space indents, without the XML declaration.
Result<std::string> formatDocument(xmlDoc* doc);

// libxml2's path of a node, e.g. "/domain/devices/disk[2]" or "/domain/os/type/@machine".
std::string nodePath(const xmlNode* node);
std::string attributePath(const xmlAttr* attribute);

// The text inside an element (its descendants' text, concatenated).
std::string textOf(const xmlNode* node);

inline const xmlChar* xmlText(std::string_view text) { return reinterpret_cast<const xmlChar*>(text.data()); }
inline std::string_view viewOf(const xmlChar* text) {
  return text ? std::string_view(reinterpret_cast<const char*>(text)) : std::string_view();
}

}  // namespace vmmd::daemon::xml
