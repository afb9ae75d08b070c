#include "vmm/x86/cpu_state.hpp"

#include <asm/processor-flags.h>

#include "vmm/x86/gdt.hpp"
#include "vmm/x86/layout.hpp"
#include "vmm/x86/page_tables.hpp"

namespace vmm::x86 {

namespace {

// EFER bits (Intel SDM vol. 3, 2.2.1); not in the uAPI headers.
constexpr std::uint64_t kEferLme = 1ULL << 8;
constexpr std::uint64_t kEferLma = 1ULL << 10;
// Bit 1 of RFLAGS is reserved and always 1; IF stays clear as both
// protocols require.
constexpr std::uint64_t kInitialRflags = 0x2;
// The boot IDT is one null entry: an exception before the kernel loads its
// own IDT becomes a triple fault that the VMM reports, not a wild jump.
constexpr std::uint16_t kBootIdtLimit = sizeof(std::uint64_t) - 1;

BootGdt gdt_for(boot::BootEntry::Mode mode) {
    return mode == boot::BootEntry::Mode::Linux64 ? linux64_boot_gdt() : pvh_boot_gdt();
}

}  // namespace

kvm_regs boot_regs(const boot::BootEntry& entry) {
    kvm_regs regs{};
    regs.rflags = kInitialRflags;
    regs.rip = entry.entry_point;
    // Neither protocol needs a stack; one in low RAM keeps an early push
    // from landing on random memory.
    regs.rsp = kBootStackTop;
    regs.rbp = kBootStackTop;
    if (entry.mode == boot::BootEntry::Mode::Linux64) {
        regs.rsi = entry.boot_info_address;  // struct boot_params
    } else {
        regs.rbx = entry.boot_info_address;  // struct hvm_start_info
    }
    return regs;
}

kvm_sregs boot_sregs(const boot::BootEntry& entry, const kvm_sregs& current) {
    kvm_sregs sregs = current;
    const BootGdt gdt = gdt_for(entry.mode);
    const auto segment = [&](std::uint16_t selector) {
        return segment_from_gdt_entry(gdt.entries[selector / sizeof(std::uint64_t)], selector);
    };

    sregs.gdt.base = kBootGdtAddress;
    sregs.gdt.limit = static_cast<std::uint16_t>(sizeof(gdt.entries) - 1);
    sregs.idt.base = kBootIdtAddress;
    sregs.idt.limit = kBootIdtLimit;

    sregs.cs = segment(gdt.code_selector);
    sregs.ds = segment(gdt.data_selector);
    sregs.es = sregs.ds;
    sregs.fs = sregs.ds;
    sregs.gs = sregs.ds;
    sregs.ss = sregs.ds;
    sregs.tr = segment(gdt.tss_selector);

    // Set CR0 whole rather than OR-ing into KVM's reset value, which has
    // CD and NW set (caches off). ET is hardwired to 1.
    if (entry.mode == boot::BootEntry::Mode::Linux64) {
        sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
        sregs.cr3 = kPageTablesAddress;
        sregs.cr4 = X86_CR4_PAE;
        sregs.efer = current.efer | kEferLme | kEferLma;
    } else {
        // PVH ABI: CR0.PE set and every other writable bit clear; CR4 zero.
        sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
        sregs.cr3 = 0;
        sregs.cr4 = 0;
        sregs.efer = current.efer & ~(kEferLme | kEferLma);
    }
    return sregs;
}

BootCpuState boot_cpu_state(GuestMemory& memory, const boot::BootEntry& entry,
                            const kvm_sregs& current) {
    const BootGdt gdt = gdt_for(entry.mode);
    memory.write(kBootGdtAddress, gdt.entries);
    memory.write(kBootIdtAddress, std::uint64_t{0});
    // The PML4 is at kPageTablesAddress, which boot_sregs puts in CR3.
    if (entry.mode == boot::BootEntry::Mode::Linux64) write_identity_page_tables(memory);
    return BootCpuState{boot_regs(entry), boot_sregs(entry, current)};
}

}  // namespace vmm::x86
