// Hands out naturally aligned address ranges from one window (the 32-bit
// MMIO hole, the 64-bit MMIO window above RAM, or PCI I/O ports), as
// firmware does when it assigns BARs before the OS boots.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/checked_math.hpp"
#include "base/error.hpp"

namespace devices::pci {

class BarAllocator {
  public:
    BarAllocator(std::string name, std::uint64_t start, std::uint64_t end)
        : name_(std::move(name)), start_(start), end_(end), next_(start) {}

    // A `size`-aligned range of `size` bytes (size a power of two). Throws
    // base::Error when the window is exhausted.
    std::uint64_t allocate(std::uint64_t size) {
        const std::uint64_t address = base::align_up(next_, size);
        const auto end = base::checked_add(address, size);
        if (address < next_ || !end || *end > end_) {
            throw base::Error("PCI {} window [{:#x}, {:#x}) has no room for a BAR of {:#x} bytes",
                              name_, start_, end_, size);
        }
        next_ = *end;
        return address;
    }

    bool contains(std::uint64_t address, std::uint64_t size) const {
        const auto end = base::checked_add(address, size);
        return address >= start_ && end && *end <= end_;
    }
    std::uint64_t start() const { return start_; }
    std::uint64_t end() const { return end_; }

  private:
    std::string name_;
    std::uint64_t start_;
    std::uint64_t end_;
    std::uint64_t next_;
};

}  // namespace devices::pci
