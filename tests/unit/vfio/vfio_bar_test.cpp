// BARs of a passthrough function: the segment plan (mmapped pages as memory
// slots, MSI-X pages trapped), slots following the bus's BAR moves, what
// traps going through VFIO, and hostile accesses; then the whole device on
// a real PciBus, sized, moved and switched off as Linux does.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>

#include "devices/pci/pci_bus.hpp"
#include "devices/vfio/bar_layout.hpp"
#include "devices/vfio/vfio_pci_device.hpp"
#include "tests/unit/pci/fake_hypervisor.hpp"
#include "tests/unit/vfio/fake_device_io.hpp"
#include "vmm/bus.hpp"

namespace devices::vfio {
namespace {

using pci::testing::FakeHypervisor;
using testing::FakeDeviceIo;
using testing::kFakeBar0Size;
using testing::kFakeTableOffset;

constexpr std::uint64_t kPage = 4096;

TEST(BarLayout, TrappedRangesRoundOutToPages) {
    const std::array<ByteRange, 2> msix{ByteRange{0x2000, 0x410}, ByteRange{0x3000, 16}};
    EXPECT_EQ(plan_bar_segments(0x4000, true, msix, kPage),
              (std::vector<BarSegment>{{0, 0x2000, true}, {0x2000, 0x2000, false}}));
    const std::array<ByteRange, 1> middle{ByteRange{0x1ff8, 0x10}};  // straddles two pages
    EXPECT_EQ(plan_bar_segments(0x4000, true, middle, kPage),
              (std::vector<BarSegment>{
                  {0, 0x1000, true}, {0x1000, 0x2000, false}, {0x3000, 0x1000, true}}));
    const std::array<ByteRange, 1> first{ByteRange{0, 0x800}};
    EXPECT_EQ(plan_bar_segments(0x10000, true, first, kPage),
              (std::vector<BarSegment>{{0, 0x1000, false}, {0x1000, 0xf000, true}}));
}

TEST(BarLayout, NothingIsMappedThatCannotBe) {
    EXPECT_EQ(plan_bar_segments(0x4000, false, {}, kPage),
              (std::vector<BarSegment>{{0, 0x4000, false}}));
    EXPECT_EQ(plan_bar_segments(0x100, true, {}, kPage),
              (std::vector<BarSegment>{{0, 0x100, false}}));  // a sub-page BAR
    EXPECT_EQ(plan_bar_segments(0x4000, true, {}, kPage),
              (std::vector<BarSegment>{{0, 0x4000, true}}));
    EXPECT_TRUE(plan_bar_segments(0, true, {}, kPage).empty());
    // Ranges outside the BAR, empty or huge, are clipped.
    const std::array<ByteRange, 3> odd{ByteRange{0x9000, 0x10}, ByteRange{0x1000, 0},
                                       ByteRange{0x3000, ~0ull}};
    EXPECT_EQ(plan_bar_segments(0x4000, true, odd, kPage),
              (std::vector<BarSegment>{{0, 0x3000, true}, {0x3000, 0x1000, false}}));
}

struct BarFixture : ::testing::Test {
    std::shared_ptr<FakeHypervisor> hypervisor = std::make_shared<FakeHypervisor>();
    std::shared_ptr<pci::MsiRouter> router = std::make_shared<pci::MsiRouter>(hypervisor);
    FakeDeviceIo* fake = nullptr;

    std::unique_ptr<VfioPciDevice> make(const std::function<void(FakeDeviceIo&)>& tweak = {}) {
        auto io = std::make_unique<FakeDeviceIo>();
        fake = io.get();
        if (tweak) tweak(*io);
        return std::make_unique<VfioPciDevice>(std::move(io), router, kPage);
    }
    std::vector<std::pair<std::uint64_t, std::uint64_t>> slots() {
        std::vector<std::pair<std::uint64_t, std::uint64_t>> list;
        for (const auto& [number, slot] : hypervisor->memory_slots) {
            list.push_back({slot.gpa, slot.host.size()});
        }
        return list;
    }
};

TEST_F(BarFixture, DeviceIsResetBeforeItIsRead) {
    auto device = make();
    EXPECT_EQ(fake->resets, 1);
    EXPECT_EQ(fake->journal->front(), "reset");
    EXPECT_TRUE(device->was_reset());
    auto without = make([](FakeDeviceIo& io) { io.can_reset = false; });
    EXPECT_FALSE(without->was_reset());
}

TEST_F(BarFixture, AFailedResetIsAWarningNotAFailure) {
    std::unique_ptr<VfioPciDevice> device;
    EXPECT_NO_THROW(device = make([](FakeDeviceIo& io) { io.fail_reset = true; }));
    EXPECT_FALSE(device->was_reset());
    EXPECT_EQ(device->bars().size(), 2u);
}

// The device may hold the last reference to the router, and so to the
// hypervisor its memory slots are removed from: it must outlive them.
TEST(VfioPciDeviceLifetime, KeepsItsHypervisorAliveForItsSlots) {
    auto hypervisor = std::make_shared<FakeHypervisor>();
    const std::weak_ptr<FakeHypervisor> watch = hypervisor;
    auto router = std::make_shared<pci::MsiRouter>(hypervisor);
    hypervisor.reset();
    auto device =
        std::make_unique<VfioPciDevice>(std::make_unique<FakeDeviceIo>(), std::move(router), kPage);
    device->bar_moved(0, std::nullopt, 0x40'0000'0000);
    ASSERT_FALSE(watch.expired());
    EXPECT_EQ(watch.lock()->memory_slots.size(), 1u);
    device.reset();
    EXPECT_TRUE(watch.expired());
}

TEST_F(BarFixture, BarListAndSegments) {
    auto device = make();
    const auto bars = device->bars();
    ASSERT_EQ(bars.size(), 2u);
    EXPECT_EQ(device->bar_segments(0),
              (std::vector<BarSegment>{{0, 0x2000, true}, {0x2000, 0x2000, false}}));
    EXPECT_EQ(device->bar_segments(4), (std::vector<BarSegment>{{0, 0x20, false}}));
    EXPECT_TRUE(device->bar_segments(2).empty());
}

TEST_F(BarFixture, MappedPagesBecomeMemorySlotsOverTheDevicesMmap) {
    auto device = make();
    EXPECT_TRUE(hypervisor->memory_slots.empty());
    device->bar_moved(0, std::nullopt, 0x40'0000'0000);
    ASSERT_EQ(slots(),
              (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0x40'0000'0000, 0x2000}}));
    // A guest store through the slot is a store to the device's BAR.
    auto& slot = hypervisor->memory_slots.begin()->second;
    EXPECT_FALSE(slot.read_only);
    const std::uint32_t doorbell = 0x1234;
    std::memcpy(slot.host.data() + 0x1008, &doorbell, 4);
    EXPECT_EQ(fake->bar_bytes(0, 0x1008, 4), (std::vector<std::uint8_t>{0x34, 0x12, 0, 0}));
    EXPECT_EQ(device->mapped_ranges(0), (std::vector<ByteRange>{{0x40'0000'0000, 0x2000}}));
}

TEST_F(BarFixture, SlotsFollowTheBarAndGoWhenItIsNotDecoded) {
    auto device = make();
    device->bar_moved(0, std::nullopt, 0x40'0000'0000);
    device->bar_moved(0, 0x40'0000'0000, 0x40'0000'4000);
    EXPECT_EQ(slots(),
              (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0x40'0000'4000, 0x2000}}));
    // Onto part of its old range: the old slot goes first, so no clash.
    device->bar_moved(0, 0x40'0000'4000, 0x40'0000'2000);
    EXPECT_EQ(slots().size(), 1u);
    device->bar_moved(0, 0x40'0000'2000, std::nullopt);
    EXPECT_TRUE(hypervisor->memory_slots.empty());
    // The I/O BAR never gets a slot.
    device->bar_moved(4, std::nullopt, 0xc000);
    EXPECT_TRUE(hypervisor->memory_slots.empty());
}

TEST_F(BarFixture, ARefusedSlotLeavesTheBarWorkingThroughVfio) {
    auto device = make();
    hypervisor->fail_memory_slots = true;
    EXPECT_NO_THROW(device->bar_moved(0, std::nullopt, 0x1000'0000));
    EXPECT_TRUE(hypervisor->memory_slots.empty());
    const std::array<std::uint8_t, 4> value{1, 2, 3, 4};
    device->bar_write(0, 0x100, value);
    std::array<std::uint8_t, 4> back{};
    device->bar_read(0, 0x100, back);
    EXPECT_EQ(back, value);
    EXPECT_EQ(fake->bar_bytes(0, 0x100, 4), std::vector<std::uint8_t>(value.begin(), value.end()));
}

TEST_F(BarFixture, AnUnmappableBarTrapsEntirely) {
    auto device = make([](FakeDeviceIo& io) { io.fail_map = true; });
    EXPECT_EQ(device->bar_segments(0), (std::vector<BarSegment>{{0, kFakeBar0Size, false}}));
    device->bar_moved(0, std::nullopt, 0x40'0000'0000);
    EXPECT_TRUE(hypervisor->memory_slots.empty());
}

TEST_F(BarFixture, TrappedRegistersBesideTheTableGoToTheDevice) {
    auto device = make();
    // 0x2800 is on the table's page but past its 65 entries.
    const std::array<std::uint8_t, 2> value{0xab, 0xcd};
    device->bar_write(0, 0x2800, value);
    EXPECT_EQ(fake->bar_bytes(0, 0x2800, 2), std::vector<std::uint8_t>(value.begin(), value.end()));
    std::array<std::uint8_t, 2> back{};
    device->bar_read(0, 0x2800, back);
    EXPECT_EQ(back, value);
    // An access straddling the table's end: table part emulated, rest device.
    const std::uint64_t table_end = kFakeTableOffset + testing::kFakeVectors * 16u;
    const std::array<std::uint8_t, 8> straddle{1, 2, 3, 4, 5, 6, 7, 8};
    device->bar_write(0, table_end - 4, straddle);
    EXPECT_EQ(fake->bar_bytes(0, table_end - 4, 4), std::vector<std::uint8_t>(4, 0));
    EXPECT_EQ(fake->bar_bytes(0, table_end, 4), (std::vector<std::uint8_t>{5, 6, 7, 8}));
}

TEST_F(BarFixture, IoBarGoesThroughVfio) {
    auto device = make();
    const std::array<std::uint8_t, 1> value{0x5a};
    device->bar_write(4, 0x10, value);
    EXPECT_EQ(fake->bar_bytes(4, 0x10, 1), std::vector<std::uint8_t>{0x5a});
    std::array<std::uint8_t, 1> back{};
    device->bar_read(4, 0x10, back);
    EXPECT_EQ(back[0], 0x5a);
}

TEST_F(BarFixture, AccessesPastTheEndOrToAbsentBarsAreHarmless) {
    auto device = make();
    std::array<std::uint8_t, 8> data{};
    device->bar_read(0, kFakeBar0Size - 4, data);  // straddles the end
    EXPECT_EQ(data[4], 0xff);
    EXPECT_EQ(data[7], 0xff);
    for (std::uint8_t index : {1, 2, 3, 5, 6, 7, 255}) {
        EXPECT_NO_THROW(device->bar_read(index, 0, data));
        EXPECT_EQ(data[0], 0xff);
        EXPECT_NO_THROW(device->bar_write(index, 0, data));
        EXPECT_NO_THROW(device->bar_moved(index, std::nullopt, 0x1000));
    }
    EXPECT_NO_THROW(device->bar_read(0, ~0ull, data));
    EXPECT_NO_THROW(device->bar_write(0, ~0ull - 2, data));
    EXPECT_NO_THROW(device->bar_read(4, ~0ull, data));
    EXPECT_TRUE(fake->bar_writes.empty());
}

TEST_F(BarFixture, FailingDeviceAccessesReadAllOnes) {
    auto device = make();
    fake->fail_reads = true;
    fake->fail_writes = true;
    std::array<std::uint8_t, 4> data{};
    EXPECT_NO_THROW(device->bar_read(0, 0x100, data));
    EXPECT_EQ(data, (std::array<std::uint8_t, 4>{0xff, 0xff, 0xff, 0xff}));
    EXPECT_NO_THROW(device->bar_write(0, 0x100, data));
    EXPECT_NO_THROW(device->bar_read(4, 0, data));
}

TEST_F(BarFixture, HostileBarAccesses) {
    auto device = make();
    device->bar_moved(0, std::nullopt, 0x40'0000'0000);
    std::mt19937 random(99);
    for (int i = 0; i < 20000; ++i) {
        const std::uint8_t index = static_cast<std::uint8_t>(random() % 8);
        const std::uint64_t offset = random() % 3 == 0 ? random() : random() % 0x5000;
        std::vector<std::uint8_t> bytes(1 + random() % 8);
        if (random() % 2) {
            EXPECT_NO_THROW(device->bar_write(index, offset, bytes));
        } else {
            EXPECT_NO_THROW(device->bar_read(index, offset, bytes));
        }
    }
}

// The device on our PciBus: BARs assigned like firmware, slots created at
// the assigned address, Memory Space Enable off and on, a BAR moved by
// config writes, and the INTx line from the bus matching the pin.
TEST_F(BarFixture, OnTheBusSlotsFollowDecoding) {
    vmm::Bus mmio("MMIO");
    vmm::Bus pio("port I/O");
    auto bus = std::make_shared<pci::PciBus>(mmio, pio,
                                             pci::PciWindows{.mmio32_start = 0xc000'0000,
                                                             .mmio32_end = 0xe000'0000,
                                                             .mmio64_start = 0x40'0000'0000,
                                                             .mmio64_end = 0x80'0000'0000,
                                                             .io_start = 0xc000,
                                                             .io_end = 0x10000});
    std::shared_ptr<VfioPciDevice> device = make();
    const auto slot = bus->add_device(device);
    const auto address = bus->bar_mapping(slot, 0);
    ASSERT_TRUE(address.has_value());
    EXPECT_EQ(slots(), (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{*address, 0x2000}}));
    ASSERT_TRUE(bus->bar_mapping(slot, 4).has_value());
    // The bus wrote the _PRT's GSI into Interrupt Line, and INTx is routed there.
    std::array<std::uint8_t, 1> line{};
    bus->config_read(0, slot, 0, 0x3c, line);
    EXPECT_EQ(line[0], pci::intx_gsi_for_slot(slot));
    EXPECT_TRUE(device->interrupts().intx_routed());

    // The MSI-X table traps: an MMIO access at its guest address reaches
    // the emulated table, not the device.
    const std::array<std::uint8_t, 4> address_low{0x00, 0x10, 0xe0, 0xfe};
    mmio.write(*address + kFakeTableOffset, address_low);
    std::array<std::uint8_t, 4> back{};
    mmio.read(*address + kFakeTableOffset, back);
    EXPECT_EQ(back, address_low);
    EXPECT_TRUE(fake->bar_writes.empty());

    // Linux sizes BARs with decoding off: the slot goes, and comes back.
    std::array<std::uint8_t, 2> command{};
    bus->config_read(0, slot, 0, 0x04, command);
    const std::array<std::uint8_t, 2> off{static_cast<std::uint8_t>(command[0] & ~0x3), command[1]};
    bus->config_write(0, slot, 0, 0x04, off);
    EXPECT_TRUE(hypervisor->memory_slots.empty());
    EXPECT_EQ(fake->get16(0x04) & 0x3, 0x3);  // the device itself keeps decoding
    const std::array<std::uint8_t, 4> ones{0xff, 0xff, 0xff, 0xff};
    bus->config_write(0, slot, 0, 0x10, ones);
    std::array<std::uint8_t, 4> size{};
    bus->config_read(0, slot, 0, 0x10, size);
    EXPECT_EQ(size, (std::array<std::uint8_t, 4>{0x04, 0xc0, 0xff, 0xff}));
    // Moved to a new address, decoding on again.
    const std::uint64_t moved = 0x40'1000'0000;
    std::array<std::uint8_t, 4> low{}, high{};
    const auto low32 = static_cast<std::uint32_t>(moved) | 0x4;
    const auto high32 = static_cast<std::uint32_t>(moved >> 32);
    std::memcpy(low.data(), &low32, 4);
    std::memcpy(high.data(), &high32, 4);
    bus->config_write(0, slot, 0, 0x10, low);
    bus->config_write(0, slot, 0, 0x14, high);
    bus->config_write(0, slot, 0, 0x04, command);
    EXPECT_EQ(bus->bar_mapping(slot, 0), moved);
    EXPECT_EQ(slots(), (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{moved, 0x2000}}));
}

}  // namespace
}  // namespace devices::vfio
