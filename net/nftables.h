// One libnftables context (the library behind nft(8)), owned: vmmd installs and removes its
// networks' NAT and isolation rules by handing it nft commands, in one atomic transaction per
// call, with nft's own error text when a command is refused. No nft binary is run.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"

struct nft_ctx;

namespace vmmd::net {

class Nftables {
 public:
  // An error, never an exit, when the kernel has no nf_tables (see netfilterNetlinkAvailable).
  static Result<Nftables> open();
  // Whether a netfilter netlink socket can be opened (the kernel loads nfnetlink on demand).
  static Status netfilterNetlinkAvailable();
  // Runs `commands` (nft syntax, several lines) as one transaction: all of it applies or none.
  // Returns what nft printed (a "list" command's output, in JSON when `json`).
  Result<std::string> run(const std::string& commands, bool json = false);

 private:
  struct Free {
    void operator()(nft_ctx* ctx) const;
  };
  explicit Nftables(nft_ctx* ctx) : ctx_(ctx) {}
  std::unique_ptr<nft_ctx, Free> ctx_;
};

}  // namespace vmmd::net
