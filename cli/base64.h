// Base64 (RFC 4648, standard alphabet, padded): the guest agent carries file and process data
// in it (guest-file-read/write "buf-b64", guest-exec-status "out-data"/"err-data").
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace vmmd::cli {

std::string base64Encode(std::string_view bytes);
// nullopt for anything but canonical padded base64 (whitespace is not accepted either).
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace vmmd::cli
