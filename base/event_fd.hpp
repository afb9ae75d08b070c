// eventfd(2) as the VMM uses it everywhere: non-blocking counters that wake
// epoll loops and that KVM reads or writes (irqfd, ioeventfd). Nobody cares
// about the count, only that it is non-zero.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include "base/error.hpp"
#include "base/unique_fd.hpp"

namespace base {

// A non-blocking, close-on-exec eventfd; the message names what it is for.
template <typename... Args>
UniqueFd make_eventfd(fmt::format_string<Args...> purpose, Args&&... args) {
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd) {
        const int saved = errno;
        throw SystemError(saved,
                          "eventfd for " + fmt::format(purpose, std::forward<Args>(args)...));
    }
    return fd;
}

// Adds one. Only a counter at 2^64 - 2 refuses the write, and the fd is
// readable then anyway, which is all a reader needs.
inline void signal_eventfd(int fd) noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = ::write(fd, &one, sizeof(one));
}

// Back to zero. Non-blocking: EAGAIN means it was zero already.
inline void drain_eventfd(int fd) noexcept {
    std::uint64_t count;
    [[maybe_unused]] const auto got = ::read(fd, &count, sizeof(count));
}

}  // namespace base
