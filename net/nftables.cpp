#include "net/nftables.h"

#include <nftables/libnftables.h>

#include <linux/netlink.h>
#include <sys/socket.h>

#include <cerrno>

#include "base/unique_fd.h"

namespace vmmd::net {

Status Nftables::netfilterNetlinkAvailable() {
  UniqueFd probe(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
  if (!probe) {
    return Error::fromErrno("nftables: this kernel offers no nf_tables netlink socket (is nf_tables built or loadable?)");
  }
  return {};
}

void Nftables::Free::operator()(nft_ctx* ctx) const { nft_ctx_free(ctx); }

Result<Nftables> Nftables::open() {
  // libnftables exit()s the whole process when it cannot open its netlink socket (nftables 1.0.6,
  // netlink_init_error): a kernel without nf_tables, or one that cannot load it, would take vmmd
  // down. The same socket is tried here first, so that becomes an error for the one request.
  if (Status usable = netfilterNetlinkAvailable(); !usable) return usable.error();
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
