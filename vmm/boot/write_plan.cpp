#include "vmm/boot/write_plan.hpp"

#include <algorithm>
#include <cstring>

#include "base/checked_math.hpp"
#include "base/error.hpp"

namespace vmm::boot {

void WritePlan::add_copy(std::string what, GuestAddress address,
                         std::span<const std::uint8_t> bytes) {
    writes_.push_back({std::move(what), address, bytes.size(), {}, bytes, false});
}

void WritePlan::add_owned(std::string what, GuestAddress address, std::vector<std::uint8_t> bytes) {
    const std::uint64_t length = bytes.size();
    writes_.push_back({std::move(what), address, length, std::move(bytes), {}, false});
}

void WritePlan::add_zeros(std::string what, GuestAddress address, std::uint64_t length) {
    writes_.push_back({std::move(what), address, length, {}, {}, true});
}

void WritePlan::check(const GuestMemory& memory) const {
    std::vector<const Write*> sorted;
    for (const auto& write : writes_) {
        if (write.length == 0) continue;
        if (!memory.contains(write.address, write.length)) {
            const auto end = base::checked_add(write.address, write.length);
            throw base::Error("{} at [{:#x}, {:#x}) does not fit in guest RAM", write.what,
                              write.address, end.value_or(UINT64_MAX));
        }
        sorted.push_back(&write);
    }
    std::sort(sorted.begin(), sorted.end(),
              [](const Write* a, const Write* b) { return a->address < b->address; });
    for (std::size_t i = 1; i < sorted.size(); ++i) {
        const Write& previous = *sorted[i - 1];
        const Write& current = *sorted[i];
        // Cannot overflow: contains() above proved both ranges are in RAM.
        if (previous.address + previous.length > current.address) {
            throw base::Error("{} at [{:#x}, {:#x}) overlaps {} at [{:#x}, {:#x})", current.what,
                              current.address, current.address + current.length, previous.what,
                              previous.address, previous.address + previous.length);
        }
    }
}

void WritePlan::apply(GuestMemory& memory) const {
    check(memory);
    for (const auto& write : writes_) {
        if (write.length == 0) continue;
        auto destination = memory.span(write.address, write.length);
        if (write.zeros) {
            std::memset(destination.data(), 0, destination.size());
        } else {
            const auto source =
                write.owned.empty() ? write.borrowed : std::span<const std::uint8_t>(write.owned);
            std::memcpy(destination.data(), source.data(), source.size());
        }
    }
}

}  // namespace vmm::boot
