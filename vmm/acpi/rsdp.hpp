// Root System Description Pointer (ACPI 6.5, 5.2.5): where the guest starts
// looking for ACPI tables. Revision 2, pointing at the XSDT only.
#pragma once

#include <cstdint>
#include <vector>

namespace vmm::acpi {

inline constexpr std::size_t kRsdpV1Length = 20;  // covered by the first checksum
inline constexpr std::size_t kRsdpLength = 36;    // covered by the extended checksum

std::vector<std::uint8_t> build_rsdp(std::uint64_t xsdt_address);

}  // namespace vmm::acpi
