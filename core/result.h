// Error values for the data plane. No exceptions and no absl::Status here: an I/O
// result is the kernel's `res` (negative errno) and a session error says which side
// failed and whether a retry elsewhere is allowed (Pingora's error type).
#pragma once

#include <cerrno>
#include <cstdint>
#include <new>
#include <string_view>
#include <utility>

#include "core/check.h"

namespace ringproxy {

// The kernel's completion result: >= 0 is a value, < 0 is -errno.
struct [[nodiscard]] IoResult {
  int32_t res = 0;

  bool ok() const { return res >= 0; }
  int error() const { return res < 0 ? -res : 0; }
  uint32_t value() const {
    RP_DCHECK(res >= 0);
    return static_cast<uint32_t>(res);
  }
  bool timed_out() const { return res == -ETIMEDOUT; }
  bool cancelled() const { return res == -ECANCELED; }
};

enum class Side : uint8_t { kDownstream, kUpstream, kInternal };

std::string_view SideName(Side side);

struct Error {
  int code = 0;  // errno value (positive)
  Side side = Side::kInternal;
  bool retryable = false;

  static Error Downstream(int code) { return {code, Side::kDownstream, false}; }
  static Error Upstream(int code, bool retryable) { return {code, Side::kUpstream, retryable}; }
  static Error Internal(int code) { return {code, Side::kInternal, false}; }
};

// Either a T or an Error. Small and trivially movable; no heap, no exceptions.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : ok_(true) { new (&value_) T(std::move(value)); }  // NOLINT
  Result(Error error) : ok_(false) { new (&error_) Error(error); }    // NOLINT
  Result(Result&& other) noexcept : ok_(other.ok_) {
    if (ok_) {
      new (&value_) T(std::move(other.value_));
    } else {
      new (&error_) Error(other.error_);
    }
  }
  Result& operator=(Result&& other) noexcept {
    if (this != &other) {
      this->~Result();
      new (this) Result(std::move(other));
    }
    return *this;
  }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result() {
    if (ok_) value_.~T();
  }

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  T& value() & {
    RP_CHECK(ok_);
    return value_;
  }
  T&& value() && {
    RP_CHECK(ok_);
    return std::move(value_);
  }
  T& operator*() & { return value(); }
  T* operator->() { return &value(); }
  const Error& error() const {
    RP_CHECK(!ok_);
    return error_;
  }

 private:
  bool ok_;
  union {
    T value_;
    Error error_;
  };
};

}  // namespace ringproxy
