#include "devices/virtio/rng/virtio_rng.hpp"

#include <sys/random.h>

#include <algorithm>

#include "base/error.hpp"

namespace devices::virtio {

std::uint32_t fill_random(const DescriptorChain& chain, std::uint64_t limit) {
    std::uint64_t written = 0;
    for (const auto& buffer : chain.writable) {
        std::size_t done = 0;
        const std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(buffer.bytes.size(), limit - written));
        while (done < want) {
            const ssize_t got = ::getrandom(buffer.bytes.data() + done, want - done, 0);
            if (got < 0) {
                if (errno == EINTR) continue;
                base::throw_errno("getrandom for virtio-rng");
            }
            done += static_cast<std::size_t>(got);
        }
        written += want;
        if (written >= limit) break;
    }
    return static_cast<std::uint32_t>(written);
}

void VirtioRng::queue_notified(VirtioContext& context, std::uint16_t index) {
    Virtqueue* queue = context.queue(index);
    if (queue == nullptr) return;
    serve_in_batches(context, index, *queue, [&](const DescriptorChain& chain) {
        queue->push_used(chain.head, fill_random(chain, kMaxRequestBytes));
        return true;
    });
}

}  // namespace devices::virtio
