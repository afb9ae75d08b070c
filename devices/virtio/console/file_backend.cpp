#include "devices/virtio/console/file_backend.hpp"

#include <fcntl.h>
#include <sys/uio.h>

#include <cstring>
#include <filesystem>

#include "base/error.hpp"
#include "base/output_file.hpp"
#include "vmm/log.hpp"

namespace devices::virtio {

FileBackend::FileBackend(std::string path) : path_(std::move(path)) {
    std::filesystem::path directory = std::filesystem::path(path_).parent_path();
    if (directory.empty()) directory = ".";
    std::error_code error;
    if (!std::filesystem::is_directory(directory, error)) {
        throw base::Error("virtio-console file {}: directory {} does not exist", path_,
                          directory.string());
    }
    fd_ = base::open_output_file(path_, O_APPEND, "virtio-console file");
}

ConsoleBackend::WriteResult FileBackend::write(std::span<const iovec> buffers) {
    std::size_t total = 0;
    for (const auto& buffer : buffers) total += buffer.iov_len;
    if (total == 0) return {WriteStatus::Written, 0};
    for (;;) {
        const ssize_t written =
            ::writev(fd_.get(), buffers.data(), static_cast<int>(buffers.size()));
        if (written > 0) return {WriteStatus::Written, static_cast<std::size_t>(written)};
        if (written < 0 && errno == EINTR) continue;
        break;
    }
    if (!warned_) {
        vmm::log::warn("virtio-console: writing {}: {}; guest output is dropped", path_,
                       std::strerror(errno));
        warned_ = true;
    }
    return {WriteStatus::Dropped, total};
}

}  // namespace devices::virtio
