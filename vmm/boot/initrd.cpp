#include "vmm/boot/initrd.hpp"

#include "base/checked_math.hpp"
#include "base/error.hpp"

namespace vmm::boot {

namespace {
constexpr std::uint64_t kPageSize = 4096;
}  // namespace

GuestAddress place_initrd(const std::string& name, std::uint64_t size, GuestAddress lowest,
                          GuestAddress limit) {
    if (size == 0) throw base::Error("{} is empty", name);
    const std::uint64_t floor = base::align_up(lowest, kPageSize);
    if (limit <= floor || size > limit - floor) {
        const std::uint64_t room = limit > floor ? limit - floor : 0;
        throw base::Error(
            "{} of {} bytes does not fit in guest RAM: only {} bytes are free between the kernel "
            "end {:#x} and the initrd limit {:#x}",
            name, size, room, lowest, limit);
    }
    // floor <= result because size <= limit - floor and floor is aligned.
    return base::align_down(limit - size, kPageSize);
}

}  // namespace vmm::boot
