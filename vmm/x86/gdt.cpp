#include "vmm/x86/gdt.hpp"

#include "vmm/x86/layout.hpp"

namespace vmm::x86 {

namespace {

// Access byte + flags nibble (see gdt_entry).
constexpr std::uint16_t kCode64 = 0xa09b;      // G, L; present, DPL 0, code execute/read, accessed
constexpr std::uint16_t kCode32 = 0xc09b;      // G, D; present, DPL 0, code execute/read, accessed
constexpr std::uint16_t kData = 0xc093;        // G, B; present, DPL 0, data read/write, accessed
constexpr std::uint16_t kTss = 0x008b;         // present, system, busy 32/64-bit TSS
constexpr std::uint32_t kFlatLimit = 0xfffff;  // with G: 4 GiB
constexpr std::uint32_t kTssLimit = 0x67;      // a TSS without I/O bitmap

static_assert(kBootGdtAddress + kBootGdtEntries * sizeof(std::uint64_t) <= kBootIdtAddress,
              "the boot GDT must end where the boot IDT starts");

}  // namespace

kvm_segment segment_from_gdt_entry(std::uint64_t entry, std::uint16_t selector) {
    kvm_segment segment{};
    segment.base = ((entry >> 16) & 0x00ff'ffff) | ((entry >> 32) & 0xff00'0000);
    const auto raw_limit =
        static_cast<std::uint32_t>((entry & 0xffff) | ((entry >> 32) & 0xf'0000));
    segment.g = (entry >> 55) & 1;
    segment.limit = segment.g != 0 ? (raw_limit << 12) | 0xfff : raw_limit;
    segment.selector = selector;
    segment.type = (entry >> 40) & 0xf;
    segment.s = (entry >> 44) & 1;
    segment.dpl = (entry >> 45) & 3;
    segment.present = (entry >> 47) & 1;
    segment.avl = (entry >> 52) & 1;
    segment.l = (entry >> 53) & 1;
    segment.db = (entry >> 54) & 1;
    segment.unusable = segment.present != 0 ? 0 : 1;
    return segment;
}

BootGdt linux64_boot_gdt() {
    // In long mode a TSS descriptor is 16 bytes and would run into slot
    // 0x10. Nothing executes LTR with this table: KVM loads TR's hidden
    // state from the decoded entry and the kernel installs its own GDT and
    // TSS, so the 8-byte form is enough to give TR a real descriptor.
    return BootGdt{
        {
            0,
            gdt_entry(kTss, 0, kTssLimit),
            gdt_entry(kCode64, 0, kFlatLimit),
            gdt_entry(kData, 0, kFlatLimit),
        },
        0x10,
        0x18,
        0x08,
    };
}

BootGdt pvh_boot_gdt() {
    return BootGdt{
        {
            0,
            gdt_entry(kCode32, 0, kFlatLimit),
            gdt_entry(kData, 0, kFlatLimit),
            gdt_entry(kTss, 0, kTssLimit),
        },
        0x08,
        0x10,
        0x18,
    };
}

}  // namespace vmm::x86
