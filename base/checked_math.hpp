// Overflow-checked arithmetic for guest-controlled numbers.
#pragma once

#include <cstdint>
#include <optional>

namespace base {

// a + b, or nullopt on unsigned overflow.
inline std::optional<std::uint64_t> checked_add(std::uint64_t a, std::uint64_t b) {
    std::uint64_t sum = 0;
    if (__builtin_add_overflow(a, b, &sum)) return std::nullopt;
    return sum;
}

inline std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) {
    std::uint64_t product = 0;
    if (__builtin_mul_overflow(a, b, &product)) return std::nullopt;
    return product;
}

// True when [start, start + length) lies inside [0, limit).
inline bool range_within(std::uint64_t start, std::uint64_t length, std::uint64_t limit) {
    const auto end = checked_add(start, length);
    return end.has_value() && *end <= limit;
}

constexpr std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) {
    return (value + alignment - 1) & ~(alignment - 1);
}

constexpr std::uint64_t align_down(std::uint64_t value, std::uint64_t alignment) {
    return value & ~(alignment - 1);
}

}  // namespace base
