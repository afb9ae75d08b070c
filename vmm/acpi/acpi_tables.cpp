#include "vmm/acpi/acpi_tables.hpp"

#include "base/checked_math.hpp"
#include "base/error.hpp"
#include "vmm/acpi/dsdt.hpp"
#include "vmm/acpi/fadt.hpp"
#include "vmm/acpi/madt.hpp"
#include "vmm/acpi/mcfg.hpp"
#include "vmm/acpi/motherboard_resources.hpp"
#include "vmm/acpi/pci_host_bridge.hpp"
#include "vmm/acpi/rsdp.hpp"
#include "vmm/acpi/xsdt.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm::acpi {

namespace {

// The RSDP must be 16-byte aligned for the legacy scan; the other tables
// only need natural alignment of their 64-bit fields.
constexpr std::uint64_t kTableAlignment = 16;
static_assert(x86::kAcpiTablesStart % kTableAlignment == 0);

// Hands out addresses in the ACPI area, in order.
class AreaAllocator {
  public:
    GuestAddress place(std::size_t size, std::string_view what) {
        const GuestAddress address = next_;
        if (!base::range_within(address, size, x86::kAcpiTablesEnd)) {
            throw base::Error(
                "the ACPI tables do not fit in [{:#x}, {:#x}): {} needs {} bytes at "
                "{:#x}",
                x86::kAcpiTablesStart, x86::kAcpiTablesEnd, what, size, address);
        }
        next_ = base::align_up(address + size, kTableAlignment);
        return address;
    }

  private:
    GuestAddress next_ = x86::kAcpiTablesStart;
};

}  // namespace

std::vector<PlacedTable> build_acpi_tables(const AcpiTablesConfig& config) {
    AreaAllocator area;
    const GuestAddress rsdp_address = area.place(kRsdpLength, "RSDP");

    const aml::Bytes system_bus_devices[] = {pci_host_bridge_device(),
                                             motherboard_resources_device()};
    auto dsdt = build_dsdt(system_bus_devices);
    const GuestAddress dsdt_address = area.place(dsdt.size(), "DSDT");
    auto fadt = build_fadt(dsdt_address);
    const GuestAddress fadt_address = area.place(fadt.size(), "FACP");

    // Tables the XSDT lists; DMAR joins here.
    std::vector<PlacedTable> listed;
    listed.push_back({"FACP", fadt_address, std::move(fadt)});
    auto madt = build_madt(config.cpu_count);
    const GuestAddress madt_address = area.place(madt.size(), "APIC");
    listed.push_back({"APIC", madt_address, std::move(madt)});
    auto mcfg = build_mcfg(x86::kPciEcamStart, x86::kPciEcamBusCount);
    const GuestAddress mcfg_address = area.place(mcfg.size(), "MCFG");
    listed.push_back({"MCFG", mcfg_address, std::move(mcfg)});

    std::vector<std::uint64_t> addresses;
    for (const auto& table : listed) addresses.push_back(table.address);
    auto xsdt = build_xsdt(addresses);
    const GuestAddress xsdt_address = area.place(xsdt.size(), "XSDT");

    std::vector<PlacedTable> tables;
    tables.push_back({"RSD PTR ", rsdp_address, build_rsdp(xsdt_address)});
    tables.push_back({"DSDT", dsdt_address, std::move(dsdt)});
    for (auto& table : listed) tables.push_back(std::move(table));
    tables.push_back({"XSDT", xsdt_address, std::move(xsdt)});
    return tables;
}

GuestAddress write_acpi_tables(GuestMemory& memory, const AcpiTablesConfig& config) {
    const auto tables = build_acpi_tables(config);
    for (const auto& table : tables) {
        if (!memory.contains(table.address, table.bytes.size())) {
            throw base::Error("the ACPI area [{:#x}, {:#x}) is not guest RAM",
                              x86::kAcpiTablesStart, x86::kAcpiTablesEnd);
        }
    }
    for (const auto& table : tables) memory.write_bytes(table.address, table.bytes);
    return tables.front().address;
}

}  // namespace vmm::acpi
