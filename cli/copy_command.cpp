// cp LOCAL NAME:/path | cp NAME:/path LOCAL: copies a file into or out of the guest through the
// agent (guest-file-open/read/write/close, kChunk raw bytes per request in base64), then checks
// the copy: the guest file's size (guest-file-seek to its end) always, and its SHA-256 when the
// guest can run sha256sum (guest-exec). With --socket PATH the remote side is written ":/path".
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/codecs.h"
#include "cli/guest_exec.h"

namespace vmmd::cli {
namespace {

constexpr size_t kChunk = 48 * 1024;  // 64 KiB of base64 per request
constexpr double kDefaultTimeoutS = 30;

struct Remote {
  std::string vm;
  std::string path;
};

// "NAME:/path" (a ':' before any '/'); a local path with a ':' can be written "./a:b".
std::optional<Remote> parseRemote(const std::string& arg) {
  size_t colon = arg.find(':');
  if (colon == std::string::npos || arg.find('/') < colon) return std::nullopt;
  return Remote{arg.substr(0, colon), arg.substr(colon + 1)};
}

// Failures carry the exit code that goes with them.
struct Failure {
  int code;
  std::string message;
};

class Copier {
 public:
  Copier(AgentTarget& target, Seconds timeout) : target_(target), timeout_(timeout) {}

  std::optional<Failure> upload(const std::string& local, const std::string& guestPath);
  std::optional<Failure> download(const std::string& guestPath, const std::string& local);
  const std::string& verified() const { return verified_; }
  uint64_t bytes() const { return bytes_; }

 private:
  Result<qmp::Json> call(const char* command, const qmp::Json& args) { return target_.execute(command, &args, timeout_); }
  Failure agentFailure(const Error& e) { return {target_.lastExitCode() == kOk ? kVmmdError : target_.lastExitCode(), e.message()}; }
  Result<int64_t> open(const std::string& path, const char* mode);
  Status close(int64_t handle);
  Result<uint64_t> guestSize(const std::string& path);
  std::optional<Failure> verify(const std::string& guestPath, Sha256& local);

  AgentTarget& target_;
  Seconds timeout_;
  uint64_t bytes_ = 0;
  std::string verified_;
};

qmp::Json handleArgs(int64_t handle) {
  qmp::Json args = qmp::jsonObject();
  args.AddMember("handle", handle, args.GetAllocator());
  return args;
}

Result<int64_t> Copier::open(const std::string& path, const char* mode) {
  qmp::Json args = qmp::jsonObject();
  auto& a = args.GetAllocator();
  args.AddMember("path", qmp::jsonString(path, a), a);
  args.AddMember("mode", qmp::JsonValue(mode, a), a);
  auto handle = call("guest-file-open", args);
  if (!handle) return handle.error();
  if (!handle->IsInt64()) return Error("guest-file-open returned no handle: " + qmp::toJson(*handle));
  return handle->GetInt64();
}

Status Copier::close(int64_t handle) {
  auto r = call("guest-file-close", handleArgs(handle));
  if (!r) return r.error();
  return {};
}

Result<uint64_t> Copier::guestSize(const std::string& path) {
  auto handle = open(path, "r");
  if (!handle) return handle.error();
  qmp::Json args = handleArgs(*handle);
  args.AddMember("offset", 0, args.GetAllocator());
  args.AddMember("whence", "end", args.GetAllocator());
  auto pos = call("guest-file-seek", args);
  Status closed = close(*handle);
  if (!pos) return pos.error();
  if (!closed) return closed.error();
  if (!pos->IsObject() || !pos->HasMember("position") || !(*pos)["position"].IsUint64()) {
    return Error("guest-file-seek returned no position: " + qmp::toJson(*pos));
  }
  return (*pos)["position"].GetUint64();
}

std::optional<Failure> Copier::verify(const std::string& guestPath, Sha256& local) {
  auto size = guestSize(guestPath);
  if (!size) return agentFailure(size.error().withContext("size check"));
  if (*size != bytes_) {
    return Failure{kVmmdError, "size check failed: " + std::to_string(bytes_) + " bytes copied, the guest file has " +
                                   std::to_string(*size)};
  }
  verified_ = "size";
  // The checksum needs guest-exec and sha256sum in the guest; without them the size is the check.
  auto sum = runInGuest(target_, {"sha256sum", guestPath}, timeout_);
  if (!sum || sum->exit_code != 0 || sum->out.size() < 64) return std::nullopt;
  std::string guestHash = sum->out.substr(0, 64);
  std::string localHash = local.hexDigest();
  if (guestHash != localHash) return Failure{kVmmdError, "sha256 mismatch: local " + localHash + ", guest " + guestHash};
  verified_ = "size and sha256 " + localHash;
  return std::nullopt;
}

std::optional<Failure> Copier::upload(const std::string& local, const std::string& guestPath) {
  std::ifstream in(local, std::ios::binary);
  if (!in) return Failure{kLocalError, Error::fromErrno("cannot read " + local).message()};
  auto handle = open(guestPath, "w");
  if (!handle) return agentFailure(handle.error());
  Sha256 hash;
  std::string chunk(kChunk, '\0');
  std::optional<Failure> failure;
  while (!failure) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    auto n = static_cast<size_t>(in.gcount());
    if (n == 0) {
      if (in.bad()) failure = Failure{kLocalError, "read error on " + local};
      break;
    }
    std::string_view data(chunk.data(), n);
    qmp::Json args = handleArgs(*handle);
    args.AddMember("buf-b64", qmp::jsonString(base64Encode(data), args.GetAllocator()), args.GetAllocator());
    auto written = call("guest-file-write", args);
    if (!written) {
      failure = agentFailure(written.error());
    } else if (!written->IsObject() || !written->HasMember("count") || !(*written)["count"].IsUint64() ||
               (*written)["count"].GetUint64() != n) {
      failure = Failure{kVmmdError, "guest-file-write: short write: " + qmp::toJson(*written)};
    } else {
      hash.update(data);
      bytes_ += n;
    }
  }
  Status closed = close(*handle);
  if (failure) return failure;
  if (!closed) return agentFailure(closed.error());
  return verify(guestPath, hash);
}

std::optional<Failure> Copier::download(const std::string& guestPath, const std::string& localArg) {
  std::string local = localArg;
  std::error_code ec;
  if (std::filesystem::is_directory(local, ec)) local += "/" + std::filesystem::path(guestPath).filename().string();
  std::string partial = local + ".vmctl-partial";
  auto handle = open(guestPath, "r");
  if (!handle) return agentFailure(handle.error());
  Sha256 hash;
  std::optional<Failure> failure;
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    if (!out) failure = Failure{kLocalError, Error::fromErrno("cannot write " + partial).message()};
    while (!failure) {
      qmp::Json args = handleArgs(*handle);
      args.AddMember("count", static_cast<uint64_t>(kChunk), args.GetAllocator());
      auto read = call("guest-file-read", args);
      if (!read) {
        failure = agentFailure(read.error());
        break;
      }
      const qmp::JsonValue& r = *read;
      Result<std::string> data = Error("no buf-b64");
      if (r.IsObject() && r.HasMember("buf-b64") && r["buf-b64"].IsString()) data = base64Decode(qmp::jsonStringView(r["buf-b64"]));
      if (!data) {
        failure = Failure{kVmmdError, "malformed guest-file-read reply: " + data.error().message()};
        break;
      }
      if (!r.HasMember("count") || !r["count"].IsUint64() || r["count"].GetUint64() != data->size() ||
          data->size() > kChunk || !r.HasMember("eof") || !r["eof"].IsBool()) {
        failure = Failure{kVmmdError, "malformed guest-file-read reply"};
        break;
      }
      out.write(data->data(), static_cast<std::streamsize>(data->size()));
      hash.update(*data);
      bytes_ += data->size();
      if (r["eof"].GetBool() || data->empty()) break;
    }
    out.flush();
    if (!failure && !out) failure = Failure{kLocalError, "write error on " + partial};
  }
  Status closed = close(*handle);
  if (!failure && !closed) failure = agentFailure(closed.error());
  if (!failure) failure = verify(guestPath, hash);
  if (!failure && std::rename(partial.c_str(), local.c_str()) != 0) {
    failure = Failure{kLocalError, Error::fromErrno("rename " + partial + " to " + local).message()};
  }
  if (failure) std::remove(partial.c_str());
  return failure;
}

}  // namespace

int runCopyCommand(const Invocation& inv) {
  const char* usage = "usage: vmctl cp [--timeout S] LOCAL NAME:/path | NAME:/path LOCAL  (with --socket PATH: :/path)";
  auto args = parseAgentArgs(inv.args);
  if (!args) return failWith(kUsage, "cp: " + args.error().message());
  if (args->rest.size() != 2 || args->dash_dash) return failWith(kUsage, usage);
  auto src = parseRemote(args->rest[0]);
  auto dst = parseRemote(args->rest[1]);
  if (bool(src) == bool(dst)) return failWith(kUsage, "cp: exactly one side must be remote (NAME:/path)");
  const Remote& remote = src ? *src : *dst;
  if (!args->socket && remote.vm.empty()) return failWith(kUsage, "cp: NAME:/path needs a VM name (or --socket PATH)");
  if (remote.path.empty()) return failWith(kUsage, "cp: the guest path is empty");

  int exit_code = kOk;
  auto target = AgentTarget::open(inv.globals, *args, remote.vm, exit_code);
  if (!target) return exit_code;
  Copier copier(*target, Seconds(args->timeout_s.value_or(kDefaultTimeoutS)));
  auto failure = dst ? copier.upload(args->rest[0], remote.path) : copier.download(remote.path, args->rest[1]);
  if (failure) return failWith(failure->code, "cp: " + failure->message);
  std::printf("copied %llu bytes %s %s (verified: %s)\n", static_cast<unsigned long long>(copier.bytes()),
              dst ? "to" : "from", (dst ? args->rest[1] : args->rest[0]).c_str(), copier.verified().c_str());
  return kOk;
}

}  // namespace vmmd::cli
