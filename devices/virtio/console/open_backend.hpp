// The console backend a ConsoleConfig asks for (--console socket=|file=|pty).
#pragma once

#include <memory>

#include "devices/virtio/console/console_backend.hpp"
#include "vmm/machine_config.hpp"

namespace devices::virtio {

// Opens the host end before the guest runs; throws base::Error naming the
// path that is unusable.
std::unique_ptr<ConsoleBackend> open_console_backend(const vmm::ConsoleConfig& config);

}  // namespace devices::virtio
