// libFuzzer target: the split-virtqueue parser over arbitrary guest memory,
// plus virtio-rng's request handling. Every input must end in parsed chains
// or a VirtqueueError; ASan/UBSan catch anything else (an access outside
// guest RAM is an access outside the mapping).
#include <cstddef>
#include <cstdint>

#include "devices/virtio/rng/virtio_rng.hpp"
#include "tests/fuzz/fuzz_guest.hpp"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

extern "C" int FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
    using namespace devices::virtio;
    const auto setup = fuzz::load(data, size);
    try {
        Virtqueue queue(fuzz::guest_memory(), setup.queue, setup.event_idx, setup.indirect);
        // Bounded: a guest can post at most `size` chains per avail index lap.
        for (unsigned round = 0; round < 2u * queue.size() + 2; ++round) {
            auto chain = queue.pop();
            if (!chain) {
                if (!queue.enable_notification()) break;
                continue;
            }
            std::uint32_t written = 0;
            if (setup.selector & 1) written = fill_random(*chain, 256);  // virtio-rng's work
            queue.push_used(chain->head, written);
            (void)queue.needs_interrupt();
        }
    } catch (const VirtqueueError&) {
        // The device would go to NEEDS_RESET: the expected end for bad input.
    }
    return 0;
}
