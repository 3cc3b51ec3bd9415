#include "cli/guest_exec.h"

#include <cerrno>
#include <thread>

#include "cli/codecs.h"

namespace vmmd::cli {
namespace {

constexpr Seconds kRequestTimeout{30};

Status decodeInto(const qmp::JsonValue& status, const char* key, std::string& out) {
  auto it = status.FindMember(key);
  if (it == status.MemberEnd()) return {};
  if (!it->value.IsString()) return Error(std::string("guest-exec-status: ") + key + " is not a string");
  auto bytes = base64Decode(qmp::jsonStringView(it->value));
  if (!bytes) return bytes.error().withContext(std::string("guest-exec-status: ") + key);
  out = std::move(*bytes);
  return {};
}

bool flag(const qmp::JsonValue& obj, const char* key) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsBool() && it->value.GetBool();
}

}  // namespace

Result<GuestExecResult> runInGuest(AgentTarget& target, const std::vector<std::string>& argv, Seconds timeout) {
  qmp::Json execArgs = qmp::jsonObject();
  auto& a = execArgs.GetAllocator();
  execArgs.AddMember("path", qmp::jsonString(argv.at(0), a), a);
  qmp::JsonValue rest(rapidjson::kArrayType);
  for (size_t i = 1; i < argv.size(); ++i) rest.PushBack(qmp::jsonString(argv[i], a), a);
  execArgs.AddMember("arg", rest, a);
  execArgs.AddMember("capture-output", true, a);
  // One request never waits longer than the whole command may take.
  Seconds perRequest = std::min(kRequestTimeout, timeout);
  auto started = target.execute("guest-exec", &execArgs, perRequest);
  if (!started) return started.error();
  if (!started->IsObject() || !started->HasMember("pid") || !(*started)["pid"].IsInt64()) {
    return Error("guest-exec returned no pid: " + qmp::toJson(*started));
  }
  GuestExecResult result;
  result.pid = (*started)["pid"].GetInt64();

  qmp::Json statusArgs = qmp::jsonObject();
  statusArgs.AddMember("pid", result.pid, statusArgs.GetAllocator());
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // Poll quickly at first (most commands are short), then back off to 200 ms.
  auto pause = std::chrono::milliseconds(5);
  for (;;) {
    auto status = target.execute("guest-exec-status", &statusArgs, perRequest);
    if (!status) return status.error();
    if (!status->IsObject() || !status->HasMember("exited") || !(*status)["exited"].IsBool()) {
      return Error("malformed guest-exec-status reply: " + qmp::toJson(*status));
    }
    if ((*status)["exited"].GetBool()) {
      if (Status s = decodeInto(*status, "out-data", result.out); !s) return s.error();
      if (Status s = decodeInto(*status, "err-data", result.err); !s) return s.error();
      result.truncated = flag(*status, "out-truncated") || flag(*status, "err-truncated");
      if (status->HasMember("signal") && (*status)["signal"].IsInt()) result.signal = (*status)["signal"].GetInt();
      else if (status->HasMember("exitcode") && (*status)["exitcode"].IsInt()) result.exit_code = (*status)["exitcode"].GetInt();
      else return Error("guest-exec-status reports neither exit code nor signal");
      return result;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Error("guest pid " + std::to_string(result.pid) + " still running after " +
                       std::to_string(static_cast<int64_t>(timeout.count())) + " s (left running)",
                   ETIMEDOUT);
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(200));
  }
}

}  // namespace vmmd::cli
