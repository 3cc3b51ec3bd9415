// The encodings of `vmctl cp` and `vmctl exec`, on top of nettle (Debian nettle-dev):
//   - base64 (RFC 4648, standard alphabet, padded): the guest agent carries file and process data
//     in it (guest-file-read/write "buf-b64", guest-exec-status "out-data"/"err-data");
//   - SHA-256 (FIPS 180-4), to check a copy end to end against the guest's sha256sum.
#pragma once

#include <nettle/sha2.h>

#include <string>
#include <string_view>

#include "base/result.h"

namespace vmmd::cli {

std::string base64Encode(std::string_view bytes);
// Only canonical padded base64 decodes; anything else (whitespace included) is an error saying
// what is wrong and where: "not base64: '*' at offset 3".
Result<std::string> base64Decode(std::string_view text);

class Sha256 {
 public:
  Sha256();
  void update(std::string_view bytes);
  // Lower-case hex of the digest; the object starts over afterwards.
  std::string hexDigest();

 private:
  sha256_ctx ctx_;
};

}  // namespace vmmd::cli
