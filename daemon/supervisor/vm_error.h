// What the supervisor answers: a domain value, or a VmError that says which kind of failure it is
// (the server maps kinds to QMP error classes) and describes it, always naming the VM
// ("VM 'web1' is not defined").
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace vmmd::daemon {

enum class VmErrorCode {
  kNotFound,           // no VM of that name is defined
  kAlreadyExists,      // vm-define: the name or the uuid is taken
  kWrongState,         // not running, already running, not paused, still active...
  kInvalidArgument,    // an invalid definition, or an option the VM's definition does not allow
  kWorkerFailed,       // the worker failed to start, died, or does not answer
  kWorkerRefused,      // the worker's or the guest agent's own error, passed on with its class
  kAgentNotConnected,  // no guest agent answers
  kTimedOut,           // the guest did not power off in time
  kInternal,           // the store failed
};

struct VmError {
  VmErrorCode code = VmErrorCode::kInternal;
  std::string message;
  std::string remote_class;  // kWorkerRefused: the class the worker or agent gave
};

// An empty success (vm-start, vm-pause...).
struct Done {};

template <typename T>
class VmResult {
 public:
  VmResult(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  VmResult(VmError error) : state_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& operator*() { return std::get<0>(state_); }
  const T& operator*() const { return std::get<0>(state_); }
  T* operator->() { return &std::get<0>(state_); }
  const VmError& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, VmError> state_;
};

}  // namespace vmmd::daemon
