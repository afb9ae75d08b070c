// The PCI side of the ACPI tables: the MCFG and the reservations Linux
// requires before it trusts it (E820 and a PNP0C02 motherboard resource),
// the host bridge's bus range and _CBA agreeing with it, and the _PRT
// agreeing with the IOAPIC inputs devices/pci drives.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "aml_reader.hpp"
#include "base/error.hpp"
#include "devices/pci/pci_bus.hpp"
#include "table_bytes.hpp"
#include "vmm/acpi/acpi_tables.hpp"
#include "vmm/acpi/madt.hpp"
#include "vmm/acpi/mcfg.hpp"
#include "vmm/acpi/pci_routing.hpp"
#include "vmm/acpi/table_writer.hpp"
#include "vmm/boot/e820.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm::acpi {
namespace {

using test::AmlBuffer;
using test::AmlPackage;
using test::field;
using test::find;
using test::named_object;
using test::offset_of;

constexpr std::size_t kMcfgBase = 44;
constexpr std::size_t kMcfgSegment = 52;
constexpr std::size_t kMcfgStartBus = 54;
constexpr std::size_t kMcfgEndBus = 55;

std::vector<std::uint8_t> dsdt() {
    return find(build_acpi_tables({1}), "DSDT").bytes;
}

TEST(Mcfg, OneAllocationForTheWholeEcamWindow) {
    const auto mcfg = find(build_acpi_tables({1}), "MCFG").bytes;
    ASSERT_EQ(mcfg.size(), kMcfgFixedLength + kMcfgAllocationLength);
    EXPECT_EQ(test::text(mcfg, 0, 4), "MCFG");
    EXPECT_EQ(field<std::uint32_t>(mcfg, 4), mcfg.size());
    EXPECT_EQ(mcfg[8], kMcfgRevision);
    EXPECT_TRUE(checksum_is_valid(mcfg));
    EXPECT_EQ(field<std::uint64_t>(mcfg, 36), 0u);  // reserved
    EXPECT_EQ(field<std::uint64_t>(mcfg, kMcfgBase), x86::kPciEcamStart);
    EXPECT_EQ(field<std::uint16_t>(mcfg, kMcfgSegment), 0);
    EXPECT_EQ(mcfg[kMcfgStartBus], 0);
    EXPECT_EQ(mcfg[kMcfgEndBus], 0xff);
    EXPECT_EQ(field<std::uint32_t>(mcfg, 56), 0u);  // reserved
    // The buses listed are exactly what the ECAM window decodes.
    EXPECT_EQ((mcfg[kMcfgEndBus] + 1u) * x86::kPciEcamBusSize, x86::kPciEcamSize);
}

TEST(Mcfg, BusRangeFollowsTheBusCount) {
    EXPECT_EQ(build_mcfg(0xb000'0000, 1)[kMcfgEndBus], 0);
    EXPECT_EQ(build_mcfg(0xb000'0000, 16)[kMcfgEndBus], 15);
    EXPECT_EQ(field<std::uint64_t>(build_mcfg(0x1'0000'0000, 2), kMcfgBase), 0x1'0000'0000u);
    EXPECT_THROW(build_mcfg(0xb000'0000, 0), base::Error);
    EXPECT_THROW(build_mcfg(0xb000'0000, 257), base::Error);
}

// Linux's early check (mmconfig-shared.c, pci_mmcfg_reserved() without DMI
// data) wants the whole window inside one E820 reserved entry.
TEST(Mcfg, WindowIsReservedInE820) {
    const auto mcfg = find(build_acpi_tables({1}), "MCFG").bytes;
    const std::uint64_t start = field<std::uint64_t>(mcfg, kMcfgBase);
    const std::uint64_t end = start + (mcfg[kMcfgEndBus] + 1u) * x86::kPciEcamBusSize;
    for (const std::uint64_t ram : {64 * x86::MiB, 3 * x86::GiB, 8 * x86::GiB}) {
        const auto map = boot::build_e820_map(GuestMemory::create_x86(ram));
        const bool covered = std::any_of(map.begin(), map.end(), [&](const boot::E820Entry& e) {
            return e.type == boot::E820Type::Reserved && e.address <= start && end <= e.end();
        });
        EXPECT_TRUE(covered) << "RAM " << ram;
    }
}

// Linux's late check (is_acpi_reserved()): a PNP0C01/PNP0C02 device whose
// _CRS has a fixed memory range or address space covering the window.
TEST(Dsdt, MotherboardResourceCoversTheEcamWindow) {
    const auto table = dsdt();
    const std::size_t device = offset_of(table, "MRES");
    const std::uint64_t pnp0c02 = 0x020cd041;  // EisaId ("PNP0C02") as iasl encodes it
    EXPECT_EQ(std::get<std::uint64_t>(named_object(table, "_HID", device)), pnp0c02);
    const auto crs = std::get<AmlBuffer>(named_object(table, "_CRS", device));
    // Memory32Fixed (ReadWrite, base, length), then the end tag.
    ASSERT_EQ(crs.size(), 14u);
    EXPECT_EQ(crs[0], 0x86);
    EXPECT_EQ(field<std::uint16_t>(crs, 1), 9);
    EXPECT_EQ(crs[3], 1);  // read-write
    EXPECT_EQ(field<std::uint32_t>(crs, 4), x86::kPciEcamStart);
    EXPECT_EQ(field<std::uint32_t>(crs, 8), x86::kPciEcamSize);
    EXPECT_EQ(crs[12], 0x79);
}

// acpi_pci_root_add() reads the bus range from _CRS and the ECAM base from
// _CBA; both must name the MCFG's window.
TEST(Dsdt, HostBridgeBusRangeAndCbaMatchTheMcfg) {
    const auto tables = build_acpi_tables({1});
    const auto& table = find(tables, "DSDT").bytes;
    const auto& mcfg = find(tables, "MCFG").bytes;
    const std::size_t device = offset_of(table, "PCI0");
    EXPECT_EQ(std::get<std::uint64_t>(named_object(table, "_CBA", device)),
              field<std::uint64_t>(mcfg, kMcfgBase));
    const auto crs = std::get<AmlBuffer>(named_object(table, "_CRS", device));
    // The first descriptor is WordBusNumber: tag 0x88, resource type 2,
    // then granularity, minimum and maximum.
    ASSERT_GE(crs.size(), 16u);
    EXPECT_EQ(crs[0], 0x88);
    EXPECT_EQ(crs[3], 2);
    EXPECT_EQ(field<std::uint16_t>(crs, 8), mcfg[kMcfgStartBus]);
    EXPECT_EQ(field<std::uint16_t>(crs, 10), mcfg[kMcfgEndBus]);
}

struct PrtEntry {
    std::uint64_t address, pin, source, gsi;
};

std::vector<PrtEntry> prt_entries(const std::vector<std::uint8_t>& table) {
    const auto prt = std::get<AmlPackage>(named_object(table, "_PRT", offset_of(table, "PCI0")));
    std::vector<PrtEntry> entries;
    for (const auto& element : prt.elements) {
        const auto& fields = std::get<AmlPackage>(element).elements;
        if (fields.size() != 4) throw std::runtime_error("a _PRT entry without 4 fields");
        entries.push_back({std::get<std::uint64_t>(fields[0]), std::get<std::uint64_t>(fields[1]),
                           std::get<std::uint64_t>(fields[2]), std::get<std::uint64_t>(fields[3])});
    }
    return entries;
}

TEST(Prt, OneStaticEntryPerSlotAndPin) {
    const auto entries = prt_entries(dsdt());
    ASSERT_EQ(entries.size(), kPciRoutedSlots * kPciIntxPins);
    std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> gsi_of;
    for (const auto& entry : entries) {
        EXPECT_EQ(entry.address & 0xffff, 0xffffu) << "any function";
        EXPECT_EQ(entry.source, 0u) << "static GSI form, no link device";
        const std::uint64_t slot = entry.address >> 16;
        EXPECT_LT(slot, 32u);
        EXPECT_LT(entry.pin, 4u);
        EXPECT_TRUE(gsi_of.emplace(std::pair{slot, entry.pin}, entry.gsi).second)
            << "slot " << slot << " pin " << entry.pin << " listed twice";
    }
    EXPECT_EQ(gsi_of.size(), 128u);
}

TEST(Prt, PinsRotateOverGsis16To23) {
    for (const auto& entry : prt_entries(dsdt())) {
        const std::uint64_t slot = entry.address >> 16;
        EXPECT_EQ(entry.gsi, 16 + (slot + entry.pin) % 8)
            << "slot " << slot << " pin " << entry.pin;
    }
    EXPECT_EQ(x86::pci_intx_gsi(0, 0), 16u);
    EXPECT_EQ(x86::pci_intx_gsi(7, 0), 23u);
    EXPECT_EQ(x86::pci_intx_gsi(8, 0), 16u);
    EXPECT_EQ(x86::pci_intx_gsi(3, 3), 22u);
    EXPECT_EQ(x86::pci_intx_gsi(31, 3), 18u);
}

// The _PRT is only true if devices/pci raises INTx where it says.
TEST(Prt, PinAIsTheGsiThePciBusWires) {
    for (const auto& entry : prt_entries(dsdt())) {
        if (entry.pin != 0) continue;
        const auto slot = static_cast<std::uint8_t>(entry.address >> 16);
        EXPECT_EQ(entry.gsi, devices::pci::intx_gsi_for_slot(slot)) << "slot " << int{slot};
    }
}

// Linux programs the _PRT's GSIs level-triggered, active low. No MADT
// interrupt source override may claim them (those are for ISA IRQs), and
// they must be inputs of the one IOAPIC (KVM's has 24, GSI base 0).
TEST(Prt, GsisAreIoapicInputsWithoutOverrides) {
    const auto madt = find(build_acpi_tables({4}), "APIC").bytes;
    std::vector<std::uint32_t> overridden;
    for (std::size_t at = kMadtFixedLength; at + 2 <= madt.size(); at += madt[at + 1]) {
        ASSERT_GE(madt[at + 1], 2);
        if (madt[at] == kMadtIoApic) {
            EXPECT_EQ(field<std::uint32_t>(madt, at + 8), 0u);
        }
        if (madt[at] == kMadtInterruptSourceOverride) {
            overridden.push_back(field<std::uint32_t>(madt, at + 4));
        }
    }
    for (const auto& entry : prt_entries(dsdt())) {
        EXPECT_LT(entry.gsi, 24u);
        EXPECT_GE(entry.gsi, 16u);
        EXPECT_EQ(std::count(overridden.begin(), overridden.end(), entry.gsi), 0);
    }
}

}  // namespace
}  // namespace vmm::acpi
