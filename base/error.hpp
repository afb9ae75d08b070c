// One error style for the whole project: exceptions that carry their context.
// `Error` is a sentence meant for the user; `SystemError` adds the errno of the
// failed call. Catch sites print `what()` on one line and exit non-zero.
#pragma once

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

namespace base {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;

    template <typename... Args>
    explicit Error(fmt::format_string<Args...> format, Args&&... args)
        : std::runtime_error(fmt::format(format, std::forward<Args>(args)...)) {}
};

// A failed system call: keeps errno so callers can react to EINTR, ENOENT, ...
class SystemError : public Error {
public:
    SystemError(int error_number, const std::string& context)
        : Error(fmt::format("{}: {}", context, std::strerror(error_number))),
          error_number_(error_number) {}

    int error_number() const noexcept { return error_number_; }

private:
    int error_number_;
};

// Throws SystemError with the current errno and a formatted context.
template <typename... Args>
[[noreturn]] void throw_errno(fmt::format_string<Args...> format, Args&&... args) {
    const int saved = errno;
    throw SystemError(saved, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace base
