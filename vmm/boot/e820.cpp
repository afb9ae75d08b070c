#include "vmm/boot/e820.hpp"

#include <algorithm>
#include <string_view>

#include "base/error.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm::boot {

namespace {

struct FixedReservation {
    std::string_view name;
    std::uint64_t address;
    std::uint64_t size;
};

// Pieces of the MMIO hole that Linux must never hand out as PCI BAR space.
// The 32-bit PCI window itself stays a gap in the map on purpose: Linux
// allocates BARs from gaps, and the IOAPIC/LAPIC pages it reserves itself.
constexpr FixedReservation kHoleReservations[] = {
    {"PCI ECAM", x86::kPciEcamStart, x86::kPciEcamSize},
    {"KVM identity map and TSS", x86::kKvmIdentityMapAddress,
     x86::kKvmIdentityMapSize + x86::kKvmTssSize},
};

static_assert(x86::kKvmIdentityMapAddress + x86::kKvmIdentityMapSize == x86::kKvmTssAddress,
              "the KVM private pages are reserved as one range");
static_assert(x86::kEbdaStart < x86::kHighMemoryStart);

bool overlaps(std::uint64_t a_start, std::uint64_t a_end, std::uint64_t b_start,
              std::uint64_t b_end) {
    return a_start < b_end && b_start < a_end;
}

}  // namespace

GuestAddress low_ram_end(const GuestMemory& memory) {
    const auto& first = memory.regions().front();
    if (first.guest_address != 0 || first.end() < x86::kHighMemoryStart) {
        throw base::Error(
            "guest RAM must start at address 0 and cover the first MiB for the boot data; "
            "the first region is [{:#x}, {:#x})",
            first.guest_address, first.end());
    }
    return first.end();
}

std::vector<E820Entry> build_e820_map(const GuestMemory& memory) {
    low_ram_end(memory);  // validates the first region

    std::vector<E820Entry> map;
    for (const auto& region : memory.regions()) {
        if (overlaps(region.guest_address, region.end(), x86::kMmioHoleStart, x86::kMmioHoleEnd)) {
            throw base::Error(
                "guest RAM region [{:#x}, {:#x}) overlaps the MMIO hole [{:#x}, {:#x})",
                region.guest_address, region.end(), x86::kMmioHoleStart, x86::kMmioHoleEnd);
        }
        // RAM minus the legacy area [kEbdaStart, 1 MiB), which is listed as
        // reserved below even though it is backed by RAM (the ACPI tables live there).
        const std::uint64_t below_start = region.guest_address;
        const std::uint64_t below_end = std::min(region.end(), x86::kEbdaStart);
        if (below_start < below_end) {
            map.push_back({below_start, below_end - below_start, E820Type::Ram});
        }
        const std::uint64_t above_start = std::max(region.guest_address, x86::kHighMemoryStart);
        if (above_start < region.end()) {
            map.push_back({above_start, region.end() - above_start, E820Type::Ram});
        }
    }

    map.push_back({x86::kEbdaStart, x86::kHighMemoryStart - x86::kEbdaStart, E820Type::Reserved});
    for (const auto& reservation : kHoleReservations) {
        map.push_back({reservation.address, reservation.size, E820Type::Reserved});
    }

    std::sort(map.begin(), map.end(),
              [](const E820Entry& a, const E820Entry& b) { return a.address < b.address; });
    return map;
}

}  // namespace vmm::boot
