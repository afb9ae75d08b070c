// The x86-64 guest physical address map. Every fixed guest address lives here
// so that boot code, ACPI tables and devices agree.
#pragma once

#include <cstdint>

namespace vmm::x86 {

inline constexpr std::uint64_t KiB = 1024;
inline constexpr std::uint64_t MiB = 1024 * KiB;
inline constexpr std::uint64_t GiB = 1024 * MiB;

// Low memory used by the boot code (all below the EBDA, above the real-mode IVT).
inline constexpr std::uint64_t kBootGdtAddress = 0x500;
inline constexpr std::uint64_t kBootIdtAddress = 0x520;
inline constexpr std::uint64_t kPvhStartInfoAddress = 0x6000;  // hvm_start_info + memmap
inline constexpr std::uint64_t kZeroPageAddress = 0x7000;      // Linux boot_params
inline constexpr std::uint64_t kBootStackTop = 0x8ff0;
inline constexpr std::uint64_t kPageTablesAddress = 0x9000;  // PML4, PDPT, 4 x PD
inline constexpr std::uint64_t kCmdlineAddress = 0x20000;
inline constexpr std::uint64_t kCmdlineMaxSize = 0x10000;

// Conventional memory ends at the EBDA; [0x9fc00, 1 MiB) is reserved.
inline constexpr std::uint64_t kEbdaStart = 0x9fc00;
// ACPI tables live in the BIOS area so that a legacy RSDP scan finds them too.
inline constexpr std::uint64_t kAcpiTablesStart = 0xe0000;
inline constexpr std::uint64_t kAcpiTablesEnd = 0x100000;

inline constexpr std::uint64_t kHighMemoryStart = 1 * MiB;  // protected-mode kernel default

// The 32-bit hole below 4 GiB: PCI MMIO, ECAM, IOAPIC, LAPIC, and KVM's TSS.
inline constexpr std::uint64_t kMmioHoleStart = 0xc000'0000;
inline constexpr std::uint64_t kMmioHoleEnd = 4 * GiB;
inline constexpr std::uint64_t kPciMmio32Start = 0xc000'0000;
inline constexpr std::uint64_t kPciMmio32End = 0xe000'0000;
inline constexpr std::uint64_t kPciEcamStart = 0xe000'0000;  // 256 buses x 1 MiB
inline constexpr std::uint64_t kPciEcamSize = 256 * MiB;
// ECAM gives each bus 32 devices x 8 functions x 4 KiB; the MCFG's bus range
// is what the window above decodes.
inline constexpr std::uint64_t kPciEcamBusSize = 1 * MiB;
inline constexpr std::uint32_t kPciEcamBusCount = kPciEcamSize / kPciEcamBusSize;
static_assert(kPciEcamSize % kPciEcamBusSize == 0 && kPciEcamBusCount <= 256);
// 64-bit BARs go above RAM, in a window that stays below 2^40 (the
// physical-address width of the smallest CPUs this VMM targets, QEMU's TCG
// included). Guests with RAM reaching into it are refused.
inline constexpr std::uint64_t kPciMmio64Start = 256 * GiB;
inline constexpr std::uint64_t kPciMmio64End = 512 * GiB;
// PCI I/O-port BARs and the legacy config mechanism (0xCF8 address, 0xCFC data).
inline constexpr std::uint64_t kPciIoStart = 0xc000;
inline constexpr std::uint64_t kPciIoEnd = 0x10000;
inline constexpr std::uint16_t kPciConfigPort = 0xcf8;
inline constexpr std::uint64_t kIoapicAddress = 0xfec0'0000;
// PCI INTx: pin `pin` (0 = INTA .. 3 = INTD) of `slot` on bus 0 drives IOAPIC
// input kPciIntxFirstGsi + (slot + pin) % kPciIntxGsiCount, level-triggered.
// The rotation by slot spreads devices over the eight inputs above the ISA
// ones, like the swizzle behind a PCI bridge. The DSDT's _PRT publishes this
// map and devices/pci wires pin A by it.
inline constexpr std::uint32_t kPciIntxFirstGsi = 16;
inline constexpr std::uint32_t kPciIntxGsiCount = 8;  // KVM's IOAPIC has 24 inputs
constexpr std::uint32_t pci_intx_gsi(std::uint32_t slot, std::uint32_t pin) {
    return kPciIntxFirstGsi + (slot + pin) % kPciIntxGsiCount;
}
inline constexpr std::uint64_t kLapicAddress = 0xfee0'0000;
inline constexpr std::uint64_t kKvmIdentityMapAddress = 0xfffb'c000;  // 1 page
inline constexpr std::uint64_t kKvmTssAddress = 0xfffb'd000;          // 3 pages
// Sizes KVM fixes for the two private areas above (KVM_SET_IDENTITY_MAP_ADDR
// takes one page, KVM_SET_TSS_ADDR three); the e820 map reserves them.
inline constexpr std::uint64_t kKvmIdentityMapSize = 4 * KiB;
inline constexpr std::uint64_t kKvmTssSize = 3 * 4 * KiB;

// Guest RAM above this moves to 4 GiB and up.
inline constexpr std::uint64_t kLowMemoryLimit = kMmioHoleStart;
inline constexpr std::uint64_t kHighRamStart = 4 * GiB;
// The most guest RAM there is room for: with the 1 GiB hole below 4 GiB,
// RAM ends 1 GiB above its size and must stay below the 64-bit PCI window
// (255 GiB).
inline constexpr std::uint64_t kMaxRamSize = kPciMmio64Start - (kMmioHoleEnd - kMmioHoleStart);
static_assert(kMaxRamSize == 255 * GiB);

// Port I/O that the VMM itself answers.
inline constexpr std::uint16_t kCom1Port = 0x3f8;
inline constexpr std::uint8_t kCom1Irq = 4;
inline constexpr std::uint16_t kI8042DataPort = 0x60;
inline constexpr std::uint16_t kI8042CommandPort = 0x64;
// ACPI hardware-reduced sleep control / reset register (FADT points here).
inline constexpr std::uint16_t kAcpiSleepControlPort = 0x600;
inline constexpr std::uint16_t kAcpiSleepStatusPort = 0x601;
inline constexpr std::uint8_t kAcpiResetValue = 0x01;
inline constexpr std::uint8_t kAcpiS5SleepType = 5;  // DSDT \_S5_ package value

}  // namespace vmm::x86
