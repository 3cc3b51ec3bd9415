#include <cstdio>
#include <cstdlib>

#include "cli/cli.h"

namespace vmmd::cli {

using namespace std::chrono_literals;

int failWith(int code, const std::string& message) {
  std::fprintf(stderr, "vmctl: %s\n", message.c_str());
  return code;
}

Connection connectToVmmd(const Globals& globals) {
  Connection conn;
  // A short retry window covers a vmmd that is (re)starting; longer means it is not there. A vmmd
  // that accepted is there: under load (20 clients at once, sanitizers, an L1) its greeting can
  // take longer than the window, so it gets 30 s.
  auto client = qmp::SyncClient::connect(globals.socket, 2000ms, /*negotiate=*/true, 30s);
  if (!client) {
    conn.exit_code = failWith(kUnreachable, "cannot reach vmmd at " + globals.socket + ": " + client.error().message());
    return conn;
  }
  conn.client.emplace(std::move(*client));
  return conn;
}

std::optional<qmp::Json> call(qmp::SyncClient& client, const std::string& command, const qmp::JsonValue* args) {
  // Shutdown waits for the guest; give vmmd's own timeouts room to answer first.
  auto result = client.execute(command, args, 24h);
  if (!result) {
    std::fprintf(stderr, "vmctl: %s\n", result.error().message().c_str());
    return std::nullopt;
  }
  return std::move(*result);
}

std::optional<qmp::Json> callOnVm(qmp::SyncClient& client, const std::string& command, const std::string& name) {
  qmp::Json args = qmp::jsonObject();
  args.AddMember("name", qmp::jsonString(name, args.GetAllocator()), args.GetAllocator());
  return call(client, command, &args);
}

void printJson(const qmp::JsonValue& value) {
  std::string out = qmp::toJson(value);
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
}

}  // namespace vmmd::cli
