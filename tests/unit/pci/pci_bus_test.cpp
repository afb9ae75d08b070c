#include "devices/pci/pci_bus.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "devices/pci/host_bridge.hpp"
#include "devices/pci/pci_config_space.hpp"

namespace devices::pci {
namespace {

constexpr PciWindows kWindows{.mmio32_start = 0xc000'0000,
                              .mmio32_end = 0xe000'0000,
                              .mmio64_start = 0x40'0000'0000,
                              .mmio64_end = 0x80'0000'0000,
                              .io_start = 0xc000,
                              .io_end = 0x10000};

// A device with one BAR of each kind that remembers what reached it.
class TestDevice : public PciDevice {
  public:
    TestDevice()
        : config_(PciIdentity{.vendor_id = 0x1234, .device_id = 0x5678, .class_code = 0xff0000}) {
        config_.add_bar({0, BarKind::Mmio64, 0x4000, true});
        config_.add_bar({2, BarKind::Mmio32, 0x1000, false});
        config_.add_bar({3, BarKind::Io, 0x20, false});
    }
    std::string name() const override { return "test"; }
    void config_read(std::uint16_t offset, std::span<std::uint8_t> data) override {
        config_.read(offset, data);
    }
    void config_write(std::uint16_t offset, std::span<const std::uint8_t> data) override {
        config_.write(offset, data);
    }
    std::vector<BarInfo> bars() const override { return config_.bars(); }
    void bar_read(std::uint8_t index, std::uint64_t offset, std::span<std::uint8_t> data) override {
        std::fill(data.begin(), data.end(), static_cast<std::uint8_t>(0x10 * index + offset));
    }
    void bar_write(std::uint8_t index, std::uint64_t offset,
                   std::span<const std::uint8_t>) override {
        last_write = {index, offset};
    }
    void attached(std::uint8_t slot, std::uint32_t gsi) override { attached_at = {slot, gsi}; }
    void bar_moved(std::uint8_t index, std::optional<std::uint64_t> from,
                   std::optional<std::uint64_t> to) override {
        moves.push_back({index, from, to});
    }

    struct Move {
        std::uint8_t index;
        std::optional<std::uint64_t> from, to;
    };
    std::vector<Move> moves;
    std::pair<std::uint8_t, std::uint64_t> last_write{0xff, 0};
    std::pair<std::uint8_t, std::uint32_t> attached_at{0xff, 0};

  private:
    PciConfigSpace config_;
};

struct PciBusFixture : ::testing::Test {
    vmm::Bus mmio{"MMIO"};
    vmm::Bus pio{"port I/O"};
    std::shared_ptr<PciBus> bus = std::make_shared<PciBus>(mmio, pio, kWindows);
    std::shared_ptr<PciConfigIo> cf8 = std::make_shared<PciConfigIo>(bus);
    std::shared_ptr<PciEcam> ecam = std::make_shared<PciEcam>(bus);

    void SetUp() override {
        pio.insert(cf8, PciConfigIo::kPort, PciConfigIo::kSize);
        mmio.insert(ecam, 0xe000'0000, 256ull << 20);
        bus->add_device(std::make_shared<HostBridge>());
    }

    std::uint32_t cf8_read(std::uint8_t slot, std::uint8_t reg) {
        const std::uint32_t address = 0x8000'0000u | (std::uint32_t{slot} << 11) | reg;
        std::array<std::uint8_t, 4> bytes{};
        std::memcpy(bytes.data(), &address, 4);
        pio.write(0xcf8, bytes);
        pio.read(0xcfc, bytes);
        std::uint32_t value;
        std::memcpy(&value, bytes.data(), 4);
        return value;
    }
    void ecam_write32(std::uint8_t slot, std::uint16_t reg, std::uint32_t value) {
        std::array<std::uint8_t, 4> bytes{};
        std::memcpy(bytes.data(), &value, 4);
        mmio.write(0xe000'0000 + (std::uint64_t{slot} << 15) + reg, bytes);
    }
    std::uint32_t ecam_read32(std::uint8_t slot, std::uint16_t reg) {
        std::array<std::uint8_t, 4> bytes{};
        mmio.read(0xe000'0000 + (std::uint64_t{slot} << 15) + reg, bytes);
        std::uint32_t value;
        std::memcpy(&value, bytes.data(), 4);
        return value;
    }
    std::uint8_t mmio_byte(std::uint64_t address) {
        std::array<std::uint8_t, 1> byte{};
        mmio.read(address, byte);
        return byte[0];
    }
};

TEST_F(PciBusFixture, HostBridgeAnswersOnBothMechanisms) {
    EXPECT_EQ(cf8_read(0, 0), 0x0008'1b36u);
    EXPECT_EQ(ecam_read32(0, 0), 0x0008'1b36u);
    EXPECT_EQ(cf8_read(0, 8) >> 8, 0x060000u);  // host bridge class
    // Empty slots, other functions and other buses read all-ones.
    EXPECT_EQ(cf8_read(5, 0), 0xffff'ffffu);
    EXPECT_EQ(ecam_read32(0, 0), 0x0008'1b36u);
    std::array<std::uint8_t, 4> bytes{};
    mmio.read(0xe000'0000 + (1ull << 20), bytes);  // bus 1
    EXPECT_EQ(bytes[0], 0xff);
    mmio.read(0xe000'0000 + (1ull << 12), bytes);  // function 1
    EXPECT_EQ(bytes[0], 0xff);
}

TEST_F(PciBusFixture, ConfigAddressRegisterReadsBackAndProbeWorks) {
    // Linux's pci_direct_probe: byte write to 0xCFB, then dword round trip.
    const std::array<std::uint8_t, 1> one{1};
    pio.write(0xcfb, one);
    std::array<std::uint8_t, 4> bytes{0, 0, 0, 0x80};
    pio.write(0xcf8, bytes);
    std::array<std::uint8_t, 4> back{};
    pio.read(0xcf8, back);
    EXPECT_EQ(back, bytes);
    // Disabled config cycles read all-ones.
    const std::array<std::uint8_t, 4> disabled{0, 0, 0, 0};
    pio.write(0xcf8, disabled);
    pio.read(0xcfc, back);
    EXPECT_EQ(back[0], 0xff);
}

TEST_F(PciBusFixture, BarsAreAssignedFromTheWindowsAndDecoded) {
    auto device = std::make_shared<TestDevice>();
    const auto slot = bus->add_device(device);
    EXPECT_EQ(slot, 1);
    EXPECT_EQ(device->attached_at.first, 1);
    EXPECT_EQ(device->attached_at.second, intx_gsi_for_slot(1));
    const auto bar0 = bus->bar_mapping(slot, 0);
    const auto bar2 = bus->bar_mapping(slot, 2);
    const auto bar3 = bus->bar_mapping(slot, 3);
    ASSERT_TRUE(bar0 && bar2 && bar3);
    EXPECT_EQ(*bar0, kWindows.mmio64_start);
    EXPECT_EQ(*bar2, kWindows.mmio32_start);
    EXPECT_EQ(*bar3, kWindows.io_start);
    EXPECT_EQ(mmio_byte(*bar0 + 3), 0x03);
    EXPECT_EQ(mmio_byte(*bar2 + 1), 0x21);
    std::array<std::uint8_t, 1> port{};
    pio.read(*bar3 + 2, port);
    EXPECT_EQ(port[0], 0x32);
    EXPECT_EQ(cf8_read(slot, 0x10), static_cast<std::uint32_t>(kWindows.mmio64_start) | 0xc);
    EXPECT_EQ(cf8_read(slot, 0x14), static_cast<std::uint32_t>(kWindows.mmio64_start >> 32));
    EXPECT_EQ(cf8_read(slot, 0x3c) & 0xff, intx_gsi_for_slot(1));
    EXPECT_EQ(cf8_read(slot, 0x04) & 0x3, 0x3u);  // I/O + memory decode on
}

TEST_F(PciBusFixture, SizingAndRelocationMoveTheBar) {
    auto device = std::make_shared<TestDevice>();
    const auto slot = bus->add_device(device);
    const auto old = *bus->bar_mapping(slot, 2);
    device->moves.clear();
    // As Linux does: decode off, size, program, decode on.
    ecam_write32(slot, 0x04, 0);
    EXPECT_FALSE(bus->bar_mapping(slot, 2));
    ecam_write32(slot, 0x18, 0xffff'ffff);
    EXPECT_EQ(ecam_read32(slot, 0x18), 0xffff'f000u);
    ecam_write32(slot, 0x18, 0xd000'0000);
    ecam_write32(slot, 0x04, kCommandMemory | kCommandIo);
    EXPECT_EQ(*bus->bar_mapping(slot, 2), 0xd000'0000u);
    EXPECT_EQ(mmio_byte(0xd000'0000 + 4), 0x24);
    EXPECT_EQ(mmio_byte(old + 4), 0xff);  // nothing there any more
    // The device heard about every change, BAR 2 last at its new home.
    ASSERT_FALSE(device->moves.empty());
    bool saw_final = false;
    for (const auto& move : device->moves) {
        if (move.index == 2 && move.to == 0xd000'0000u) saw_final = true;
    }
    EXPECT_TRUE(saw_final);
    // A write reaches the device at the new address.
    const std::array<std::uint8_t, 4> value{1, 2, 3, 4};
    mmio.write(0xd000'0008, value);
    EXPECT_EQ(device->last_write, std::make_pair(std::uint8_t{2}, std::uint64_t{8}));
}

TEST_F(PciBusFixture, SixtyFourBitBarMovesAboveFourGiB) {
    auto device = std::make_shared<TestDevice>();
    const auto slot = bus->add_device(device);
    ecam_write32(slot, 0x04, 0);
    ecam_write32(slot, 0x10, 0x0001'0000);
    ecam_write32(slot, 0x14, 0x50);
    ecam_write32(slot, 0x04, kCommandMemory);
    EXPECT_EQ(*bus->bar_mapping(slot, 0), 0x50'0001'0000u);
    EXPECT_EQ(mmio_byte(0x50'0001'0000 + 1), 0x01);
}

TEST_F(PciBusFixture, OverlappingBarIsNotDecodedAndNothingBreaks) {
    auto a = std::make_shared<TestDevice>();
    auto b = std::make_shared<TestDevice>();
    const auto slot_a = bus->add_device(a);
    const auto slot_b = bus->add_device(b);
    const auto a_bar2 = *bus->bar_mapping(slot_a, 2);
    // The guest points b's BAR 2 at a's: b's BAR goes dark, a keeps working.
    ecam_write32(slot_b, 0x18, static_cast<std::uint32_t>(a_bar2));
    EXPECT_FALSE(bus->bar_mapping(slot_b, 2));
    EXPECT_EQ(*bus->bar_mapping(slot_a, 2), a_bar2);
    EXPECT_EQ(mmio_byte(a_bar2 + 5), 0x25);
    // Over the ECAM window, or wrapping past 2^64: also not decoded.
    ecam_write32(slot_b, 0x18, 0xe000'0000);
    EXPECT_FALSE(bus->bar_mapping(slot_b, 2));
    ecam_write32(slot_b, 0x10, 0xffff'c000);
    ecam_write32(slot_b, 0x14, 0xffff'ffff);
    EXPECT_FALSE(bus->bar_mapping(slot_b, 0));
}

TEST_F(PciBusFixture, IoDecodeFollowsCommandBit) {
    auto device = std::make_shared<TestDevice>();
    const auto slot = bus->add_device(device);
    ecam_write32(slot, 0x04, kCommandMemory);
    EXPECT_FALSE(bus->bar_mapping(slot, 3));
    EXPECT_TRUE(bus->bar_mapping(slot, 2));
    ecam_write32(slot, 0x04, kCommandIo);
    EXPECT_TRUE(bus->bar_mapping(slot, 3));
    EXPECT_FALSE(bus->bar_mapping(slot, 2));
}

TEST_F(PciBusFixture, UnalignedAndOversizedConfigAccessesAreSafe) {
    auto device = std::make_shared<TestDevice>();
    const auto slot = bus->add_device(device);
    std::array<std::uint8_t, 8> bytes{};
    // 8-byte ECAM access crossing dwords, at the end of config space.
    mmio.read(0xe000'0000 + (std::uint64_t{slot} << 15) + 0xffe, bytes);
    mmio.write(0xe000'0000 + (std::uint64_t{slot} << 15) + 0xffa, bytes);
    mmio.read(0xe000'0000 + (std::uint64_t{slot} << 15) + 2, bytes);
    EXPECT_EQ(bytes[0], 0x78);  // device ID low byte, then command
    // Data port access that runs off the end of 0xCFF.
    std::array<std::uint8_t, 4> four{};
    pio.read(0xcfe, std::span(four).first(2));
}

TEST_F(PciBusFixture, FullBusAndFullWindowFailCleanly) {
    for (int i = 1; i < kMaxSlots; ++i) {
        if (i < 3) {
            bus->add_device(std::make_shared<TestDevice>());
        } else {
            bus->add_device(std::make_shared<HostBridge>());
        }
    }
    EXPECT_THROW(bus->add_device(std::make_shared<HostBridge>()), base::Error);
    BarAllocator tiny("tiny", 0x1000, 0x3000);
    EXPECT_EQ(tiny.allocate(0x1000), 0x1000u);
    EXPECT_EQ(tiny.allocate(0x1000), 0x2000u);
    EXPECT_THROW(tiny.allocate(0x1000), base::Error);
}

}  // namespace
}  // namespace devices::pci
