// Shared by the fuzzers of a PCI function's guest-facing side (virtio-pci,
// VFIO passthrough): the input, after a header, is a script of register
// accesses, 12 bytes each (kind, size, offset, value), sized as the bus
// delivers them.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "devices/pci/pci_device.hpp"

namespace devices::pci::fuzz {

inline constexpr std::size_t kOpBytes = 12;
// Bounds a run's time however long the input is.
inline constexpr std::size_t kMaxOps = 256;

struct Op {
    std::uint8_t kind;
    std::uint8_t size_code;
    std::uint16_t offset;
    std::uint64_t value;
};

// Calls run(op) for each whole op after the first `header` bytes, at most
// kMaxOps of them.
template <typename Run>
void for_each_op(const std::uint8_t* data, std::size_t size, std::size_t header, Run&& run) {
    const std::size_t ops = size > header ? std::min((size - header) / kOpBytes, kMaxOps) : 0;
    for (std::size_t i = 0; i < ops; ++i) {
        Op op{};
        const std::uint8_t* at = data + header + i * kOpBytes;
        op.kind = at[0];
        op.size_code = at[1];
        std::memcpy(&op.offset, at + 2, 2);
        std::memcpy(&op.value, at + 4, 8);
        run(op);
    }
}

// An op's value as the bytes of an access, and the sizes it may have.
struct Access {
    explicit Access(const Op& op)
        : bar_size(std::size_t{1} << (op.size_code % 4)),
          config_size(std::size_t{1} << (op.size_code % 3)),
          config_offset(
              static_cast<std::uint16_t>((op.offset % kConfigSpaceSize) & ~(config_size - 1))) {
        std::memcpy(bytes.data(), &op.value, sizeof(op.value));
    }

    // BAR accesses come from MMIO/PIO exits: 1, 2, 4 or 8 bytes anywhere.
    std::span<std::uint8_t> bar() { return std::span(bytes).first(bar_size); }
    // Config accesses: 1, 2 or 4 bytes inside one dword (the bus splits
    // others), so the offset is aligned to the size.
    std::span<std::uint8_t> config() { return std::span(bytes).first(config_size); }

    std::array<std::uint8_t, 8> bytes{};
    std::size_t bar_size;
    std::size_t config_size;
    std::uint16_t config_offset;
};

}  // namespace devices::pci::fuzz
