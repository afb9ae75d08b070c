// Multiple APIC Description Table (ACPI 6.5, 5.2.12): the local APICs, the
// IOAPIC and how ISA IRQs reach it.
#pragma once

#include <cstdint>
#include <vector>

namespace vmm::acpi {

// xAPIC Processor Local APIC entries carry 8-bit IDs and 0xff means "all
// processors", so more than 254 vCPUs would need x2APIC entries; the VMM
// caps vCPUs lower than that.
inline constexpr std::uint32_t kMaxMadtCpus = 64;
inline constexpr std::uint8_t kMadtRevision = 5;

// MADT entry types (ACPI 6.5, table 5.21).
inline constexpr std::uint8_t kMadtLocalApic = 0;
inline constexpr std::uint8_t kMadtIoApic = 1;
inline constexpr std::uint8_t kMadtInterruptSourceOverride = 2;
inline constexpr std::uint8_t kMadtLocalApicNmi = 4;

inline constexpr std::size_t kMadtFixedLength = 44;  // header + LAPIC address + flags

// The IOAPIC's ID: the first one after the vCPUs' APIC IDs (0..cpu_count-1),
// so that it clashes with none of them. The IOAPIC model should report it.
std::uint8_t ioapic_id(std::uint32_t cpu_count);

// One enabled Processor Local APIC per vCPU (ACPI processor UID = APIC ID =
// index), the IOAPIC at kIoapicAddress with GSI base 0, ISA IRQ 0 -> GSI 2,
// and LINT1 as NMI on every processor. Throws base::Error unless
// 1 <= cpu_count <= kMaxMadtCpus.
std::vector<std::uint8_t> build_madt(std::uint32_t cpu_count);

}  // namespace vmm::acpi
