// Errors as values: every fallible operation returns Result<T>, which holds either the value or
// an Error whose message says what failed and where ("open disk.qcow2: No such file or directory").
#pragma once

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace vmmd {

class Error {
 public:
  explicit Error(std::string message, int code = 0) : message_(std::move(message)), code_(code) {}

  // "context: strerror(err)"; the errno is kept so callers can branch on EAGAIN, ENOENT...
  static Error fromErrno(std::string_view context, int err = errno) {
    return Error(std::string(context) + ": " + std::strerror(err), err);
  }

  const std::string& message() const { return message_; }
  // The errno behind the error, or 0 when it did not come from a system call.
  int code() const { return code_; }

  // Prefixes what the caller was doing: "load kernel: open bzImage: No such file".
  Error withContext(std::string_view context) const {
    return Error(std::string(context) + ": " + message_, code_);
  }

 private:
  std::string message_;
  int code_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

  const Error& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *error_; }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

}  // namespace vmmd
