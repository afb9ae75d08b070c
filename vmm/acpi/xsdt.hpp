// Extended System Description Table (ACPI 6.5, 5.2.8): the list of 64-bit
// pointers to every table but the DSDT (which the FADT points to).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace vmm::acpi {

std::vector<std::uint8_t> build_xsdt(std::span<const std::uint64_t> table_addresses);

}  // namespace vmm::acpi
