// Opening a file a VMM writes guest output to (--serial file:, the
// virtio-console file= backend) so that a FIFO nobody reads is a one-line
// error instead of an open() that blocks until a reader comes, perhaps never.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>
#include <string_view>

#include "base/error.hpp"
#include "base/unique_fd.hpp"

namespace base {

// Opens `path` write-only with `flags` (O_TRUNC or O_APPEND, say) added,
// creating it 0644. `what` names it in errors ("serial output file").
// O_NONBLOCK only for the open itself: a FIFO without a reader then fails
// with ENXIO instead of blocking. Writes block again, so that a slow reader
// loses no output.
inline UniqueFd open_output_file(const std::string& path, int flags, std::string_view what) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NONBLOCK | flags, 0644));
    if (!fd) {
        const int saved = errno;
        struct stat info {};
        if (saved == ENXIO && ::stat(path.c_str(), &info) == 0 && S_ISFIFO(info.st_mode)) {
            throw Error("{} {} is a FIFO with no reader; start its reader first", what, path);
        }
        throw SystemError(saved, fmt::format("cannot open {} {}", what, path));
    }
    const int current = ::fcntl(fd.get(), F_GETFL);
    if (current < 0 || ::fcntl(fd.get(), F_SETFL, current & ~O_NONBLOCK) != 0) {
        throw_errno("making {} {} blocking", what, path);
    }
    return fd;
}

}  // namespace base
