// libFuzzer target: virtio-blk request parsing and execution over chains
// from arbitrary guest memory, against an in-memory disk (read-only when
// the selector says so). Valid ends: a status byte, a DeviceError or a
// VirtqueueError.
#include <cstddef>
#include <cstdint>

#include "devices/virtio/blk/block_request.hpp"
#include "tests/fuzz/fuzz_guest.hpp"
#include "tests/unit/virtio/memory_backend.hpp"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

extern "C" int FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
    using namespace devices::virtio;
    static testing::MemoryBackend writable_disk(32 * 1024);
    static testing::MemoryBackend read_only_disk(32 * 1024, true);
    const auto setup = fuzz::load(data, size);
    auto& disk = (setup.selector & 1) ? read_only_disk : writable_disk;
    BlockLimits limits;
    limits.max_discard_segments = 4;
    try {
        Virtqueue queue(fuzz::guest_memory(), setup.queue, setup.event_idx, setup.indirect);
        for (unsigned round = 0; round < queue.size() + 1u; ++round) {
            auto chain = queue.pop();
            if (!chain) break;
            try {
                const auto request = parse_block_request(*chain);
                const auto done = execute_block_request(request, disk, "fuzz-serial", limits,
                                                        setup.selector & 2, setup.selector & 4);
                queue.push_used(chain->head, done.used_length);
            } catch (const DeviceError&) {
                break;  // NEEDS_RESET
            }
        }
    } catch (const VirtqueueError&) {
    }
    return 0;
}
