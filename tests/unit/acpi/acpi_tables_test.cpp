#include "vmm/acpi/acpi_tables.hpp"

#include <gtest/gtest.h>

#include <span>

#include "base/error.hpp"
#include "table_bytes.hpp"
#include "vmm/acpi/dsdt.hpp"
#include "vmm/acpi/fadt.hpp"
#include "vmm/acpi/madt.hpp"
#include "vmm/acpi/rsdp.hpp"
#include "vmm/acpi/table_writer.hpp"
#include "vmm/acpi/xsdt.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm::acpi {
namespace {

using test::field;
using test::find;

std::span<const std::uint8_t> first(const std::vector<std::uint8_t>& bytes, std::size_t count) {
    return std::span<const std::uint8_t>(bytes).first(count);
}

TEST(AcpiChecksum, MakesTheSumZero) {
    const std::vector<std::uint8_t> bytes{1, 2, 3, 250};
    EXPECT_EQ(checksum_byte(bytes), 0);  // already sums to 256
    const std::vector<std::uint8_t> other{0x10, 0x20};
    EXPECT_EQ(checksum_byte(other), 0xd0);
    EXPECT_TRUE(checksum_is_valid(std::vector<std::uint8_t>{0x10, 0x20, 0xd0}));
    EXPECT_FALSE(checksum_is_valid(other));
}

TEST(AcpiTableWriter, FillsTheHeader) {
    TableWriter writer("TEST", 3, "KVMVTEST");
    writer.append(std::uint32_t{0xdeadbeef});
    const auto bytes = std::move(writer).finish();
    ASSERT_EQ(bytes.size(), 40u);
    EXPECT_EQ(test::text(bytes, 0, 4), "TEST");
    EXPECT_EQ(field<std::uint32_t>(bytes, 4), 40u);
    EXPECT_EQ(bytes[8], 3);
    EXPECT_EQ(test::text(bytes, 10, 6), "KVMVMM");
    EXPECT_EQ(test::text(bytes, 16, 8), "KVMVTEST");
    EXPECT_EQ(test::text(bytes, 28, 4), "KVMV");
    EXPECT_TRUE(checksum_is_valid(bytes));
}

TEST(AcpiTableWriter, RejectsBadIdentifiers) {
    EXPECT_THROW(TableWriter("TOOLONG", 1, "X"), base::Error);
    EXPECT_THROW(TableWriter("ABCD", 1, "NINECHARS"), base::Error);
}

TEST(AcpiTables, EveryChecksumIsValid) {
    for (const std::uint32_t cpus : {1u, 4u, 64u}) {
        for (const auto& table : build_acpi_tables({cpus})) {
            if (table.signature == "RSD PTR ") {
                EXPECT_TRUE(checksum_is_valid(first(table.bytes, kRsdpV1Length)));
            }
            EXPECT_TRUE(checksum_is_valid(table.bytes)) << table.signature << " cpus " << cpus;
        }
    }
}

TEST(AcpiTables, HeaderLengthsMatchTheBytes) {
    for (const auto& table : build_acpi_tables({4})) {
        if (table.signature == "RSD PTR ") {
            EXPECT_EQ(table.bytes.size(), kRsdpLength);
            EXPECT_EQ(field<std::uint32_t>(table.bytes, kRsdpV1Length), kRsdpLength);
            continue;
        }
        EXPECT_EQ(test::text(table.bytes, 0, 4), table.signature);
        EXPECT_EQ(field<std::uint32_t>(table.bytes, 4), table.bytes.size()) << table.signature;
    }
}

TEST(AcpiTables, LaidOutInTheAcpiAreaWithoutOverlap) {
    const auto tables = build_acpi_tables({64});
    EXPECT_EQ(tables.front().signature, "RSD PTR ");
    EXPECT_EQ(tables.front().address, x86::kAcpiTablesStart);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    for (const auto& table : tables) {
        EXPECT_GE(table.address, x86::kAcpiTablesStart);
        EXPECT_LE(table.address + table.bytes.size(), x86::kAcpiTablesEnd);
        EXPECT_EQ(table.address % 16, 0u) << table.signature;
        ranges.emplace_back(table.address, table.address + table.bytes.size());
    }
    std::sort(ranges.begin(), ranges.end());
    for (std::size_t i = 1; i < ranges.size(); ++i)
        EXPECT_LE(ranges[i - 1].second, ranges[i].first);
}

TEST(AcpiTables, RsdpPointsAtTheXsdt) {
    const auto tables = build_acpi_tables({1});
    const auto& rsdp = tables.front().bytes;
    EXPECT_EQ(test::text(rsdp, 0, 8), "RSD PTR ");
    EXPECT_EQ(rsdp[15], 2);                         // revision
    EXPECT_EQ(field<std::uint32_t>(rsdp, 16), 0u);  // no RSDT
    EXPECT_EQ(field<std::uint64_t>(rsdp, 24), find(tables, "XSDT").address);
}

TEST(AcpiTables, XsdtListsFadtMadtAndMcfg) {
    const auto tables = build_acpi_tables({2});
    const auto& xsdt = find(tables, "XSDT").bytes;
    ASSERT_EQ(xsdt.size(), 36u + 3 * 8);
    EXPECT_EQ(field<std::uint64_t>(xsdt, 36), find(tables, "FACP").address);
    EXPECT_EQ(field<std::uint64_t>(xsdt, 44), find(tables, "APIC").address);
    EXPECT_EQ(field<std::uint64_t>(xsdt, 52), find(tables, "MCFG").address);
}

TEST(AcpiTables, FadtIsHardwareReducedRevisionSix) {
    const auto tables = build_acpi_tables({1});
    const auto& fadt = find(tables, "FACP").bytes;
    ASSERT_EQ(fadt.size(), kFadtLength);
    EXPECT_EQ(fadt[8], 6);  // revision
    EXPECT_EQ(fadt[131], kFadtMinorRevision);
    const auto flags = field<std::uint32_t>(fadt, kFadtFlagsOffset);
    EXPECT_NE(flags & kFadtHwReducedAcpi, 0u);
    EXPECT_NE(flags & kFadtResetRegSupported, 0u);
    EXPECT_EQ(field<std::uint64_t>(fadt, kFadtXDsdtOffset), find(tables, "DSDT").address);
    EXPECT_EQ(field<std::uint32_t>(fadt, 40), 0u);  // 32-bit DSDT unused
}

TEST(AcpiTables, FadtSleepAndResetRegisters) {
    const auto fadt = build_fadt(0x1234);
    const auto sleep_control = field<GenericAddress>(fadt, kFadtSleepControlOffset);
    EXPECT_EQ(sleep_control.space_id, kSpaceSystemIo);
    EXPECT_EQ(sleep_control.bit_width, 8);
    EXPECT_EQ(sleep_control.bit_offset, 0);
    EXPECT_EQ(sleep_control.address, x86::kAcpiSleepControlPort);
    const auto sleep_status = field<GenericAddress>(fadt, kFadtSleepStatusOffset);
    EXPECT_EQ(sleep_status.space_id, kSpaceSystemIo);
    EXPECT_EQ(sleep_status.address, x86::kAcpiSleepStatusPort);
    // Linux's acpi_reboot() needs an 8-bit register at bit offset 0.
    const auto reset = field<GenericAddress>(fadt, kFadtResetRegOffset);
    EXPECT_EQ(reset.space_id, kSpaceSystemIo);
    EXPECT_EQ(reset.bit_width, 8);
    EXPECT_EQ(reset.bit_offset, 0);
    EXPECT_EQ(reset.address, x86::kAcpiSleepControlPort);
    EXPECT_EQ(fadt[kFadtResetValueOffset], x86::kAcpiResetValue);
    // The power-off write, (SLP_TYP << 2) | SLP_EN, must not look like a reset.
    EXPECT_NE((x86::kAcpiS5SleepType << 2) | 0x20, x86::kAcpiResetValue);
}

struct MadtEntry {
    std::uint8_t type;
    std::vector<std::uint8_t> bytes;
};

std::vector<MadtEntry> madt_entries(const std::vector<std::uint8_t>& madt) {
    std::vector<MadtEntry> entries;
    std::size_t offset = kMadtFixedLength;
    while (offset < madt.size()) {
        const std::uint8_t length = madt.at(offset + 1);
        if (length < 2 || offset + length > madt.size()) throw std::runtime_error("bad entry");
        entries.push_back({madt[offset], {madt.begin() + offset, madt.begin() + offset + length}});
        offset += length;
    }
    return entries;
}

class MadtForCpus : public ::testing::TestWithParam<std::uint32_t> {};

TEST_P(MadtForCpus, OneLocalApicPerCpuPlusIoApicOverrideAndNmi) {
    const std::uint32_t cpus = GetParam();
    const auto madt = build_madt(cpus);
    EXPECT_EQ(madt.size(), kMadtFixedLength + 8 * cpus + 12 + 10 + 6);
    EXPECT_TRUE(checksum_is_valid(madt));
    EXPECT_EQ(field<std::uint32_t>(madt, 36), x86::kLapicAddress);
    EXPECT_EQ(field<std::uint32_t>(madt, 40), 1u);  // PCAT_COMPAT

    const auto entries = madt_entries(madt);
    ASSERT_EQ(entries.size(), cpus + 3);
    for (std::uint32_t cpu = 0; cpu < cpus; ++cpu) {
        const auto& lapic = entries[cpu];
        EXPECT_EQ(lapic.type, kMadtLocalApic);
        EXPECT_EQ(lapic.bytes[2], cpu);                       // processor UID
        EXPECT_EQ(lapic.bytes[3], cpu);                       // APIC ID
        EXPECT_EQ(field<std::uint32_t>(lapic.bytes, 4), 1u);  // enabled
    }
    const auto& ioapic = entries[cpus];
    EXPECT_EQ(ioapic.type, kMadtIoApic);
    EXPECT_EQ(ioapic.bytes[2], ioapic_id(cpus));
    EXPECT_GE(ioapic.bytes[2], cpus);  // clashes with no local APIC ID
    EXPECT_EQ(field<std::uint32_t>(ioapic.bytes, 4), x86::kIoapicAddress);
    EXPECT_EQ(field<std::uint32_t>(ioapic.bytes, 8), 0u);

    const auto& iso = entries[cpus + 1];
    EXPECT_EQ(iso.type, kMadtInterruptSourceOverride);
    EXPECT_EQ(iso.bytes[2], 0);  // ISA
    EXPECT_EQ(iso.bytes[3], 0);  // IRQ 0
    EXPECT_EQ(field<std::uint32_t>(iso.bytes, 4), 2u);
    EXPECT_EQ(field<std::uint16_t>(iso.bytes, 8) & 0xc, 0x4);  // edge-triggered

    const auto& nmi = entries[cpus + 2];
    EXPECT_EQ(nmi.type, kMadtLocalApicNmi);
    EXPECT_EQ(nmi.bytes[2], 0xff);  // all processors
    EXPECT_EQ(nmi.bytes[5], 1);     // LINT1
}

INSTANTIATE_TEST_SUITE_P(Cpus, MadtForCpus, ::testing::Values(1u, 4u, 64u));

TEST(Madt, RejectsUnsupportedCpuCounts) {
    EXPECT_THROW(build_madt(0), base::Error);
    EXPECT_THROW(build_madt(65), base::Error);
    EXPECT_THROW(build_madt(255), base::Error);
    EXPECT_THROW(build_acpi_tables({65}), base::Error);
}

TEST(Dsdt, HoldsS5AndCom1) {
    const auto dsdt = build_dsdt();
    EXPECT_TRUE(checksum_is_valid(dsdt));
    EXPECT_EQ(dsdt[8], kDsdtRevision);
    const std::string body(dsdt.begin() + 36, dsdt.end());
    // Name (_S5_, Package (4) { 5, 5, 0, 0 })
    EXPECT_NE(body.find(std::string("\x08_S5_\x12\x08\x04\x0a\x05\x0a\x05\x00\x00", 14)),
              std::string::npos);
    EXPECT_NE(body.find("\\_SB_"), std::string::npos);
    EXPECT_NE(body.find("COM1"), std::string::npos);
}

TEST(Dsdt, TakesExtraSystemBusDevices) {
    const aml::Bytes hid[] = {aml::name("_HID", aml::eisa_id("PNP0A08"))};
    const aml::Bytes extra[] = {aml::device("PCI0", hid)};
    const auto dsdt = build_dsdt(extra);
    // The \_SB_ scope's PkgLength may grow by a byte, so look for the device.
    EXPECT_GE(dsdt.size(), build_dsdt().size() + extra[0].size());
    EXPECT_NE(std::search(dsdt.begin(), dsdt.end(), extra[0].begin(), extra[0].end()), dsdt.end());
    EXPECT_TRUE(checksum_is_valid(dsdt));
}

TEST(AcpiTables, WrittenIntoGuestMemory) {
    auto memory = GuestMemory::create_x86(64 * x86::MiB);
    const GuestAddress rsdp = write_acpi_tables(memory, {4});
    EXPECT_EQ(rsdp, x86::kAcpiTablesStart);
    for (const auto& table : build_acpi_tables({4})) {
        const auto bytes = memory.span(table.address, table.bytes.size());
        EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), table.bytes.begin())) << table.signature;
    }
}

TEST(AcpiTables, RefusesMemoryWithoutTheBiosArea) {
    const std::pair<GuestAddress, std::uint64_t> ranges[] = {{0, 0x80000}};
    auto memory = GuestMemory::create(ranges);
    EXPECT_THROW(write_acpi_tables(memory, {1}), base::Error);
}

}  // namespace
}  // namespace vmm::acpi
