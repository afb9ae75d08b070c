// Segment descriptors for the boot GDT, and the matching KVM segment state.
// The same 64-bit descriptor is both written to guest memory and decoded
// into kvm_segment, so the hidden segment state KVM loads always agrees
// with the table the guest sees.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>

namespace vmm::x86 {

// Packs a descriptor. `flags` holds the access byte in bits 0-7 and the
// G/DB/L/AVL nibble in bits 12-15, as in Intel SDM vol. 3, figure 3-8;
// `limit` is the raw 20-bit limit.
constexpr std::uint64_t gdt_entry(std::uint16_t flags, std::uint32_t base, std::uint32_t limit) {
    return ((std::uint64_t{base} & 0xff00'0000) << 32) |
           ((std::uint64_t{base} & 0x00ff'ffff) << 16) | (std::uint64_t{limit} & 0x0'ffff) |
           ((std::uint64_t{limit} & 0xf'0000) << 32) | ((std::uint64_t{flags} & 0xf0ff) << 40);
}

// Decodes a descriptor into what KVM_SET_SREGS wants, with the limit scaled
// to bytes when G is set.
kvm_segment segment_from_gdt_entry(std::uint64_t entry, std::uint16_t selector);

inline constexpr std::size_t kBootGdtEntries = 4;  // fits [kBootGdtAddress, kBootIdtAddress)

struct BootGdt {
    std::array<std::uint64_t, kBootGdtEntries> entries;
    std::uint16_t code_selector;
    std::uint16_t data_selector;
    std::uint16_t tss_selector;
};

// Linux 64-bit boot protocol: __BOOT_CS = 0x10 (64-bit code) and
// __BOOT_DS = 0x18, both flat 4 GiB; the TSS takes the spare slot 0x08.
BootGdt linux64_boot_gdt();
// PVH: flat 32-bit code 0x08 and data 0x10 (the order Linux's own PVH GDT
// uses) and the 32-bit TSS (base 0, limit 0x67) the PVH ABI asks TR to hold.
BootGdt pvh_boot_gdt();

}  // namespace vmm::x86
