// The one place the library calls ioctl(2): EINTR is retried, failures become
// IoctlError/UnsupportedError with the call's params (built only on failure).
#pragma once

#include <sys/ioctl.h>

#include <cerrno>
#include <string_view>
#include <type_traits>
#include <vector>

#include "iommufd_backend/ioctl_error.hpp"

namespace iommufd_backend {

// ioctl(fd, request, arg); 0 on success, else the errno. Never throws.
template <typename T>
requires std::is_trivially_copyable_v<T>
int ioctl_errno(int fd, unsigned long request, T* arg) noexcept {
    for (;;) {
        // Safe: `arg` points to a live struct of the type `request` expects (the
        // callers pair each request with its uAPI struct); the kernel reads and
        // writes at most arg->size / argsz bytes of it.
        if (::ioctl(fd, request, arg) == 0) return 0;
        if (errno != EINTR) return errno;
    }
}

// For requests without an argument (VFIO_DEVICE_RESET).
inline int ioctl_errno_noarg(int fd, unsigned long request) noexcept {
    for (;;) {
        // Safe: the request takes no argument and touches no user memory.
        if (::ioctl(fd, request) == 0) return 0;
        if (errno != EINTR) return errno;
    }
}

// ioctl or throw. `params` is only called on failure, to describe the call.
template <typename T, typename ParamsFn>
void checked_ioctl(int fd, unsigned long request, T& arg, std::string_view name, Feature feature,
                   ParamsFn&& params) {
    if (const int error = ioctl_errno(fd, request, &arg); error != 0) {
        throw_ioctl_error(name, error, feature, std::vector<Param>(params()));
    }
}

}  // namespace iommufd_backend
