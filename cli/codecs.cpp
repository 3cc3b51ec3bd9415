#include "cli/codecs.h"

#include <nettle/base16.h>
#include <nettle/base64.h>

#include <cstdint>

namespace vmmd::cli {
namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const uint8_t* bytesOf(std::string_view text) { return reinterpret_cast<const uint8_t*>(text.data()); }

// What nettle lets through but RFC 4648's canonical form does not: whitespace (nettle skips
// it), a length that is not a multiple of 4 and '=' anywhere but at the end.
Status checkCanonical(std::string_view text) {
  auto notBase64 = [](std::string why) { return Error("not base64: " + why); };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '=' || kAlphabet.find(c) != std::string_view::npos) continue;
    return notBase64((c > ' ' && c < 0x7f ? "'" + std::string(1, c) + "'" : "byte " + std::to_string(uint8_t(c))) +
                     " at offset " + std::to_string(i));
  }
  if (text.size() % 4 != 0) return notBase64("length " + std::to_string(text.size()) + " is not a multiple of 4");
  auto pad = text.find('=');
  if (pad != std::string_view::npos && (pad + 2 < text.size() || text.find_first_not_of('=', pad) != std::string_view::npos)) {
    return notBase64("'=' at offset " + std::to_string(pad) + " before the end");
  }
  return {};
}

}  // namespace

std::string base64Encode(std::string_view bytes) {
  std::string out(BASE64_ENCODE_RAW_LENGTH(bytes.size()), '\0');
  base64_encode_raw(out.data(), bytes.size(), bytesOf(bytes));
  return out;
}

Result<std::string> base64Decode(std::string_view text) {
  if (auto st = checkCanonical(text); !st) return st.error();
  base64_decode_ctx ctx;
  base64_decode_init(&ctx);
  std::string out(BASE64_DECODE_LENGTH(text.size()), '\0');
  size_t length = 0;
  // nettle refuses the rest: bits left over in the last group ("Zh==" for "Zg==") and padding
  // that does not end a group ("Z===").
  if (!base64_decode_update(&ctx, &length, reinterpret_cast<uint8_t*>(out.data()), text.size(), text.data()) ||
      !base64_decode_final(&ctx)) {
    return Error("not base64: the last group is malformed");
  }
  out.resize(length);
  return out;
}

Sha256::Sha256() { sha256_init(&ctx_); }

void Sha256::update(std::string_view bytes) { sha256_update(&ctx_, bytes.size(), bytesOf(bytes)); }

std::string Sha256::hexDigest() {
  uint8_t digest[SHA256_DIGEST_SIZE];
  sha256_digest(&ctx_, sizeof digest, digest);
  std::string hex(BASE16_ENCODE_LENGTH(sizeof digest), '\0');
  base16_encode_update(hex.data(), sizeof digest, digest);
  return hex;
}

}  // namespace vmmd::cli
