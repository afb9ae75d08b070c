#include "vmm/read_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.hpp"
#include "base/unique_fd.hpp"

namespace vmm {

std::vector<std::uint8_t> read_file(const std::string& path, const char* what,
                                    std::uint64_t max_size) {
    base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) base::throw_errno("cannot open {} file {}", what, path);
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) base::throw_errno("cannot stat {} file {}", what, path);
    if (!S_ISREG(info.st_mode)) throw base::Error("{} file {} is not a regular file", what, path);
    const auto size = static_cast<std::uint64_t>(info.st_size);
    if (size == 0) throw base::Error("{} file {} is empty", what, path);
    if (size > max_size) {
        throw base::Error("{} file {} is {} bytes, more than the {} bytes allowed", what, path,
                          size, max_size);
    }
    std::vector<std::uint8_t> bytes(size);
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) base::throw_errno("reading {} file {}", what, path);
        if (n == 0) throw base::Error("{} file {} shrank while being read", what, path);
        done += static_cast<std::size_t>(n);
    }
    return bytes;
}

}  // namespace vmm
