#include "vmm/bus.hpp"

#include <algorithm>
#include <mutex>

#include "base/checked_math.hpp"
#include "base/error.hpp"

namespace vmm {

void Bus::insert(std::shared_ptr<BusDevice> device, std::uint64_t base, std::uint64_t size) {
    if (!device) throw base::Error("{} bus: no device given for range {:#x}", name_, base);
    const auto end = base::checked_add(base, size);
    if (size == 0 || !end) {
        throw base::Error("{} bus: range [{:#x}, +{:#x}) is empty or overflows", name_, base,
                          size);
    }
    std::unique_lock lock(mutex_);
    auto next = ranges_.lower_bound(base);
    if (next != ranges_.end() && next->first < *end) {
        throw base::Error("{} bus: range [{:#x}, +{:#x}) overlaps the range at {:#x}", name_,
                          base, size, next->first);
    }
    if (next != ranges_.begin()) {
        auto previous = std::prev(next);
        if (previous->first + previous->second.size > base) {
            throw base::Error("{} bus: range [{:#x}, +{:#x}) overlaps the range at {:#x}", name_,
                              base, size, previous->first);
        }
    }
    ranges_.emplace(base, Range{size, std::move(device)});
}

bool Bus::remove(std::uint64_t base) {
    std::unique_lock lock(mutex_);
    return ranges_.erase(base) == 1;
}

std::pair<std::shared_ptr<BusDevice>, std::uint64_t> Bus::find(std::uint64_t address,
                                                               std::uint64_t length) const {
    std::shared_lock lock(mutex_);
    auto it = ranges_.upper_bound(address);
    if (it == ranges_.begin()) return {nullptr, 0};
    --it;
    const std::uint64_t offset = address - it->first;
    // The whole access must fall inside the range; a straddling access is unclaimed.
    if (offset >= it->second.size || length > it->second.size - offset) return {nullptr, 0};
    return {it->second.device, offset};
}

bool Bus::read(std::uint64_t address, std::span<std::uint8_t> data) const {
    auto [device, offset] = find(address, data.size());
    if (!device) {
        std::fill(data.begin(), data.end(), 0xff);
        return false;
    }
    device->read(offset, data);
    return true;
}

bool Bus::write(std::uint64_t address, std::span<const std::uint8_t> data) const {
    auto [device, offset] = find(address, data.size());
    if (!device) return false;
    device->write(offset, data);
    return true;
}

}  // namespace vmm
