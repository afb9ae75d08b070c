// Guest writes that a loader stages while it validates, so that a refused
// image leaves guest RAM untouched: apply() first proves that every write
// lands in RAM and that no two overlap, and only then copies.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vmm/guest_memory.hpp"

namespace vmm::boot {

class WritePlan {
  public:
    // `bytes` is borrowed: it must outlive apply().
    void add_copy(std::string what, GuestAddress address, std::span<const std::uint8_t> bytes);
    void add_owned(std::string what, GuestAddress address, std::vector<std::uint8_t> bytes);
    void add_zeros(std::string what, GuestAddress address, std::uint64_t length);

    // Throws base::Error naming the first write that is not in RAM or that
    // overlaps another one.
    void check(const GuestMemory& memory) const;
    // check(), then perform the writes in the order they were added.
    void apply(GuestMemory& memory) const;

  private:
    struct Write {
        std::string what;
        GuestAddress address;
        std::uint64_t length;
        std::vector<std::uint8_t> owned;
        std::span<const std::uint8_t> borrowed;
        bool zeros;
    };

    std::vector<Write> writes_;
};

}  // namespace vmm::boot
