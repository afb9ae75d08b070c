// Scatter-gather views of a descriptor chain's buffers for readv/writev.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <vector>

#include "devices/virtio/virtqueue.hpp"

namespace devices::virtio {

// The iovecs covering `buffers` from byte `skip` on: at most `limit` bytes
// and at most IOV_MAX entries (a longer chain is served in several calls).
std::vector<iovec> buffer_iovecs(std::span<const Buffer> buffers, std::uint64_t skip,
                                 std::uint64_t limit);

}  // namespace devices::virtio
