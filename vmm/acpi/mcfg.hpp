// PCI Express memory-mapped configuration table (MCFG, PCI Firmware 3.3,
// 4.1.2): where ECAM lives, so that the guest reaches the 4 KiB extended
// config space instead of the 256 bytes behind 0xCF8. Linux trusts the
// window only when it is also reserved: by an E820 entry (its early check,
// boot/e820.cpp) and by a PNP0C02 motherboard resource in the DSDT (its
// check once the ACPI namespace is up, motherboard_resources.hpp).
#pragma once

#include <cstdint>
#include <vector>

namespace vmm::acpi {

inline constexpr std::uint8_t kMcfgRevision = 1;
inline constexpr std::size_t kMcfgFixedLength = 44;       // header + 8 reserved bytes
inline constexpr std::size_t kMcfgAllocationLength = 16;  // one ECAM window

// One allocation: segment 0, buses [0, bus_count), ECAM at `ecam_base`
// (1 MiB per bus). Throws base::Error unless 1 <= bus_count <= 256.
std::vector<std::uint8_t> build_mcfg(std::uint64_t ecam_base, std::uint32_t bus_count);

}  // namespace vmm::acpi
