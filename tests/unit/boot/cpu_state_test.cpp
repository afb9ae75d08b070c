#include "vmm/x86/cpu_state.hpp"

#include <asm/processor-flags.h>
#include <gtest/gtest.h>

#include <optional>

#include "vmm/x86/gdt.hpp"
#include "vmm/x86/layout.hpp"
#include "vmm/x86/page_tables.hpp"

namespace vmm::x86 {
namespace {

constexpr std::uint64_t kEferLme = 1ULL << 8;
constexpr std::uint64_t kEferLma = 1ULL << 10;
constexpr std::uint64_t kEferSce = 1ULL << 0;

const boot::BootEntry kLinuxEntry{boot::BootEntry::Mode::Linux64, 0x100200, kZeroPageAddress};
const boot::BootEntry kPvhEntry{boot::BootEntry::Mode::Pvh32, 0x1000340, kPvhStartInfoAddress};

// What KVM_GET_SREGS returns after vCPU creation, roughly.
kvm_sregs kvm_reset_sregs() {
    kvm_sregs sregs{};
    sregs.cr0 = 0x6000'0010;  // CD | NW | ET
    sregs.apic_base = 0xfee0'0900;
    sregs.efer = kEferSce;
    sregs.ldt.type = 2;
    sregs.ldt.present = 1;
    sregs.ldt.limit = 0xffff;
    return sregs;
}

// Translates a virtual address through 4-level tables with 2 MiB pages.
std::optional<std::uint64_t> translate(const GuestMemory& memory, std::uint64_t cr3,
                                       std::uint64_t address) {
    constexpr std::uint64_t kAddressMask = 0x000f'ffff'ffff'f000;
    const auto pml4e = memory.read<std::uint64_t>(cr3 + ((address >> 39) & 0x1ff) * 8);
    if ((pml4e & 1) == 0) return std::nullopt;
    const auto pdpte =
        memory.read<std::uint64_t>((pml4e & kAddressMask) + ((address >> 30) & 0x1ff) * 8);
    if ((pdpte & 1) == 0 || (pdpte & 0x80) != 0) return std::nullopt;
    const auto pde =
        memory.read<std::uint64_t>((pdpte & kAddressMask) + ((address >> 21) & 0x1ff) * 8);
    if ((pde & 1) == 0 || (pde & 0x80) == 0 || (pde & 2) == 0) return std::nullopt;
    return (pde & 0x000f'ffff'ffe0'0000) | (address & 0x1f'ffff);
}

void expect_flat_4g(const kvm_segment& segment) {
    EXPECT_EQ(segment.base, 0u);
    EXPECT_EQ(segment.limit, 0xffff'ffffu);
    EXPECT_EQ(segment.g, 1);
    EXPECT_EQ(segment.present, 1);
    EXPECT_EQ(segment.s, 1);
    EXPECT_EQ(segment.dpl, 0);
    EXPECT_EQ(segment.unusable, 0);
}

TEST(Gdt, EncodesTheClassicDescriptors) {
    EXPECT_EQ(gdt_entry(0xa09b, 0, 0xfffff), 0x00af'9b00'0000'ffffULL);
    EXPECT_EQ(gdt_entry(0xc09b, 0, 0xfffff), 0x00cf'9b00'0000'ffffULL);
    EXPECT_EQ(gdt_entry(0xc093, 0, 0xfffff), 0x00cf'9300'0000'ffffULL);
    EXPECT_EQ(gdt_entry(0x008b, 0, 0x67), 0x0000'8b00'0000'0067ULL);
    EXPECT_EQ(gdt_entry(0x0093, 0x1234'5678, 0xabcde), 0x120a'9334'5678'bcdeULL);
}

TEST(Gdt, DecodesBaseLimitAndFlags) {
    const auto segment = segment_from_gdt_entry(gdt_entry(0x0093, 0x1234'5678, 0xabcde), 0x28);
    EXPECT_EQ(segment.base, 0x1234'5678u);
    EXPECT_EQ(segment.limit, 0xabcdeu);
    EXPECT_EQ(segment.selector, 0x28);
    EXPECT_EQ(segment.type, 3);
    EXPECT_EQ(segment.g, 0);
    const auto null = segment_from_gdt_entry(0, 0);
    EXPECT_EQ(null.unusable, 1);
}

TEST(CpuState, Linux64Registers) {
    const kvm_regs regs = boot_regs(kLinuxEntry);
    EXPECT_EQ(regs.rip, 0x100200u);
    EXPECT_EQ(regs.rsi, kZeroPageAddress);
    EXPECT_EQ(regs.rbx, 0u);
    EXPECT_EQ(regs.rflags, 0x2u);
    EXPECT_EQ(regs.rsp, kBootStackTop);
}

TEST(CpuState, Linux64LongModeSegmentsAndControlRegisters) {
    const kvm_sregs sregs = boot_sregs(kLinuxEntry, kvm_reset_sregs());
    // Boot protocol: CS = __BOOT_CS (0x10), DS/ES/SS = __BOOT_DS (0x18), 4 GiB flat.
    EXPECT_EQ(sregs.cs.selector, 0x10);
    expect_flat_4g(sregs.cs);
    EXPECT_EQ(sregs.cs.l, 1);
    EXPECT_EQ(sregs.cs.db, 0);
    EXPECT_EQ(sregs.cs.type, 0xb);
    for (const kvm_segment* data : {&sregs.ds, &sregs.es, &sregs.ss, &sregs.fs, &sregs.gs}) {
        EXPECT_EQ(data->selector, 0x18);
        expect_flat_4g(*data);
        EXPECT_EQ(data->type, 0x3);
    }
    EXPECT_EQ(sregs.tr.type, 0xb);  // busy 64-bit TSS
    EXPECT_EQ(sregs.tr.s, 0);
    EXPECT_EQ(sregs.tr.present, 1);

    EXPECT_EQ(sregs.cr0, X86_CR0_PE | X86_CR0_ET | X86_CR0_PG);  // CD/NW from reset are gone
    EXPECT_EQ(sregs.cr4, X86_CR4_PAE);
    EXPECT_EQ(sregs.cr3, kPageTablesAddress);
    EXPECT_EQ(sregs.efer, kEferSce | kEferLme | kEferLma);
    EXPECT_EQ(sregs.gdt.base, kBootGdtAddress);
    EXPECT_EQ(sregs.gdt.limit, 31);
    EXPECT_EQ(sregs.idt.base, kBootIdtAddress);
    EXPECT_EQ(sregs.idt.limit, 7);
}

TEST(CpuState, KeepsWhatKvmOwns) {
    const kvm_sregs current = kvm_reset_sregs();
    const kvm_sregs sregs = boot_sregs(kLinuxEntry, current);
    EXPECT_EQ(sregs.apic_base, current.apic_base);
    EXPECT_EQ(sregs.ldt.limit, current.ldt.limit);
    EXPECT_EQ(sregs.ldt.type, current.ldt.type);
}

TEST(CpuState, Linux64WritesGdtThatMatchesTheSegments) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    const BootCpuState state = boot_cpu_state(memory, kLinuxEntry, kvm_reset_sregs());
    for (const kvm_segment* segment : {&state.sregs.cs, &state.sregs.ds, &state.sregs.tr}) {
        const auto entry = memory.read<std::uint64_t>(kBootGdtAddress + segment->selector);
        const auto decoded = segment_from_gdt_entry(entry, segment->selector);
        EXPECT_EQ(decoded.type, segment->type);
        EXPECT_EQ(decoded.l, segment->l);
        EXPECT_EQ(decoded.db, segment->db);
        EXPECT_EQ(decoded.limit, segment->limit);
    }
    EXPECT_EQ(memory.read<std::uint64_t>(kBootGdtAddress), 0u);
    EXPECT_EQ(memory.read<std::uint64_t>(kBootIdtAddress), 0u);
}

TEST(CpuState, Linux64IdentityMapsTheFirstFourGiB) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    const BootCpuState state = boot_cpu_state(memory, kLinuxEntry, kvm_reset_sregs());
    for (const std::uint64_t address :
         {std::uint64_t{0}, kZeroPageAddress, kCmdlineAddress, std::uint64_t{0x100200},
          std::uint64_t{0x1234'5678}, kLapicAddress, 4 * GiB - 1}) {
        EXPECT_EQ(translate(memory, state.sregs.cr3, address), address) << std::hex << address;
    }
    EXPECT_EQ(translate(memory, state.sregs.cr3, 4 * GiB), std::nullopt);
}

TEST(CpuState, PageTablesStayInsideTheirArea) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    boot_cpu_state(memory, kLinuxEntry, kvm_reset_sregs());
    const auto below = memory.span(kPageTablesAddress - 4096, 4096);
    EXPECT_TRUE(std::all_of(below.begin(), below.end(), [](std::uint8_t b) { return b == 0; }));
    const auto above = memory.span(kPageTablesAddress + kPageTablePages * 4096, 4096);
    EXPECT_TRUE(std::all_of(above.begin(), above.end(), [](std::uint8_t b) { return b == 0; }));
}

TEST(CpuState, PvhRegisters) {
    const kvm_regs regs = boot_regs(kPvhEntry);
    EXPECT_EQ(regs.rip, 0x1000340u);
    EXPECT_EQ(regs.rbx, kPvhStartInfoAddress);
    EXPECT_EQ(regs.rsi, 0u);
    EXPECT_EQ(regs.rflags, 0x2u);
}

TEST(CpuState, PvhFlat32BitProtectedModeWithoutPaging) {
    kvm_sregs current = kvm_reset_sregs();
    current.efer |= kEferLme | kEferLma;  // e.g. left over from an earlier boot
    const kvm_sregs sregs = boot_sregs(kPvhEntry, current);
    expect_flat_4g(sregs.cs);
    EXPECT_EQ(sregs.cs.db, 1);
    EXPECT_EQ(sregs.cs.l, 0);
    EXPECT_EQ(sregs.cs.type, 0xb);
    for (const kvm_segment* data : {&sregs.ds, &sregs.es, &sregs.ss}) {
        expect_flat_4g(*data);
        EXPECT_EQ(data->db, 1);
        EXPECT_EQ(data->type, 0x3);
    }
    // PVH ABI: TR is a 32-bit TSS with base 0 and limit 0x67.
    EXPECT_EQ(sregs.tr.base, 0u);
    EXPECT_EQ(sregs.tr.limit, 0x67u);
    EXPECT_EQ(sregs.tr.type, 0xb);
    EXPECT_EQ(sregs.cr0, X86_CR0_PE | X86_CR0_ET);
    EXPECT_EQ(sregs.cr4, 0u);
    EXPECT_EQ(sregs.efer & (kEferLme | kEferLma), 0u);
    EXPECT_EQ(sregs.efer & kEferSce, kEferSce);
}

TEST(CpuState, PvhWritesNoPageTables) {
    auto memory = GuestMemory::create_x86(64 * MiB);
    const BootCpuState state = boot_cpu_state(memory, kPvhEntry, kvm_reset_sregs());
    const auto tables = memory.span(kPageTablesAddress, kPageTablePages * 4096);
    EXPECT_TRUE(std::all_of(tables.begin(), tables.end(), [](std::uint8_t b) { return b == 0; }));
    const auto code = memory.read<std::uint64_t>(kBootGdtAddress + state.sregs.cs.selector);
    EXPECT_EQ(code, gdt_entry(0xc09b, 0, 0xfffff));
}

}  // namespace
}  // namespace vmm::x86
