#include "devices/pci/pci_config_space.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "base/error.hpp"

namespace devices::pci {
namespace {

PciIdentity identity() {
    return PciIdentity{.vendor_id = 0x1af4,
                       .device_id = 0x1042,
                       .class_code = 0x010000,
                       .revision = 1,
                       .subsystem_vendor_id = 0x1af4,
                       .subsystem_id = 0x40,
                       .interrupt_pin = 1};
}

std::uint32_t read32(const PciConfigSpace& config, std::uint16_t offset) {
    std::array<std::uint8_t, 4> bytes{};
    config.read(offset, bytes);
    std::uint32_t value;
    std::memcpy(&value, bytes.data(), 4);
    return value;
}

void write32(PciConfigSpace& config, std::uint16_t offset, std::uint32_t value) {
    std::array<std::uint8_t, 4> bytes{};
    std::memcpy(bytes.data(), &value, 4);
    config.write(offset, bytes);
}

TEST(PciConfigSpace, HeaderFieldsAreReadOnly) {
    PciConfigSpace config(identity());
    EXPECT_EQ(read32(config, kVendorId), 0x1042'1af4u);
    EXPECT_EQ(read32(config, kRevisionId), 0x0100'0001u);  // class 01 00 00, revision 1
    write32(config, kVendorId, 0xdead'beef);
    write32(config, kRevisionId, 0xffff'ffff);
    EXPECT_EQ(read32(config, kVendorId), 0x1042'1af4u);
    EXPECT_EQ(read32(config, kRevisionId), 0x0100'0001u);
    EXPECT_EQ(config.read8(kInterruptPin), 1);
}

TEST(PciConfigSpace, CommandRegisterKeepsOnlyDefinedBits) {
    PciConfigSpace config(identity());
    write32(config, kCommand, 0xffff'ffff);
    EXPECT_EQ(config.command(),
              kCommandIo | kCommandMemory | kCommandBusMaster | kCommandIntxDisable);
    // The status half is not writable by a plain write.
    EXPECT_EQ(config.read16(kStatus), 0);
}

TEST(PciConfigSpace, Mmio32BarSizesLikeHardware) {
    PciConfigSpace config(identity());
    config.add_bar({2, BarKind::Mmio32, 0x1000, false});
    write32(config, kBar0 + 8, 0xffff'ffff);
    EXPECT_EQ(read32(config, kBar0 + 8), 0xffff'f000u);
    write32(config, kBar0 + 8, 0xc000'1234);
    EXPECT_EQ(config.bar_address(2), 0xc000'1000u);
    // Unimplemented BARs read as zero and ignore writes.
    write32(config, kBar0, 0xffff'ffff);
    EXPECT_EQ(read32(config, kBar0), 0u);
}

TEST(PciConfigSpace, Mmio64BarSizesBothHalves) {
    PciConfigSpace config(identity());
    config.add_bar({0, BarKind::Mmio64, 0x4000, true});
    EXPECT_EQ(read32(config, kBar0) & 0xf, 0xcu);  // 64-bit, prefetchable
    write32(config, kBar0, 0xffff'ffff);
    write32(config, kBar0 + 4, 0xffff'ffff);
    EXPECT_EQ(read32(config, kBar0), 0xffff'c00cu);
    EXPECT_EQ(read32(config, kBar0 + 4), 0xffff'ffffu);
    config.set_bar_address(0, 0x40'0000'0000);
    EXPECT_EQ(config.bar_address(0), 0x40'0000'0000u);
}

TEST(PciConfigSpace, IoBarSizing) {
    PciConfigSpace config(identity());
    config.add_bar({1, BarKind::Io, 0x20, false});
    write32(config, kBar0 + 4, 0xffff'ffff);
    EXPECT_EQ(read32(config, kBar0 + 4), 0xffff'ffe1u);
}

TEST(PciConfigSpace, RejectsBadBars) {
    PciConfigSpace config(identity());
    EXPECT_THROW(config.add_bar({6, BarKind::Mmio32, 0x1000, false}), base::Error);
    EXPECT_THROW(config.add_bar({5, BarKind::Mmio64, 0x1000, false}), base::Error);
    EXPECT_THROW(config.add_bar({0, BarKind::Mmio32, 0x1800, false}), base::Error);
    EXPECT_THROW(config.add_bar({0, BarKind::Mmio32, 8, false}), base::Error);
    config.add_bar({0, BarKind::Mmio64, 0x1000, false});
    EXPECT_THROW(config.add_bar({1, BarKind::Mmio32, 0x1000, false}), base::Error);
    EXPECT_THROW(config.set_bar_address(0, 0x1234), base::Error);
}

TEST(PciConfigSpace, CapabilitiesFormAList) {
    PciConfigSpace config(identity());
    const std::array<std::uint8_t, 2> body1{0xaa, 0xbb};
    const std::array<std::uint8_t, 6> body2{1, 2, 3, 4, 5, 6};
    const std::array<std::uint8_t, 6> writable2{0, 0xff, 0, 0, 0, 0};
    const auto first = config.add_capability(0x11, body1);
    const auto second = config.add_capability(0x09, body2, writable2);
    EXPECT_EQ(first, kFirstCapability);
    EXPECT_EQ(config.read8(kCapabilitiesPointer), first);
    EXPECT_TRUE(config.read16(kStatus) & kStatusCapabilities);
    EXPECT_EQ(config.read8(first + 1), second);
    EXPECT_EQ(config.read8(second + 1), 0);
    EXPECT_EQ(second % 4, 0);
    const std::array<std::uint8_t, 2> all_ones{0xff, 0xff};
    config.write(second + 2, all_ones);
    EXPECT_EQ(config.read8(second + 2), 1);     // read-only
    EXPECT_EQ(config.read8(second + 3), 0xff);  // writable
}

TEST(PciConfigSpace, OutOfRangeAccessesAreHarmless) {
    PciConfigSpace config(identity());
    std::array<std::uint8_t, 4> bytes{};
    config.read(4094, bytes);
    EXPECT_EQ(bytes[2], 0xff);
    EXPECT_EQ(bytes[3], 0xff);
    config.write(4094, bytes);
}

}  // namespace
}  // namespace devices::pci
