// Shared setup for the virtio fuzzers: the fuzz input becomes guest RAM
// (two regions with a hole between them, so addresses can miss RAM) and a
// queue configuration. One GuestMemory is reused across runs: creating a
// memfd per input would dominate the run time.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <span>

#include "devices/virtio/virtqueue.hpp"
#include "vmm/guest_memory.hpp"

namespace devices::virtio::fuzz {

inline constexpr std::uint64_t kRegionSize = 64 * 1024;
inline constexpr std::uint64_t kSecondRegion = 0x100000;

inline const vmm::GuestMemory& guest_memory() {
    static const vmm::GuestMemory memory =
        vmm::GuestMemory::create(std::array<std::pair<vmm::GuestAddress, std::uint64_t>, 2>{
            {{0, kRegionSize}, {kSecondRegion, kRegionSize}}});
    return memory;
}

struct FuzzSetup {
    QueueConfig queue;
    QueueConfig second_queue;  // same size, rings from bytes 10-15 (devices with two queues)
    bool event_idx;
    bool indirect;
    std::uint8_t selector;  // spare bits for the harness
};

// The first 16 bytes choose the queues; the rest fills the first region
// (then the second). Addresses are mostly inside RAM so that parsing goes
// deep, but bit patterns can push them anywhere.
inline FuzzSetup load(const std::uint8_t* data, std::size_t size) {
    const auto& memory = guest_memory();
    std::array<std::uint8_t, 16> head{};
    // libFuzzer and the replay test pass (nullptr, 0) for the empty input.
    if (size > 0) std::memcpy(head.data(), data, std::min(size, head.size()));
    for (const auto& region : memory.regions()) std::memset(region.host_address, 0, region.size);
    if (size > head.size()) {
        std::span<const std::uint8_t> rest(data + head.size(), size - head.size());
        const auto first = std::min<std::size_t>(rest.size(), kRegionSize);
        std::memcpy(memory.regions()[0].host_address, rest.data(), first);
        const auto second = std::min<std::size_t>(rest.size() - first, kRegionSize);
        std::memcpy(memory.regions()[1].host_address, rest.data() + first, second);
    }
    auto address = [&](std::size_t at) -> std::uint64_t {
        std::uint16_t raw;
        std::memcpy(&raw, &head[at], 2);
        // Top bit: put it in the second region; 0xffff: far outside RAM.
        if (raw == 0xffff) return ~std::uint64_t{0} - 64;
        return ((raw & 0x8000) ? kSecondRegion : 0) + (raw & 0x7fff) * 2ull;
    };
    FuzzSetup setup{};
    setup.queue.size = static_cast<std::uint16_t>(1u << (head[0] % 10));  // 1..512
    if (head[1] & 0x80)
        setup.queue.size = static_cast<std::uint16_t>(head[1] | 1);  // odd sizes too
    setup.queue.desc_table = address(2);
    setup.queue.avail_ring = address(4);
    setup.queue.used_ring = address(6);
    setup.second_queue = QueueConfig{setup.queue.size, address(10), address(12), address(14)};
    setup.event_idx = head[8] & 1;
    setup.indirect = head[8] & 2;
    setup.selector = head[9];
    return setup;
}

}  // namespace devices::virtio::fuzz
