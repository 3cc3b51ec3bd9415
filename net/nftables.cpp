#include "net/nftables.h"

#include <nftables/libnftables.h>

#include <cerrno>

namespace vmmd::net {

void Nftables::Free::operator()(nft_ctx* ctx) const { nft_ctx_free(ctx); }

Result<Nftables> Nftables::open() {
  nft_ctx* raw = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!raw) return Error("nftables: cannot create a context", ENOMEM);
  Nftables nft(raw);
  // Both buffered, so errors come back to us instead of going to stderr.
  if (nft_ctx_buffer_output(raw) < 0 || nft_ctx_buffer_error(raw) < 0) return Error("nftables: cannot buffer output", ENOMEM);
  return nft;
}

Result<std::string> Nftables::run(const std::string& commands, bool json) {
  unsigned flags = nft_ctx_output_get_flags(ctx_.get());
  nft_ctx_output_set_flags(ctx_.get(), json ? (flags | NFT_CTX_OUTPUT_JSON) : (flags & ~unsigned{NFT_CTX_OUTPUT_JSON}));
  int rc = nft_run_cmd_from_buffer(ctx_.get(), commands.c_str());
  // Each get hands the buffer over and empties it: read once.
  const char* printed = nft_ctx_get_output_buffer(ctx_.get());
  std::string output = printed ? printed : "";
  if (rc != 0) {
    const char* error = nft_ctx_get_error_buffer(ctx_.get());
    std::string message = error && *error ? error : "refused";
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return Error("nftables: " + message, EINVAL);
  }
  return output;
}

}  // namespace vmmd::net
