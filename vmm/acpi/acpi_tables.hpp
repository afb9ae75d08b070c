// All ACPI tables of a guest, laid out in [kAcpiTablesStart, kAcpiTablesEnd)
// with the RSDP first (the legacy BIOS-area scan finds it there too).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vmm/guest_memory.hpp"

namespace vmm::acpi {

struct AcpiTablesConfig {
    std::uint32_t cpu_count = 1;
    // The PCI side (host bridge, _PRT, MCFG and its motherboard resource)
    // is fixed by x86/layout.hpp, like the PCI platform it describes. Later:
    // DMAR entries. Each new table is built in build_acpi_tables() and joins
    // the XSDT list there; nothing else changes.
};

struct PlacedTable {
    std::string signature;  // "RSD PTR " for the RSDP, else the 4-character signature
    GuestAddress address;
    std::vector<std::uint8_t> bytes;
};

// Builds every table at its final address, RSDP first. Pure: no guest
// memory involved, so tests can inspect (and disassemble) the tables.
// Throws base::Error for an unsupported configuration or when the tables
// outgrow their area.
std::vector<PlacedTable> build_acpi_tables(const AcpiTablesConfig& config);

// Builds the tables, writes them into guest memory and returns the RSDP
// address (for boot_params.acpi_rsdp_addr / hvm_start_info.rsdp_paddr).
GuestAddress write_acpi_tables(GuestMemory& memory, const AcpiTablesConfig& config);

}  // namespace vmm::acpi
