#include "daemon/definition/libvirt_xml_document.h"

#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlsave.h>

#include <climits>
#include <mutex>

namespace vmmd::daemon::xml {
namespace {

struct ParserCtxtDeleter {
  void operator()(xmlParserCtxt* ctxt) const { xmlFreeParserCtxt(ctxt); }
};
struct BufferDeleter {
  void operator()(xmlBuffer* buffer) const { xmlBufferFree(buffer); }
};

// NONET: never fetch anything. Absent on purpose: NOENT (substitute entities), DTDLOAD, DTDATTR,
// DTDVALID, XINCLUDE and HUGE (which would lift the depth and size limits). NOERROR/NOWARNING
// keep libxml2 off stderr: the error comes back as a value.
constexpr int kParseOptions = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;

// What the DOCTYPE hook reports back through the parser context's _private pointer.
struct ParseState {
  bool doctype = false;
};

// A domain document never has a DOCTYPE. Stopping here, before the internal subset is parsed,
// means entity declarations (billion laughs, external entities) are never even read.
void refuseDoctype(void* ctx, const xmlChar*, const xmlChar*, const xmlChar*) {
  auto* ctxt = static_cast<xmlParserCtxt*>(ctx);
  static_cast<ParseState*>(ctxt->_private)->doctype = true;
  xmlStopParser(ctxt);
}

std::string trimmedMessage(const char* message) {
  std::string text = message ? message : "malformed XML";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

void initOnce() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

}  // namespace

Result<DocPtr> parseDocument(std::string_view text, size_t max_bytes) {
  if (text.size() > max_bytes) return Error("larger than " + std::to_string(max_bytes / 1024) + " KiB");
  if (text.size() > static_cast<size_t>(INT_MAX)) return Error("too large");
  initOnce();
  std::unique_ptr<xmlParserCtxt, ParserCtxtDeleter> ctxt(xmlNewParserCtxt());
  if (!ctxt) return Error("cannot allocate an XML parser");
  ParseState state;
  ctxt->_private = &state;
  ctxt->sax->internalSubset = refuseDoctype;
  DocPtr doc(xmlCtxtReadMemory(ctxt.get(), text.data(), static_cast<int>(text.size()), nullptr, nullptr, kParseOptions));
  if (state.doctype) return Error("a DOCTYPE is not allowed (a domain XML has none; its entities are not read)");
  if (!doc || !ctxt->wellFormed) {
    const xmlError* error = xmlCtxtGetLastError(ctxt.get());
    if (!error) return Error("malformed XML");
    return Error("line " + std::to_string(error->line) + ", column " + std::to_string(error->int2) + ": " +
                 trimmedMessage(error->message));
  }
  return doc;
}

Result<std::string> formatDocument(xmlDoc* doc) {
  std::unique_ptr<xmlBuffer, BufferDeleter> buffer(xmlBufferCreate());
  if (!buffer) return Error("cannot allocate an XML buffer");
  xmlSaveCtxt* save = xmlSaveToBuffer(buffer.get(), "UTF-8", XML_SAVE_FORMAT | XML_SAVE_NO_DECL);
  if (!save) return Error("cannot start the XML writer");
  long written = xmlSaveDoc(save, doc);
  // xmlSaveClose flushes into the buffer and frees the writer; it must run even after a failure.
  if (xmlSaveClose(save) < 0 || written < 0) return Error("cannot write the XML document");
  return std::string(reinterpret_cast<const char*>(xmlBufferContent(buffer.get())),
                     static_cast<size_t>(xmlBufferLength(buffer.get())));
}

std::string nodePath(const xmlNode* node) {
  CharPtr path(xmlGetNodePath(node));
  return path ? std::string(viewOf(path.get())) : std::string("?");
}

std::string attributePath(const xmlAttr* attribute) {
  return nodePath(attribute->parent) + "/@" + std::string(viewOf(attribute->name));
}

std::string textOf(const xmlNode* node) {
  CharPtr text(xmlNodeGetContent(node));
  return std::string(viewOf(text.get()));
}

}  // namespace vmmd::daemon::xml
