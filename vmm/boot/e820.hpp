// The guest's BIOS-style memory map (e820), derived from the GuestMemory
// layout and the fixed address map in x86/layout.hpp. Both boot paths hand
// it to the kernel: the zero page's e820_table and PVH's memmap.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/guest_memory.hpp"

namespace vmm::boot {

// Values of the e820 / ACPI "Address Range Type" (ACPI 6.5, table 15.1).
enum class E820Type : std::uint32_t {
    Ram = 1,
    Reserved = 2,
    Acpi = 3,
    Nvs = 4,
    Unusable = 5,
};

struct E820Entry {
    std::uint64_t address;
    std::uint64_t size;
    E820Type type;

    std::uint64_t end() const { return address + size; }
    bool operator==(const E820Entry&) const = default;
};

// Builds the map, sorted by address and free of overlaps:
//   RAM      [0, kEbdaStart)
//   reserved [kEbdaStart, 1 MiB)        EBDA, VGA hole, BIOS area with the ACPI tables
//   RAM      [1 MiB, end of low RAM)
//   reserved PCI ECAM                   so that Linux accepts the MCFG window (its
//                                       early check; the DSDT's PNP0C02 serves the late one)
//   reserved KVM identity map + TSS     so that nothing maps a BAR over them
//   RAM      every region from 4 GiB up
// Throws base::Error when the layout cannot hold it: RAM must start at 0,
// cover the first MiB, and stay out of the 32-bit MMIO hole.
std::vector<E820Entry> build_e820_map(const GuestMemory& memory);

// End of the RAM region that starts at 0 and holds the kernel: the highest
// address + 1 that low boot data (kernel, initrd) may use.
GuestAddress low_ram_end(const GuestMemory& memory);

}  // namespace vmm::boot
