#include "devices/virtio/console/buffer_iovecs.hpp"

#include <algorithm>
#include <climits>

namespace devices::virtio {

std::vector<iovec> buffer_iovecs(std::span<const Buffer> buffers, std::uint64_t skip,
                                 std::uint64_t limit) {
    std::vector<iovec> iovecs;
    for (const Buffer& buffer : buffers) {
        if (limit == 0 || iovecs.size() == IOV_MAX) break;
        const std::uint64_t size = buffer.bytes.size();
        if (skip >= size) {
            skip -= size;
            continue;
        }
        const std::uint64_t take = std::min(size - skip, limit);
        if (take > 0) iovecs.push_back(iovec{buffer.bytes.data() + skip, take});
        limit -= take;
        skip = 0;
    }
    return iovecs;
}

}  // namespace devices::virtio
