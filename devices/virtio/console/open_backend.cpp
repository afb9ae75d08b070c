#include "devices/virtio/console/open_backend.hpp"

#include "devices/virtio/console/file_backend.hpp"
#include "devices/virtio/console/pty_backend.hpp"
#include "devices/virtio/console/socket_backend.hpp"

namespace devices::virtio {

std::unique_ptr<ConsoleBackend> open_console_backend(const vmm::ConsoleConfig& config) {
    switch (config.mode) {
        case vmm::ConsoleConfig::Mode::Socket:
            return std::make_unique<SocketBackend>(config.path);
        case vmm::ConsoleConfig::Mode::File:
            return std::make_unique<FileBackend>(config.path);
        case vmm::ConsoleConfig::Mode::Pty:
            return std::make_unique<PtyBackend>();
    }
    return nullptr;
}

}  // namespace devices::virtio
