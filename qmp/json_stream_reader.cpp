// The lexer follows QEMU's json-lexer grammar (RFC 8259 plus 'single-quoted' strings; a byte
// that cannot continue a token is an error and the lexer skips to the next structural or control
// character), the streamer QEMU's json-streamer (a message ends when its braces and brackets
// balance; limits on size, token count and nesting), the parser QEMU's json-parser messages.
#include "qmp/json_stream_reader.h"

#include "qmp/utf8.h"

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <algorithm>
#include <unordered_set>

namespace vmmd::qmp {
namespace {

using TokenType = JsonStreamReader::TokenType;

bool isDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool isHex(unsigned char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

void appendUtf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Token text quoted in an error message. QEMU quotes it whole; beyond a few KiB (only ever
// reached by hostile input) we cut it, so a huge bogus token cannot turn into a huge reply.
std::string quotedForMessage(std::string_view token) {
  constexpr size_t kMax = 4096;
  if (token.size() <= kMax) return std::string(token);
  return std::string(token.substr(0, kMax)) + "...";
}

class TokenParser {
 public:
  struct Tok {
    TokenType type;
    std::string_view text;
  };

  TokenParser(const std::vector<JsonStreamReader::Token>& toks, std::string_view text, Json& doc)
      : toks_(toks), text_(text), doc_(doc), alloc_(doc.GetAllocator()) {}

  Result<Json> run() {
    if (!parseValue(doc_) || !error_.empty()) return Error("JSON parse error, " + error_);
    return std::move(doc_);
  }

 private:
  void fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }
  const Tok* peek() {
    if (pos_ >= toks_.size()) return nullptr;
    const auto& t = toks_[pos_];
    current_ = Tok{t.type, text_.substr(t.offset, t.length)};
    return &current_;
  }
  const Tok* pop() {
    const Tok* t = peek();
    if (t) ++pos_;
    return t;
  }

  bool parseValue(JsonValue& out) {
    const Tok* t = peek();
    if (!t) {
      fail("premature EOI");
      return false;
    }
    switch (t->type) {
      case TokenType::LCurly: return parseObject(out);
      case TokenType::LSquare: return parseArray(out);
      case TokenType::String: ++pos_; return parseString(t->text, out);
      case TokenType::Integer: ++pos_; parseInteger(t->text, out); return true;
      case TokenType::Float: ++pos_; out.SetDouble(parseDouble(t->text)); return true;
      case TokenType::Keyword: ++pos_; return parseKeyword(t->text, out);
      default:
        fail("expecting value");
        return false;
    }
  }

  // Both object and array: open token, then either the close token or items separated by
  // commas; QEMU's messages for each way this goes wrong.
  template <typename ParseItem>
  bool parseSequence(TokenType close, const char* separatorError, ParseItem parseItem) {
    pop();
    const Tok* t = peek();
    if (!t) {
      fail("premature EOI");
      return false;
    }
    if (t->type == close) {
      pop();
      return true;
    }
    for (;;) {
      if (!parseItem()) return false;
      t = pop();
      if (!t) {
        fail("premature EOI");
        return false;
      }
      if (t->type == close) return true;
      if (t->type != TokenType::Comma) {
        fail(separatorError);
        return false;
      }
    }
  }

  bool parseObject(JsonValue& out) {
    out.SetObject();
    std::unordered_set<std::string> bigKeys;  // only for objects too large for linear search
    return parseSequence(TokenType::RCurly, "expected separator in dict", [&] { return parsePair(out, bigKeys); });
  }

  bool parseArray(JsonValue& out) {
    out.SetArray();
    return parseSequence(TokenType::RSquare, "expected separator in list", [&] {
      JsonValue element;
      if (!parseValue(element)) {
        fail("expecting value");
        return false;
      }
      out.PushBack(element, alloc_);
      return true;
    });
  }

  bool parsePair(JsonValue& object, std::unordered_set<std::string>& bigKeys) {
    JsonValue key;
    if (!parseValue(key)) return false;
    if (!key.IsString()) {
      fail("key is not a string in object");
      return false;
    }
    const Tok* t = pop();
    if (!t) {
      fail("premature EOI");
      return false;
    }
    if (t->type != TokenType::Colon) {
      fail("missing : in object pair");
      return false;
    }
    JsonValue value;
    if (!parseValue(value)) {
      fail("Missing value in dict");
      return false;
    }
    constexpr rapidjson::SizeType kLinearLimit = 32;
    std::string_view name(key.GetString(), key.GetStringLength());
    bool duplicate;
    if (object.MemberCount() < kLinearLimit) {
      duplicate = object.FindMember(key) != object.MemberEnd();
    } else {
      if (bigKeys.empty()) {
        for (const auto& m : object.GetObject()) bigKeys.emplace(m.name.GetString(), m.name.GetStringLength());
      }
      duplicate = !bigKeys.emplace(name).second;
    }
    if (duplicate) {
      fail("duplicate key");
      return false;
    }
    object.AddMember(key, value, alloc_);
    return true;
  }

  // The lexer guarantees the token is well formed: quotes around, valid escapes, 4 hex digits.
  bool parseString(std::string_view tok, JsonValue& out) {
    char quote = tok[0];
    scratch_.clear();
    size_t i = 1;
    while (i < tok.size() && tok[i] != quote) {
      if (tok[i] == '\\') {
        size_t begin = i;
        char e = tok[i + 1];
        i += 2;
        switch (e) {
          case 'b': scratch_ += '\b'; continue;
          case 'f': scratch_ += '\f'; continue;
          case 'n': scratch_ += '\n'; continue;
          case 'r': scratch_ += '\r'; continue;
          case 't': scratch_ += '\t'; continue;
          case 'u': break;
          default: scratch_ += e; continue;  // " ' \ /
        }
        long cp = hex4(tok, i);
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < tok.size() && tok[i] == '\\' && tok[i + 1] == 'u') {
          long trailing = hex4(tok, i + 2);
          if (trailing >= 0xDC00 && trailing <= 0xDFFF) {
            cp = 0x10000 + ((cp & 0x3FF) << 10) + (trailing & 0x3FF);
            i += 6;
          } else {
            cp = -1;
          }
        }
        if (!isValidCodePoint(cp)) {
          fail(std::string(tok.substr(begin, i - begin)) + " is not a valid Unicode character");
          return false;
        }
        appendUtf8(scratch_, static_cast<unsigned>(cp));
        continue;
      }
      long cp = decodeUtf8(tok, i);
      if (cp < 0) {
        fail("invalid UTF-8 sequence in string");
        return false;
      }
      appendUtf8(scratch_, static_cast<unsigned>(cp));
    }
    out.SetString(scratch_.data(), static_cast<rapidjson::SizeType>(scratch_.size()), alloc_);
    return true;
  }

  static long hex4(std::string_view tok, size_t at) {
    if (at + 4 > tok.size()) return -1;
    long v = 0;
    for (size_t k = 0; k < 4; ++k) {
      if (!isHex(static_cast<unsigned char>(tok[at + k]))) return -1;
      v = v * 16 + hexValue(tok[at + k]);
    }
    return v;
  }

  // As QEMU: int64 when it fits, else uint64, else double.
  static void parseInteger(std::string_view tok, JsonValue& out) {
    int64_t i64;
    auto r = std::from_chars(tok.data(), tok.data() + tok.size(), i64);
    if (r.ec == std::errc()) {
      out.SetInt64(i64);
      return;
    }
    if (tok[0] != '-') {
      uint64_t u64;
      r = std::from_chars(tok.data(), tok.data() + tok.size(), u64);
      if (r.ec == std::errc()) {
        out.SetUint64(u64);
        return;
      }
    }
    out.SetDouble(parseDouble(tok));
  }

  static double parseDouble(std::string_view tok) {
    std::string copy(tok);
    return std::strtod(copy.c_str(), nullptr);
  }

  bool parseKeyword(std::string_view tok, JsonValue& out) {
    if (tok == "true") {
      out.SetBool(true);
    } else if (tok == "false") {
      out.SetBool(false);
    } else if (tok == "null") {
      out.SetNull();
    } else {
      fail("invalid keyword '" + quotedForMessage(tok) + "'");
      return false;
    }
    return true;
  }

  const std::vector<JsonStreamReader::Token>& toks_;
  std::string_view text_;
  Tok current_{};
  Json& doc_;
  Json::AllocatorType& alloc_;
  size_t pos_ = 0;
  std::string error_;
  std::string scratch_;
};

}  // namespace

JsonStreamReader::JsonStreamReader(Sink sink, size_t maxMessageBytes, size_t maxTokens)
    : sink_(std::move(sink)), maxMessageBytes_(maxMessageBytes), maxTokens_(maxTokens) {}

void JsonStreamReader::feed(std::string_view bytes) {
  for (char ch : bytes) feedByte(static_cast<unsigned char>(ch));
}

// Grows `buffer` for `extra` more bytes. Past half the message limit it jumps straight to the
// limit, so that holding a message at the limit peaks at 1.5 times the limit (old copy + new
// buffer) instead of plain doubling's overshoot; untouched reserved pages cost nothing.
void JsonStreamReader::reserveFor(std::string& buffer, size_t extra) const {
  size_t needed = buffer.size() + extra;
  if (needed <= buffer.capacity()) return;
  size_t grown = std::max(needed, buffer.capacity() * 2);
  if (grown > maxMessageBytes_ / 2) grown = std::max(needed, maxMessageBytes_ + 1);
  buffer.reserve(grown);
}

void JsonStreamReader::feedByte(unsigned char c) {
  // Each case either consumes `c` (return) or ends the pending token and re-examines `c` in
  // the start state (continue).
  for (;;) {
    switch (state_) {
      case State::Start:
        switch (c) {
          case ' ': case '\t': case '\r': case '\n': return;
          case '{': token_ += '{'; emitToken(TokenType::LCurly); return;
          case '}': token_ += '}'; emitToken(TokenType::RCurly); return;
          case '[': token_ += '['; emitToken(TokenType::LSquare); return;
          case ']': token_ += ']'; emitToken(TokenType::RSquare); return;
          case ':': token_ += ':'; emitToken(TokenType::Colon); return;
          case ',': token_ += ','; emitToken(TokenType::Comma); return;
          case '"': state_ = State::DqString; break;
          case '\'': state_ = State::SqString; break;
          case '-': state_ = State::Minus; break;
          case '0': state_ = State::Zero; break;
          default:
            if (c >= '1' && c <= '9') {
              state_ = State::IntDigits;
            } else if (c >= 'a' && c <= 'z') {
              state_ = State::Keyword;
            } else {
              appendToToken(c);
              emitLexError();
              return;
            }
        }
        appendToToken(c);
        return;
      case State::Recovery:
        // Skip to a promising resynchronisation point: a structural character, a control
        // character other than tab, or a byte that is never valid UTF-8.
        if ((c < 0x20 && c != '\t') || c >= 0xFE || c == '[' || c == ']' || c == '{' || c == '}' ||
            c == ':' || c == ',') {
          state_ = State::Start;
          continue;
        }
        return;
      case State::DqString:
      case State::SqString: {
        bool dq = state_ == State::DqString;
        if (c < 0x20 || c >= 0xFE) break;  // error
        appendToToken(c);
        if (c == (dq ? '"' : '\'')) {
          emitToken(TokenType::String);
        } else if (c == '\\') {
          state_ = dq ? State::DqEscape : State::SqEscape;
        } else if (token_.size() > maxMessageBytes_) {
          emitTokenTooLong();
        }
        return;
      }
      case State::DqEscape:
      case State::SqEscape: {
        bool dq = state_ == State::DqEscape;
        if (c == 'u') {
          hexLeft_ = 4;
          state_ = dq ? State::DqHex : State::SqHex;
        } else if (c == '"' || c == '\'' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
                   c == 'r' || c == 't') {
          state_ = dq ? State::DqString : State::SqString;
        } else {
          break;
        }
        appendToToken(c);
        return;
      }
      case State::DqHex:
      case State::SqHex:
        if (!isHex(c)) break;
        appendToToken(c);
        if (--hexLeft_ == 0) state_ = state_ == State::DqHex ? State::DqString : State::SqString;
        return;
      case State::Minus:
        if (c == '0') {
          state_ = State::Zero;
        } else if (c >= '1' && c <= '9') {
          state_ = State::IntDigits;
        } else {
          break;
        }
        appendToToken(c);
        return;
      case State::Zero:
        if (isDigit(c)) break;
        if (c == '.') {
          state_ = State::Dot;
        } else if (c == 'e' || c == 'E') {
          state_ = State::ExpE;
        } else if (c < 0x80) {
          emitToken(TokenType::Integer);
          continue;
        } else {
          break;
        }
        appendToToken(c);
        return;
      case State::IntDigits:
      case State::FracDigits: {
        bool integer = state_ == State::IntDigits;
        if (isDigit(c)) {
        } else if (c == '.' && integer) {
          state_ = State::Dot;
        } else if (c == 'e' || c == 'E') {
          state_ = State::ExpE;
        } else if (c < 0x80) {
          emitToken(integer ? TokenType::Integer : TokenType::Float);
          continue;
        } else {
          break;
        }
        appendToToken(c);
        if (token_.size() > maxMessageBytes_) emitTokenTooLong();
        return;
      }
      case State::Dot:
        if (!isDigit(c)) break;
        state_ = State::FracDigits;
        appendToToken(c);
        return;
      case State::ExpE:
        if (c == '+' || c == '-') {
          state_ = State::ExpSign;
        } else if (isDigit(c)) {
          state_ = State::ExpDigits;
        } else {
          break;
        }
        appendToToken(c);
        return;
      case State::ExpSign:
        if (!isDigit(c)) break;
        state_ = State::ExpDigits;
        appendToToken(c);
        return;
      case State::ExpDigits:
        if (isDigit(c)) {
          appendToToken(c);
          if (token_.size() > maxMessageBytes_) emitTokenTooLong();
          return;
        }
        if (c >= 0x80) break;
        emitToken(TokenType::Float);
        continue;
      case State::Keyword:
        if (c >= 'a' && c <= 'z') {
          appendToToken(c);
          if (token_.size() > maxMessageBytes_) emitTokenTooLong();
          return;
        }
        if (c >= 0x80) break;
        emitToken(TokenType::Keyword);
        continue;
    }
    // A byte that cannot continue the token: it becomes part of the stray text.
    appendToToken(c);
    emitLexError();
    return;
  }
}

void JsonStreamReader::emitToken(TokenType type) {
  state_ = State::Start;
  switch (type) {
    case TokenType::LCurly: ++braces_; break;
    case TokenType::RCurly: --braces_; break;
    case TokenType::LSquare: ++brackets_; break;
    case TokenType::RSquare: --brackets_; break;
    default: break;
  }
  if (text_.size() + token_.size() + 1 > maxMessageBytes_) {
    token_.clear();
    emitError("JSON token size limit exceeded");
    return;
  }
  if (tokens_.size() + 1 > maxTokens_) {
    token_.clear();
    emitError("JSON token count limit exceeded");
    return;
  }
  if (braces_ + brackets_ > kMaxNesting) {
    token_.clear();
    emitError("JSON nesting depth limit exceeded");
    return;
  }
  tokens_.push_back(Token{type, static_cast<uint32_t>(token_.size()), text_.size()});
  reserveFor(text_, token_.size());
  text_ += token_;
  token_.clear();
  if ((braces_ > 0 || brackets_ > 0) && braces_ >= 0 && brackets_ >= 0) return;
  parseAndEmit();
}

void JsonStreamReader::emitLexError() {
  std::string message = "JSON parse error, stray '" + quotedForMessage(token_) + "'";
  token_.clear();
  emitError(std::move(message));
  state_ = State::Recovery;
}

void JsonStreamReader::emitTokenTooLong() {
  std::string().swap(token_);
  state_ = State::Start;
  emitError("JSON token size limit exceeded");
}

void JsonStreamReader::emitError(std::string message) {
  clearMessage();
  sink_(Result<Json>(Error(std::move(message))));
}

void JsonStreamReader::parseAndEmit() {
  Json doc;
  Result<Json> parsed = TokenParser(tokens_, text_, doc).run();
  clearMessage();
  sink_(std::move(parsed));
}

void JsonStreamReader::clearMessage() {
  braces_ = 0;
  brackets_ = 0;
  tokens_.clear();
  text_.clear();
  // Give back the memory of a huge message instead of keeping it per connection.
  constexpr size_t kKeep = 64 * 1024;
  if (text_.capacity() > kKeep) std::string().swap(text_);
  if (token_.empty() && token_.capacity() > kKeep) std::string().swap(token_);
  if (tokens_.capacity() > kKeep / sizeof(Token)) std::vector<Token>().swap(tokens_);
}

void JsonStreamReader::finish() {
  switch (state_) {
    case State::Start:
    case State::Recovery:
      break;
    case State::Zero:
    case State::IntDigits:
      emitToken(TokenType::Integer);
      break;
    case State::FracDigits:
    case State::ExpDigits:
      emitToken(TokenType::Float);
      break;
    case State::Keyword:
      emitToken(TokenType::Keyword);
      break;
    default:
      emitLexError();
      break;
  }
  state_ = State::Start;
  if (!tokens_.empty()) parseAndEmit();
}

void JsonStreamReader::reset() {
  state_ = State::Start;
  token_.clear();
  clearMessage();
}

}  // namespace vmmd::qmp
