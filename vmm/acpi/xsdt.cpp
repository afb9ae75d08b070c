#include "vmm/acpi/xsdt.hpp"

#include "vmm/acpi/table_writer.hpp"

namespace vmm::acpi {

std::vector<std::uint8_t> build_xsdt(std::span<const std::uint64_t> table_addresses) {
    TableWriter table("XSDT", 1, "KVMVXSDT");
    for (const std::uint64_t address : table_addresses) table.append(address);
    return std::move(table).finish();
}

}  // namespace vmm::acpi
