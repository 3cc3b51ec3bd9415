// Incremental JSON reader with QEMU 7.2's framing and error behaviour.
//
// Feed it whatever bytes arrive (an object split across reads, several objects in one read;
// whitespace and CRLF between values are ignored) and it calls the sink once per complete
// top-level value, or once per error with QEMU's wording ("JSON parse error, expecting value",
// "JSON token size limit exceeded", ...). After an error it resynchronises as QEMU does, so a
// session keeps working. Memory is bounded by `maxMessageBytes` (QEMU: 64 MiB) plus the token
// index; a bigger message is answered with one or more errors, never buffered whole.
// Used by qmp::Session (server side) and by both clients; owners never call the parser directly.
//
//   JsonStreamReader reader([&](Result<Json>&& v) { ... });
//   reader.feed(bytesJustRead);
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "qmp/json.h"

namespace vmmd::qmp {

class JsonStreamReader {
 public:
  static constexpr size_t kDefaultMaxMessageBytes = size_t{64} << 20;  // QEMU's MAX_TOKEN_SIZE
  static constexpr size_t kMaxTokens = size_t{2} << 20;                // QEMU's MAX_TOKEN_COUNT
  static constexpr int kMaxNesting = 1024;                             // QEMU's MAX_NESTING

  using Sink = std::function<void(Result<Json>&&)>;

  // `maxTokens` bounds the token index (16 bytes a token) as `maxMessageBytes` bounds the text.
  explicit JsonStreamReader(Sink sink, size_t maxMessageBytes = kDefaultMaxMessageBytes, size_t maxTokens = kMaxTokens);

  void feed(std::string_view bytes);
  // End of input: flushes a pending scalar/keyword and reports an unfinished value.
  void finish();
  // Drops any partial message (e.g. when a connection is reused).
  void reset();

  // Bytes currently held for an unfinished message (for tests and accounting).
  size_t bufferedBytes() const { return text_.size() + token_.size(); }

  enum class TokenType : uint8_t { LCurly, RCurly, LSquare, RSquare, Colon, Comma, Integer, Float, Keyword, String };
  struct Token {
    TokenType type;
    uint32_t length;
    size_t offset;  // into the message text
  };

 private:
  enum class State : uint8_t {
    Start, Recovery,
    DqString, DqEscape, DqHex,
    SqString, SqEscape, SqHex,
    Minus, Zero, IntDigits, Dot, FracDigits, ExpE, ExpSign, ExpDigits,
    Keyword,
  };
  void feedByte(unsigned char c);
  void reserveFor(std::string& buffer, size_t extra) const;
  void appendToToken(unsigned char c) {
    if (token_.size() == token_.capacity()) reserveFor(token_, 1);
    token_ += static_cast<char>(c);
  }
  void emitToken(TokenType type);
  void emitLexError();
  void emitTokenTooLong();
  void emitError(std::string message);
  void parseAndEmit();
  void clearMessage();

  Sink sink_;
  size_t maxMessageBytes_;
  size_t maxTokens_;
  State state_ = State::Start;
  int hexLeft_ = 0;
  std::string token_;          // the token being lexed
  std::string text_;           // texts of the tokens of the current message, back to back
  std::vector<Token> tokens_;  // index into text_
  int braces_ = 0;
  int brackets_ = 0;
};

}  // namespace vmmd::qmp
