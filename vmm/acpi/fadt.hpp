// Fixed ACPI Description Table (ACPI 6.5, 5.2.9), revision 6, for a
// hardware-reduced platform: no PM1/GPE blocks, no SCI, no FACS. Power-off
// and reboot go through the sleep control/status and reset registers, which
// the VMM answers at kAcpiSleepControlPort / kAcpiSleepStatusPort.
#pragma once

#include <cstdint>
#include <vector>

namespace vmm::acpi {

inline constexpr std::size_t kFadtLength = 276;  // revision 6
inline constexpr std::uint8_t kFadtRevision = 6;
inline constexpr std::uint8_t kFadtMinorRevision = 5;  // ACPI 6.5

// FADT Flags bits (ACPI 6.5, table 5.10) and IA-PC boot architecture bits
// (table 5.11) this VMM uses.
inline constexpr std::uint32_t kFadtPowerButton = 1u << 4;  // no fixed power button
inline constexpr std::uint32_t kFadtSleepButton = 1u << 5;  // no fixed sleep button
inline constexpr std::uint32_t kFadtResetRegSupported = 1u << 10;
inline constexpr std::uint32_t kFadtHwReducedAcpi = 1u << 20;
inline constexpr std::uint16_t kBootArchNoVga = 1u << 2;
inline constexpr std::uint16_t kBootArchNoCmosRtc = 1u << 5;

// Byte offsets in the table, for tests and readers of the raw bytes.
inline constexpr std::size_t kFadtFlagsOffset = 112;
inline constexpr std::size_t kFadtResetRegOffset = 116;
inline constexpr std::size_t kFadtResetValueOffset = 128;
inline constexpr std::size_t kFadtXDsdtOffset = 140;
inline constexpr std::size_t kFadtSleepControlOffset = 244;
inline constexpr std::size_t kFadtSleepStatusOffset = 256;

std::vector<std::uint8_t> build_fadt(std::uint64_t dsdt_address);

}  // namespace vmm::acpi
