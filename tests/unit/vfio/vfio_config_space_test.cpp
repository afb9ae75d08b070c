// The config space a passthrough function shows the guest, over a fake
// device: identity from the snapshot, BARs sized like hardware from VFIO's
// region sizes, the ROM hidden, the capability chain without MSI, MSI-X and
// PM emulated, the command register split, everything else passed through;
// and no guest access, however odd, reaching what the VMM owns.
#include "devices/vfio/vfio_config_space.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>

#include "tests/unit/vfio/fake_device_io.hpp"

namespace devices::vfio {
namespace {

using testing::FakeDeviceIo;

// What the fake device decodes from start (VFIO enabled it): memory and I/O.
constexpr std::uint16_t kFakeHwDecode() {
    return pci::kCommandMemory | pci::kCommandIo;
}

std::uint32_t read32(const VfioConfigSpace& config, std::uint16_t offset) {
    std::array<std::uint8_t, 4> bytes{};
    config.read(offset, bytes);
    std::uint32_t value;
    std::memcpy(&value, bytes.data(), 4);
    return value;
}

std::uint16_t read16(const VfioConfigSpace& config, std::uint16_t offset) {
    std::array<std::uint8_t, 2> bytes{};
    config.read(offset, bytes);
    std::uint16_t value;
    std::memcpy(&value, bytes.data(), 2);
    return value;
}

std::uint8_t read8(const VfioConfigSpace& config, std::uint16_t offset) {
    std::array<std::uint8_t, 1> byte{};
    config.read(offset, byte);
    return byte[0];
}

void write32(VfioConfigSpace& config, std::uint16_t offset, std::uint32_t value) {
    std::array<std::uint8_t, 4> bytes{};
    std::memcpy(bytes.data(), &value, 4);
    config.write(offset, bytes);
}

void write16(VfioConfigSpace& config, std::uint16_t offset, std::uint16_t value) {
    std::array<std::uint8_t, 2> bytes{};
    std::memcpy(bytes.data(), &value, 2);
    config.write(offset, bytes);
}

struct ConfigFixture : ::testing::Test {
    FakeDeviceIo fake;

    std::vector<pci::BarInfo> bars() {
        std::array<RegionInfo, kBarRegionCount> regions{};
        for (std::uint32_t i = 0; i < kBarRegionCount; ++i) regions[i] = fake.region_info(i);
        return discover_bars(read_config_snapshot(fake), regions);
    }
    VfioConfigSpace make(bool intx = true) {
        return VfioConfigSpace(fake, read_config_snapshot(fake), bars(), intx);
    }
};

TEST_F(ConfigFixture, BarsComeFromRegionSizesAndTheDevicesTypeBits) {
    const auto found = bars();
    ASSERT_EQ(found.size(), 2u);
    EXPECT_EQ(found[0].index, 0);
    EXPECT_EQ(found[0].kind, pci::BarKind::Mmio64);
    EXPECT_EQ(found[0].size, testing::kFakeBar0Size);
    EXPECT_FALSE(found[0].prefetchable);
    EXPECT_EQ(found[1].index, 4);
    EXPECT_EQ(found[1].kind, pci::BarKind::Io);
    EXPECT_EQ(found[1].size, testing::kFakeIoBarSize);
}

TEST_F(ConfigFixture, BarsOurBusCannotPlaceAreRefusedByName) {
    std::array<RegionInfo, kBarRegionCount> regions{};
    std::vector<std::uint8_t> config(256, 0);
    regions[5] = {0x1000, true, true, true};
    config[0x10 + 4 * 5] = 0x4;  // 64-bit in the last slot
    EXPECT_THROW(discover_bars(config, regions), base::Error);
    config[0x10 + 4 * 5] = 0x1;  // I/O, 4 KiB
    try {
        discover_bars(config, regions);
        FAIL() << "a 4 KiB I/O BAR was accepted";
    } catch (const base::Error& error) {
        EXPECT_NE(std::string(error.what()).find("BAR 5"), std::string::npos) << error.what();
    }
    regions[5] = {0x3000, true, true, true};
    config[0x10 + 4 * 5] = 0x0;
    EXPECT_THROW(discover_bars(config, regions), base::Error);  // not a power of two
}

TEST_F(ConfigFixture, IdentityIsTheDevicesHeaderTypeIsSingleFunction) {
    const auto config = make();
    EXPECT_EQ(read16(config, 0x00), 0x1b36);
    EXPECT_EQ(read16(config, 0x02), 0x0010);
    EXPECT_EQ(read32(config, 0x08), 0x01080202u);
    EXPECT_EQ(read8(config, 0x0e), 0x00);  // the host's 0x80 is not ours to show
    EXPECT_EQ(read16(config, 0x2c), 0x1af4);
    EXPECT_EQ(read16(config, 0x2e), 0x1100);
}

TEST_F(ConfigFixture, IdentityAndHeaderAreReadOnly) {
    auto config = make();
    write32(config, 0x00, 0xdeadbeef);
    write32(config, 0x08, 0xffffffff);
    write32(config, 0x2c, 0);
    write32(config, 0x0c, 0xffffffff);
    EXPECT_EQ(read32(config, 0x00), 0x00101b36u);
    EXPECT_EQ(read32(config, 0x08), 0x01080202u);
    EXPECT_EQ(read32(config, 0x2c), 0x11001af4u);
    // Cache line size is a scratch register; latency timer, header type and
    // BIST stay 0.
    EXPECT_EQ(read32(config, 0x0c), 0x000000ffu);
    EXPECT_FALSE(fake.config_written(0x00, 0x40));
}

TEST_F(ConfigFixture, BarsSizeLikeHardwareAndNeverReachTheDevice) {
    auto config = make();
    EXPECT_EQ(read32(config, 0x10), 0x4u);  // 64-bit memory, no address yet
    write32(config, 0x10, 0xffffffff);
    write32(config, 0x14, 0xffffffff);
    EXPECT_EQ(read32(config, 0x10), 0xffffc004u);
    EXPECT_EQ(read32(config, 0x14), 0xffffffffu);
    write32(config, 0x20, 0xffffffff);
    EXPECT_EQ(read32(config, 0x20), 0xffffffe1u);  // 32 bytes of I/O
    for (std::uint16_t absent : {0x18, 0x1c, 0x24}) {
        write32(config, absent, 0xffffffff);
        EXPECT_EQ(read32(config, absent), 0u) << std::hex << absent;
    }
    write32(config, 0x10, 0x1234'5678);
    write32(config, 0x14, 0x40);
    EXPECT_EQ(config.bar_address(0), 0x40'1234'4000u);
    EXPECT_FALSE(fake.config_written(0x10, 24));
}

TEST_F(ConfigFixture, ExpansionRomIsHidden) {
    auto config = make();
    EXPECT_EQ(read32(config, 0x30), 0u);
    write32(config, 0x30, 0xfffff801);
    EXPECT_EQ(read32(config, 0x30), 0u);
    EXPECT_FALSE(fake.config_written(0x30, 4));
}

TEST_F(ConfigFixture, CapabilityChainSkipsMsiAndKeepsTheRest) {
    const auto config = make();
    EXPECT_TRUE(read16(config, 0x06) & pci::kStatusCapabilities);
    std::vector<std::pair<std::uint8_t, std::uint8_t>> chain;  // offset, id
    for (std::uint8_t at = read8(config, 0x34); at != 0 && chain.size() < 10;
         at = read8(config, at + 1)) {
        chain.push_back({at, read8(config, at)});
    }
    const std::vector<std::pair<std::uint8_t, std::uint8_t>> expected{
        {0x40, 0x01}, {0x60, 0x10}, {0x80, 0x11}};
    EXPECT_EQ(chain, expected);
    // The hidden MSI capability reads as nothing and cannot be reached by writes.
    for (std::uint16_t at = 0x50; at < 0x5e; ++at) EXPECT_EQ(read8(config, at), 0) << at;
}

TEST_F(ConfigFixture, HiddenMsiWritesNeverReachTheDevice) {
    auto config = make();
    write16(config, 0x52, 0x0081);  // MSI Enable
    write32(config, 0x54, 0xfee00000);
    EXPECT_FALSE(fake.config_written(0x50, 14));
    EXPECT_EQ(fake.get16(0x52), 0x0080);
}

TEST_F(ConfigFixture, MsixCapabilityIsEmulatedAtTheDevicesOffset) {
    auto config = make();
    ASSERT_TRUE(config.msix().has_value());
    EXPECT_EQ(config.msix()->capability, 0x80);
    EXPECT_EQ(config.msix()->vectors, testing::kFakeVectors);
    EXPECT_EQ(config.msix()->table_bar, 0);
    EXPECT_EQ(config.msix()->table_offset, testing::kFakeTableOffset);
    EXPECT_EQ(config.msix()->pba_offset, testing::kFakePbaOffset);
    EXPECT_EQ(read16(config, 0x82), testing::kFakeVectors - 1);
    // Enable and Function Mask are writable, the table size is not.
    const auto effects = [&] {
        std::array<std::uint8_t, 2> bytes{0xff, 0xff};
        return config.write(0x82, bytes);
    }();
    EXPECT_TRUE(effects.msix_control);
    EXPECT_EQ(read16(config, 0x82), 0xc000 | (testing::kFakeVectors - 1));
    EXPECT_EQ(config.msix_control(), 0xc000 | (testing::kFakeVectors - 1));
    // Table and PBA locations are read-only.
    write32(config, 0x84, 0xffffffff);
    write32(config, 0x88, 0);
    EXPECT_EQ(read32(config, 0x84), testing::kFakeTableOffset);
    EXPECT_EQ(read32(config, 0x88), testing::kFakePbaOffset);
    EXPECT_FALSE(fake.config_written(0x80, 12));
    // Writes elsewhere do not claim to touch MSI-X.
    std::array<std::uint8_t, 1> byte{0};
    EXPECT_FALSE(config.write(0x81, byte).msix_control);
    EXPECT_FALSE(config.write(0x3c, byte).msix_control);
}

TEST_F(ConfigFixture, MsixWhoseTableLeavesItsBarIsHidden) {
    fake.set32(0x84, 0x3ff0);  // 65 entries from 0x3ff0 run past 16 KiB
    const auto config = make();
    EXPECT_FALSE(config.msix().has_value());
    std::vector<std::uint8_t> ids;
    for (std::uint8_t at = read8(config, 0x34); at != 0 && ids.size() < 10;
         at = read8(config, at + 1)) {
        ids.push_back(read8(config, at));
    }
    EXPECT_EQ(ids, (std::vector<std::uint8_t>{0x01, 0x10}));
}

TEST_F(ConfigFixture, CommandMemoryAndIoDecodeAreOursTheRestGoesToTheDevice) {
    auto config = make();
    EXPECT_EQ(read16(config, 0x04), 0u);  // the guest has enabled nothing yet
    write16(config, 0x04, pci::kCommandMemory | pci::kCommandBusMaster | pci::kCommandIntxDisable);
    EXPECT_EQ(read16(config, 0x04),
              pci::kCommandMemory | pci::kCommandBusMaster | pci::kCommandIntxDisable);
    EXPECT_EQ(config.decode_bits(), pci::kCommandMemory);
    // The device got bus mastering and INTx Disable, and keeps decoding both
    // its memory and its I/O BARs.
    EXPECT_EQ(fake.get16(0x04),
              kFakeHwDecode() | pci::kCommandBusMaster | pci::kCommandIntxDisable);
    write16(config, 0x04, 0);
    EXPECT_EQ(read16(config, 0x04), 0u);
    EXPECT_EQ(fake.get16(0x04), kFakeHwDecode());
    // A byte write of the high half (INTx Disable) alone.
    std::array<std::uint8_t, 1> high{0x04};
    config.write(0x05, high);
    EXPECT_EQ(read16(config, 0x04), pci::kCommandIntxDisable);
    EXPECT_EQ(fake.get16(0x04), kFakeHwDecode() | pci::kCommandIntxDisable);
}

TEST_F(ConfigFixture, IoDecodeIsHardWiredOffWithoutAnIoBar) {
    fake.regions.erase(4);
    auto config = make();
    write16(config, 0x04, pci::kCommandIo | pci::kCommandMemory);
    EXPECT_EQ(read16(config, 0x04), pci::kCommandMemory);
    EXPECT_EQ(fake.get16(0x04) & (pci::kCommandIo | pci::kCommandMemory), pci::kCommandMemory);
}

TEST_F(ConfigFixture, InterruptPinIsIntaWhenTheDeviceHasIntxLineIsScratch) {
    auto with = make(true);
    EXPECT_EQ(read8(with, 0x3d), 1);
    std::array<std::uint8_t, 1> line{21};
    with.write(0x3c, line);
    EXPECT_EQ(read8(with, 0x3c), 21);
    std::array<std::uint8_t, 1> pin{4};
    with.write(0x3d, pin);
    EXPECT_EQ(read8(with, 0x3d), 1);
    EXPECT_FALSE(fake.config_written(0x3c, 2));
    const auto without = make(false);
    EXPECT_EQ(read8(without, 0x3d), 0);
}

TEST_F(ConfigFixture, PowerStateIsEmulatedSoTheDeviceStaysInD0) {
    auto config = make();
    EXPECT_EQ(read16(config, 0x42) & 0xf800, 0);  // no PME for the guest
    EXPECT_EQ(read16(config, 0x44), 0x0008);      // NoSoftRst, D0
    write16(config, 0x44, 0x8103);                // D3hot, PME_En, PME_Status
    EXPECT_EQ(config.power_state(), 3);
    EXPECT_EQ(read16(config, 0x44), 0x000b);
    EXPECT_FALSE(fake.config_written(0x40, 8));
    write16(config, 0x44, 0);
    EXPECT_EQ(config.power_state(), 0);
}

TEST_F(ConfigFixture, OtherCapabilitiesAndExtendedSpacePassThrough) {
    auto config = make();
    EXPECT_EQ(read32(config, 0x68), 0x0000'2810u);
    write16(config, 0x68, 0x2830);
    EXPECT_TRUE(fake.config_written(0x68, 2));
    EXPECT_EQ(fake.get16(0x68), 0x2830);
    EXPECT_EQ(read16(config, 0x68), 0x2830);
    // The PCIe capability's header is ours (the chain), its body the device's.
    EXPECT_EQ(read8(config, 0x61), 0x80);
    EXPECT_EQ(read32(config, 0x100), 0x0001'0001u);
    write32(config, 0x104, 0x11);
    EXPECT_TRUE(fake.config_written(0x104, 4));
    EXPECT_EQ(read32(config, 0xffc), 0u);
}

TEST_F(ConfigFixture, ConventionalDeviceHasNoExtendedSpace) {
    FakeDeviceIo conventional(256);
    std::array<RegionInfo, kBarRegionCount> regions{};
    for (std::uint32_t i = 0; i < kBarRegionCount; ++i) regions[i] = conventional.region_info(i);
    const auto snapshot = read_config_snapshot(conventional);
    EXPECT_EQ(snapshot.size(), 256u);
    VfioConfigSpace config(conventional, snapshot, discover_bars(snapshot, regions), true);
    EXPECT_EQ(read32(config, 0x100), 0u);
    write32(config, 0x100, 0xffffffff);
    EXPECT_EQ(read32(config, 0x100), 0u);
    EXPECT_FALSE(conventional.config_written(0x100, 4));
}

TEST_F(ConfigFixture, AFailingDeviceReadsAllOnesAndNeverThrows) {
    auto config = make();
    fake.fail_reads = true;
    fake.fail_writes = true;
    EXPECT_EQ(read32(config, 0x68), 0xffffffffu);
    EXPECT_EQ(read16(config, 0x00), 0x1b36);  // emulated: no device read needed
    EXPECT_NO_THROW(write32(config, 0x68, 1));
    EXPECT_NO_THROW(write16(config, 0x04, 0x6));
    EXPECT_EQ(read16(config, 0x04) & pci::kCommandMemory, pci::kCommandMemory);
}

TEST_F(ConfigFixture, LoopingCapabilityChainEnds) {
    fake.config[0x81] = 0x40;  // MSI-X points back at PM
    const auto config = make();
    int count = 0;
    for (std::uint8_t at = read8(config, 0x34); at != 0 && count < 100;
         at = read8(config, at + 1)) {
        ++count;
    }
    EXPECT_EQ(count, 3);
}

// Any offset, any size, any value: nothing throws, and what the VMM owns
// (BARs, ROM, the MSI and MSI-X capabilities, PM, decode enables) never
// reaches the device.
TEST_F(ConfigFixture, HostileAccessesNeverReachWhatTheVmmOwns) {
    auto config = make();
    std::mt19937 random(12345);
    for (int i = 0; i < 50000; ++i) {
        const auto offset = static_cast<std::uint16_t>(random() % 4200);
        const std::size_t size = 1 + random() % 8;
        std::vector<std::uint8_t> bytes(size);
        for (auto& b : bytes) b = static_cast<std::uint8_t>(random());
        if (random() % 2) {
            EXPECT_NO_THROW(config.write(offset, bytes));
        } else {
            EXPECT_NO_THROW(config.read(offset, bytes));
        }
    }
    EXPECT_FALSE(fake.config_written(0x00, 4));
    EXPECT_FALSE(fake.config_written(0x08, 0x3c - 0x08));  // class .. ROM .. cap pointer
    EXPECT_FALSE(fake.config_written(0x3c, 4));
    EXPECT_FALSE(fake.config_written(0x40, 8));
    EXPECT_FALSE(fake.config_written(0x50, 14));
    EXPECT_FALSE(fake.config_written(0x80, 12));
    EXPECT_EQ(fake.get16(0x04) & kFakeHwDecode(), kFakeHwDecode());
}

}  // namespace
}  // namespace devices::vfio
